"""gristmill in other tools: `gristmill.integrations.prefect` (the `prefect` extra)."""

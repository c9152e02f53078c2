"""Ingestion: sync source tables and files into the warehouse's raw schema, exactly once.

`ingest()` is the entry point the CLI and notebooks share; `engine.TableSync` syncs one
table; `spec.py` checks a table entry against the source; `sources/` holds the source
kinds; `schema.py` decides how tables evolve.
"""

from gristmill.ingest.engine import IngestSummary, TableResult, ingest

__all__ = ["IngestSummary", "TableResult", "ingest"]

"""Ingestion: sync source tables and files into the warehouse's raw schema, exactly once.

`run.ingest()` is the entry point the CLI and notebooks share; `engine.TableSync` syncs one
table; `read_ahead.py` opens the sources and begins their reads while the warehouse opens;
`spec.py` checks a table entry against the source; `sources/` holds the source kinds;
`schema.py` decides how tables evolve; `cdc/` syncs a table from its source's log of changes
(mode = "cdc").
"""

from gristmill.ingest.engine import TableResult
from gristmill.ingest.run import IngestSummary, ingest

__all__ = ["IngestSummary", "TableResult", "ingest"]

"""What a partition's task uses on a worker."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    from distributed import Worker

    from gristmill.execution.staging import StagingArea

DUCKDB_SHARE = 0.4
"""The share of a worker thread's memory that its DuckDB may hold before it spills to
disk: the rest is Python, Arrow results, and the margin before Dask pauses (80%) or
restarts (95%) the worker."""


def duckdb_connection(area: StagingArea | None = None) -> duckdb.DuckDBPyConnection:
    """An embedded DuckDB for one partition, in UTC: on a Dask worker its memory is a
    share of the worker's limit per thread (past it, it spills to the worker's folder)."""
    import duckdb

    config: dict[str, str | bool | int | float | list[str]] = {}
    worker = _current_worker()
    if worker is not None:
        threads = max(1, worker.state.nthreads)
        limit = worker.memory_manager.memory_limit
        if limit:
            config["memory_limit"] = f"{int(limit * DUCKDB_SHARE / threads)}B"
        config["threads"] = 1 if threads > 1 else os.cpu_count() or 1
        config["temp_directory"] = os.path.join(worker.local_directory, "duckdb-spill")
    con = duckdb.connect(config=config)
    con.execute("SET TimeZone = 'UTC'")
    if area is not None:
        area.attach(con)
    return con


def _current_worker() -> Worker | None:
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None

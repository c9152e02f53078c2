"""Executors: where the heavy work of a command runs.

    Executor       (base.py)     the interface: run a function over partitions, hand
                                 data over through a staging area
    LocalExecutor  (local.py)    this process, as before (the default)
    DaskExecutor   (dask.py)     a Dask distributed cluster: a LocalCluster started for the
                                 command, or a running scheduler's address

A stage asks `project.executor` (opened on first use, closed with the project) and reads
its capabilities (`DISTRIBUTED`) to choose between its in-process path and its
partitioned one; the partitioned one runs the same SQL and code on every partition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gristmill.execution.base import Executor

if TYPE_CHECKING:
    from pathlib import Path

    from gristmill.config import ExecutionConfig

__all__ = ["Executor", "open_executor"]


def open_executor(config: ExecutionConfig, root: Path) -> Executor:
    """The executor [execution] names; nothing starts until its first job."""
    from gristmill.backends import resolve

    executor: Executor = resolve("executor", config.engine)(config, root)
    return executor

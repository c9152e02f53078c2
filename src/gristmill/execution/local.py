"""The local executor: this process, as gristmill always ran."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TypeVar

from gristmill.errors import ExecutionError, GristmillError
from gristmill.execution.base import Executor

T = TypeVar("T")
R = TypeVar("R")


class LocalExecutor(Executor):
    NAME = "local"
    DISTRIBUTED = False

    def map(
        self,
        function: Callable[[T], R],
        items: Sequence[T],
        *,
        label: str,
        describe: Callable[[T], str] = str,
    ) -> list[R]:
        results = []
        for item in items:
            try:
                results.append(function(item))
            except GristmillError:
                raise
            except Exception as exc:
                raise ExecutionError(
                    f"{label} {describe(item)} failed: {type(exc).__name__}: {exc}"
                ) from exc
        return results

    @property
    def partitions(self) -> int:
        return self.config.partitions or os.cpu_count() or 1

"""The executor interface."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeVar

if TYPE_CHECKING:
    from gristmill.config import ExecutionConfig
    from gristmill.execution.staging import StagingArea

T = TypeVar("T")
R = TypeVar("R")


class Executor(ABC):
    """Where a command's partitions run. Capabilities are class constants."""

    NAME: ClassVar[str]
    DISTRIBUTED: ClassVar[bool]
    """Work leaves this process: stages split it into partitions, hand data over through
    `staging()`, and run functions that import everything they use."""

    def __init__(self, config: ExecutionConfig, root: Path) -> None:
        self.config = config
        self.root = root

    @abstractmethod
    def map(
        self,
        function: Callable[[T], R],
        items: Sequence[T],
        *,
        label: str,
        describe: Callable[[T], str] = str,
    ) -> list[R]:
        """`function(item)` for every item, in the items' order. The first failure stops
        the job: an ExecutionError names the `label` and the item (`describe(item)`)."""

    @property
    @abstractmethod
    def partitions(self) -> int:
        """How many partitions a job is split into."""

    @contextlib.contextmanager
    def staging(self, kind: str) -> Iterator[StagingArea]:
        """A folder of its own for one job, removed when the job ends (and, if the driver
        was killed, by the next job of the project)."""
        from gristmill.execution.staging import StagingArea

        area = StagingArea.create(self.staging_url, kind)
        try:
            yield area
        finally:
            area.remove()

    @property
    def staging_url(self) -> str:
        if self.config.staging:
            return self.config.staging
        return (self.root / ".gristmill" / "staging").as_uri()

    @contextlib.contextmanager
    def joblib_backend(self) -> Iterator[None]:
        """scikit-learn's parallel work (a hyperparameter search's fits) runs here."""
        yield

    def close(self) -> None:  # noqa: B027 - an executor with nothing to stop
        """Stop what this executor started."""

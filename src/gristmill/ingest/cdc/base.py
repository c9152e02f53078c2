"""The ChangeLog interface: a source table's committed changes, in commit order, read
from a position and confirmed once applied.

A change log is a replication slot (PostgreSQL) or its like: the source keeps every change
from the last confirmed position on, so a sync that stops (or is killed) between applying
changes and confirming them reads them again; the warehouse records the position it has
applied with the data (`apply.py`), and changes at or before it are skipped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

from gristmill.ingest.sources.base import Snapshot

Operation = Literal["upsert", "delete", "truncate"]


@dataclass(frozen=True)
class Change:
    """One row's change: its values as the source's text (None: NULL), by source column."""

    operation: Operation
    values: dict[str, str | None] = field(default_factory=dict)
    """An upsert: the new row; a delete: at least the key columns."""
    unchanged: tuple[str, ...] = ()
    """Columns an update left as they were, whose value the log does not carry (PostgreSQL
    sends no unchanged TOASTed value): the warehouse keeps what it holds."""


@dataclass(frozen=True)
class CommittedTransaction:
    """A source transaction's changes to the table, applied together or not at all."""

    position: int
    """Where the transaction ends in the log: confirming it releases it and all before."""
    commit_time_us: int
    """When it committed at the source, in microseconds since 1970 (UTC)."""
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class LogStart:
    """A change log just created, and the state of the source it begins at."""

    position: int
    snapshot: Snapshot
    """The table as of `position`, for the initial load: every later change is in the log."""


@dataclass(frozen=True)
class LogStatus:
    name: str
    """The slot's name at the source."""
    publication: str
    exists: bool
    active: bool = False
    """Whether a process is reading the log now."""
    confirmed: int | None = None
    """The last position confirmed applied."""
    lag_bytes: int | None = None
    """How much log the source keeps for it beyond the confirmed position."""
    lag_seconds: float | None = None
    """How long ago the oldest change not yet applied committed (0: none waits)."""


class ChangeLog(ABC):
    """A source table's log of changes (`Source.change_log`)."""

    name: str
    publication: str

    @abstractmethod
    def start(self) -> LogStart:
        """Create the log (replacing one of the same name that no process reads: a load
        that never finished) and the snapshot the initial load reads."""

    @abstractmethod
    def read(self, after: int, max_changes: int) -> list[CommittedTransaction]:
        """Whole transactions that commit after position `after`, in commit order, until
        about `max_changes` messages (a larger transaction comes whole)."""

    @abstractmethod
    def confirm(self, position: int) -> None:
        """Every change up to `position` is applied: the source may let it go."""

    @abstractmethod
    def current_position(self) -> int:
        """The source's log position now: a sync that catches up stops there."""

    @abstractmethod
    def exists(self) -> bool:
        """Whether the log is there at the source (a slot may have been dropped)."""

    @abstractmethod
    def status(self) -> LogStatus: ...

    @abstractmethod
    def drop(self) -> bool:
        """Remove the log at the source (the slot and its publication); False if none was."""

    @abstractmethod
    def close(self) -> None: ...

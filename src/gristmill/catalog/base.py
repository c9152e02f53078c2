"""The Catalog interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TableSyncRecord:
    """What one table's sync did in one run."""

    source: str
    table: str
    target: str
    mode: str
    status: str
    rows: int = 0
    seconds: float = 0.0
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepRecord:
    """What one step of `gristmill run` did."""

    asset: str
    kind: str
    status: str
    """ok, up_to_date, failed, skipped (an upstream step failed)."""
    started_at: str
    finished_at: str
    rows: int = 0
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class AssetVersion:
    """The version of an asset's data the last successful build made."""

    name: str
    definition_hash: str
    data_version: str
    relation: str
    run_id: int
    built_at: str


@dataclass
class FiringRecord:
    """One firing of a schedule of `gristmill schedule`: its runs, retries included."""

    schedule: str
    fired_at: str
    """When the scheduler fired it (UTC, ISO): the schedule is next due at its first
    cron time after this, so a firing that catches up covers every slot missed before."""
    finished_at: str
    status: str
    """ok, failed or interrupted."""
    attempts: int
    run_id: int | None
    """The run of the last attempt (None when the run could not start)."""
    error: str | None = None


class Catalog(ABC):
    @abstractmethod
    def start_run(self, command: str) -> int: ...

    @abstractmethod
    def finish_run(self, run_id: int, status: str) -> None: ...

    @abstractmethod
    def record_sync(self, run_id: int, record: TableSyncRecord) -> None: ...

    @abstractmethod
    def record_schema(
        self, source: str, table: str, schema: list[dict[str, Any]], change: str
    ) -> None:
        """Append a version of a table's schema (each column's name and type, and
        `dropped: true` for a column the source no longer gives), with what changed since
        the last one."""

    @abstractmethod
    def mirror_state(self, source: str, table: str, state: dict[str, Any]) -> None: ...

    @abstractmethod
    def mirrored_states(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(source, source table) -> the last sync state mirrored. The warehouse's state
        is the truth: a crash between its commit and the mirror's update leaves this behind."""

    @abstractmethod
    def runs(self, limit: int = 20) -> list[dict[str, Any]]: ...

    @abstractmethod
    def syncs(self, run_id: int) -> list[dict[str, Any]]: ...

    @abstractmethod
    def schema_history(self, source: str, table: str) -> list[dict[str, Any]]: ...

    # -- the asset graph ------------------------------------------------------------------
    @abstractmethod
    def record_step(self, run_id: int, step: StepRecord) -> None: ...

    @abstractmethod
    def steps(self, run_id: int) -> list[dict[str, Any]]: ...

    @abstractmethod
    def asset_versions(self) -> dict[str, AssetVersion]: ...

    @abstractmethod
    def record_asset_version(self, version: AssetVersion) -> None: ...

    @abstractmethod
    def record_checks(self, run_id: int | None, asset: str, results: list[dict[str, Any]]) -> None:
        """Store check results (each `CheckResult.to_dict()`)."""

    @abstractmethod
    def check_results(self, asset: str | None = None, limit: int = 100) -> list[dict[str, Any]]: ...

    @abstractmethod
    def cached_references(self, hashes: list[str]) -> dict[str, Any]:
        """What parsing the SQL with each content hash found, where known."""

    @abstractmethod
    def cache_references(self, found: dict[str, Any]) -> None: ...

    @abstractmethod
    def record_firing(self, firing: FiringRecord) -> None: ...

    @abstractmethod
    def last_fired(self, schedule: str) -> str | None:
        """When `schedule` last fired (`FiringRecord.fired_at`), or None: never."""

    @abstractmethod
    def firings(self, schedule: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The latest firings, newest first."""

    @abstractmethod
    def close(self) -> None: ...

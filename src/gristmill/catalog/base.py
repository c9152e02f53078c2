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


class Catalog(ABC):
    @abstractmethod
    def start_run(self, command: str) -> int: ...

    @abstractmethod
    def finish_run(self, run_id: int, status: str) -> None: ...

    @abstractmethod
    def record_sync(self, run_id: int, record: TableSyncRecord) -> None: ...

    @abstractmethod
    def record_schema(
        self, source: str, table: str, schema: list[dict[str, str]], change: str
    ) -> None:
        """Append a version of a table's schema, with what changed since the last one."""

    @abstractmethod
    def mirror_state(self, source: str, table: str, state: dict[str, Any]) -> None: ...

    @abstractmethod
    def runs(self, limit: int = 20) -> list[dict[str, Any]]: ...

    @abstractmethod
    def syncs(self, run_id: int) -> list[dict[str, Any]]: ...

    @abstractmethod
    def schema_history(self, source: str, table: str) -> list[dict[str, Any]]: ...

    @abstractmethod
    def close(self) -> None: ...

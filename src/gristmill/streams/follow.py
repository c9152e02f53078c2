"""Following change logs and streams: what `gristmill stream` does for the project's cdc
tables and [streams], until it is told to stop (a stream's batches: `consume.py`).

Each table is polled for transactions past the position it last applied; when there are
some, the warehouse is opened, the table caught up (`CdcSync`, micro-batches committed with
their position) and the warehouse closed again. So a DuckDB warehouse file is held only
while changes are committed, and other processes (`gristmill run`, `profile`, `serve`, a
read-only DuckDB connection) open it in between; when one holds it, the table waits for
the next poll. A table that fails is reported and tried again after a pause; the others
go on. Stopping (SIGTERM, Ctrl-C) finishes the batch under way; a SIGKILL loses nothing
(the next start reads again what the warehouse has not got).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.catalog.base import TableSyncRecord
from gristmill.config import StreamConfig, TableConfig
from gristmill.errors import ConfigError, WarehouseBusyError
from gristmill.ingest.cdc.base import ChangeLog
from gristmill.ingest.cdc.pgoutput import parse_lsn
from gristmill.ingest.sources.base import Source
from gristmill.streams.consume import StreamConsumer

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
"""How long a failed table waits before it is tried again."""
STOP_SECONDS = 60.0
"""How long a follower in the background gets to finish its batch when told to stop."""


@dataclass
class FollowedTable:
    source: str
    table: str
    config: TableConfig
    position: str | None = None
    """The last position applied (None: not known yet, or the table is not loaded)."""
    changes: int = 0
    """Source changes read and applied since the start."""
    upserted: int = 0
    deleted: int = 0
    batches: int = 0
    last_apply_seconds: float | None = None
    waits: int = 0
    """Polls that found the warehouse held by another process."""
    lag_bytes: int | None = None
    """The source's log beyond the applied position, at the last poll."""
    error: str | None = None
    failed_at: float = 0.0
    ever_failed: bool = False

    @property
    def key(self) -> str:
        return f"{self.source}.{self.table}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.key,
            "position": self.position,
            "changes": self.changes,
            "rows_upserted": self.upserted,
            "rows_deleted": self.deleted,
            "batches": self.batches,
            "last_apply_seconds": self.last_apply_seconds,
            "warehouse_waits": self.waits,
            "lag_bytes": self.lag_bytes,
            "error": self.error,
        }


@dataclass
class FollowedStream:
    name: str
    config: StreamConfig
    consumer: StreamConsumer | None = None
    messages: int = 0
    applied: int = 0
    dead: int = 0
    batches: int = 0
    last_apply_seconds: float | None = None
    waits: int = 0
    lag: int | None = None
    """Messages in the stream not yet delivered to the group, at the last poll."""
    error: str | None = None
    failed_at: float = 0.0
    ever_failed: bool = False

    @property
    def key(self) -> str:
        return self.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.name,
            "messages": self.messages,
            "applied": self.applied,
            "dead_letters": self.dead,
            "batches": self.batches,
            "last_apply_seconds": self.last_apply_seconds,
            "warehouse_waits": self.waits,
            "lag_messages": self.lag,
            "error": self.error,
        }


@dataclass
class Follower:
    """The cdc tables of a project, followed until `stop` is set."""

    root: Path
    selectors: list[str] = field(default_factory=list)
    poll_seconds: float = 0.5
    on_progress: Callable[[list[FollowedTable | FollowedStream]], None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        from gristmill.project import Project

        project = Project.load(self.root)
        try:
            self.config = project.config
            self.streams = [
                FollowedStream(n, c)
                for n, c in self.config.streams.items()
                if not self.selectors or n in self.selectors
            ]
            self.tables = self._tables()
            if not self.tables and not self.streams:
                raise ConfigError(
                    'No table syncs with mode = "cdc" and no [streams.*] is declared in'
                    f" gristmill.toml{' among ' + ', '.join(self.selectors) if self.selectors else ''}:"
                    " gristmill stream follows those."
                )
            self.run_id = project.catalog.start_run(
                "stream" + (f" {' '.join(self.selectors)}" if self.selectors else "")
            )
        finally:
            project.close()
        self._sources: dict[str, Source] = {}
        self._logs: dict[str, ChangeLog] = {}
        """Per table, the change log asked whether it has news (one connection kept)."""

    def _tables(self) -> list[FollowedTable]:
        from gristmill.ingest.run import select_tables

        chosen: dict[tuple[str, str], TableConfig] = {}
        selectors = [s for s in self.selectors if s not in self.config.streams]
        if self.selectors and not selectors:
            return []  # only streams were named
        if not self.config.sources and not selectors:
            return []
        for selector in selectors or [None]:  # type: ignore[list-item]
            for source, tables in select_tables(self.config.sources, selector).items():
                for table, config in (tables or {}).items():
                    if config.mode == "cdc":
                        chosen[source, table] = config
        return [FollowedTable(s, t, c) for (s, t), c in chosen.items()]

    def run(self) -> list[FollowedTable]:
        """Follow until stopped; the tables, with what was applied to each."""
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                for table in self.tables:
                    if self.stop.is_set():
                        break
                    self._poll(table)
                for stream in self.streams:
                    if self.stop.is_set():
                        break
                    self._poll_stream(stream)
                if self.on_progress is not None:
                    self.on_progress([*self.tables, *self.streams])
                self.stop.wait(max(0.0, self.poll_seconds - (time.monotonic() - started)))
        finally:
            self._finish()
        return self.tables

    def _source(self, name: str) -> Source:
        from gristmill.ingest.sources import open_source

        if name not in self._sources:
            self._sources[name] = open_source(name, self.config.sources[name], self.root)
        return self._sources[name]

    def _poll(self, table: FollowedTable) -> None:
        if table.error is not None and time.monotonic() - table.failed_at < RETRY_SECONDS:
            return
        try:
            if table.position is not None and not self._pending(table):
                table.error = None
                return
            self._apply(table)
            table.error = None
        except WarehouseBusyError:  # another process holds the file: the next poll
            table.waits += 1
        except Exception as exc:
            self._failed(table, exc)

    def _poll_stream(self, stream: FollowedStream) -> None:
        """Batches of the stream until it has none (or the process is told to stop)."""
        from gristmill.project import Project
        from gristmill.streams.consume import StreamConsumer

        if stream.error is not None and time.monotonic() - stream.failed_at < RETRY_SECONDS:
            return
        try:
            if stream.consumer is None:
                stream.consumer = StreamConsumer(
                    self.root, stream.name, stream.config, consumer=self.config.name
                )
            while not self.stop.is_set():
                result = stream.consumer.poll(lambda: Project.load(self.root))
                if result is None:
                    break
                stream.messages += result.messages
                stream.applied += result.applied
                stream.dead += result.dead
                stream.batches += 1
                stream.last_apply_seconds = result.seconds
            stream.lag = stream.consumer.broker.lag()
            stream.error = None
        except WarehouseBusyError:
            stream.waits += 1
            if stream.consumer is not None:
                stream.consumer.broker.rewind()
        except Exception as exc:
            if stream.consumer is not None:
                stream.consumer.broker.rewind()
            self._failed(stream, exc)

    def _pending(self, table: FollowedTable) -> bool:
        """Whether the log holds a transaction past the applied position (one is decoded);
        how far behind the source's log position the table is, on the way."""
        log = self._logs.get(table.key)
        if log is None:
            source = self._source(table.source)
            log = self._logs[table.key] = source.change_log(
                source.describe(table.table), self.config.name
            )
        try:
            assert table.position is not None
            applied = parse_lsn(table.position)
            table.lag_bytes = max(0, log.current_position() - applied)
            return bool(log.read(applied, 1))
        except Exception:
            self._logs.pop(table.key).close()  # a new connection next time
            raise

    def _apply(self, table: FollowedTable) -> None:
        from gristmill.ingest.cdc.apply import CdcSync
        from gristmill.ingest.run import SCRATCH_PREFIXES
        from gristmill.ingest.spec import resolve_spec
        from gristmill.project import Project

        source = self._source(table.source)
        started = time.perf_counter()
        with Project.load(self.root) as project:
            warehouse = project.warehouse  # opened here, closed with the project
            raw = project.config.warehouse.raw_schema
            warehouse.ensure_schema(raw)
            warehouse.ensure_state_table()
            warehouse.drop_scratch([raw], SCRATCH_PREFIXES)
            spec = resolve_spec(source, table.table, table.config)
            sync = CdcSync(warehouse, source, spec, raw, False, None).for_project(project)
            result = sync.run()
        table.position = result.cursor
        table.changes += result.rows_read
        table.upserted += result.rows
        table.deleted += result.deleted_rows
        table.batches += 1
        table.last_apply_seconds = time.perf_counter() - started

    def _failed(self, table: FollowedTable | FollowedStream, exc: Exception) -> None:
        from gristmill.ingest.run import failure_message

        message = failure_message(table.key, exc)
        if message != table.error:
            logger.error("%s: %s (tried again in %g s)", table.key, message, RETRY_SECONDS)
        table.error = message
        table.ever_failed = True
        table.failed_at = time.monotonic()

    def _finish(self) -> None:
        """One record per table in the catalog's run history, and the run's status."""
        from gristmill.project import Project

        for log in self._logs.values():
            log.close()
        for source in self._sources.values():
            source.close()
        for stream in self.streams:
            if stream.consumer is not None:
                stream.consumer.close()
        project = Project.load(self.root)
        try:
            catalog = project.catalog
            for table in self.tables:
                catalog.record_sync(
                    self.run_id,
                    TableSyncRecord(
                        source=table.source,
                        table=table.table,
                        target=table.config.target or table.table.split(".")[-1],
                        mode="cdc",
                        status="failed" if table.ever_failed else "ok",
                        rows=table.upserted,
                        seconds=0.0,
                        error=table.error,
                        details=table.to_dict(),
                    ),
                )
            for stream in self.streams:
                catalog.record_sync(
                    self.run_id,
                    TableSyncRecord(
                        source="stream",
                        table=stream.name,
                        target=stream.config.table or "",
                        mode="stream",
                        status="failed" if stream.ever_failed else "ok",
                        rows=stream.applied,
                        seconds=0.0,
                        error=stream.error,
                        details=stream.to_dict(),
                    ),
                )
            followed: list[FollowedTable | FollowedStream] = [*self.tables, *self.streams]
            ok = not any(t.ever_failed for t in followed)
            catalog.finish_run(self.run_id, "ok" if ok else "failed")
        finally:
            project.close()


@contextlib.contextmanager
def following(root: Path, poll_seconds: float = 0.5) -> Iterator[Follower]:
    """Follow every cdc table and stream of the project on a thread while the block runs
    (`gristmill serve --with-streams`); stopped, after its batch under way, on leaving.
    A project with nothing to follow is a ConfigError before the block starts."""
    follower = Follower(root, [], poll_seconds)

    def run() -> None:
        try:
            follower.run()
        except Exception:  # the server goes on; its operators see why the streams stopped
            logger.exception("Following the streams stopped")

    thread = threading.Thread(target=run, name="gristmill-stream", daemon=True)
    thread.start()
    try:
        yield follower
    finally:
        follower.stop.set()
        thread.join(STOP_SECONDS)
        if thread.is_alive():
            logger.error("The streams did not stop within %g s", STOP_SECONDS)

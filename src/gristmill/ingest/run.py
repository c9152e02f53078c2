"""An ingest run: every selected source table synced in turn, each recorded in the
catalog; `sync_table` is one table's sync as a step of `gristmill run`.

Each table is its own unit: one that fails (its source refuses the connection, a type
does not convert, a file cannot be read, a driver raises something unexpected) is
reported with its reason, and the others go on. A source that cannot be opened fails
each of its tables, or, when its tables cannot even be listed, one entry for all of them
(`SOURCE.*`). Only an interrupt (Ctrl-C) stops the run.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from gristmill.catalog.base import TableSyncRecord
from gristmill.config import SourceConfig, TableConfig, redact
from gristmill.errors import ConfigError, GristmillError, NotFoundError, did_you_mean
from gristmill.ingest.cdc.apply import CdcSync
from gristmill.ingest.engine import KEYS_PREFIX, STAGE_PREFIX, Progress, TableResult, TableSync
from gristmill.ingest.read_ahead import ReadAhead, SourcesOpenedAhead, read_ahead_plans
from gristmill.ingest.schema import describe_columns
from gristmill.ingest.sources import open_source
from gristmill.ingest.sources.base import Source
from gristmill.ingest.spec import resolve_spec

if TYPE_CHECKING:
    from gristmill.project import Project

log = logging.getLogger(__name__)

EVERY_TABLE = "*"
"""The table of the one result that stands for all tables of a source whose tables could
not be listed."""
OUTCOMES = ("synced", "unchanged", "failed")
SCRATCH_PREFIXES = (STAGE_PREFIX, KEYS_PREFIX)
"""The names of the tables a sync stages its reads in, beside its target."""


@dataclass
class IngestSummary:
    run_id: int
    tables: list[TableResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(t.status == "ok" for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def counts(self) -> dict[str, int]:
        """How many tables had each outcome (synced, unchanged, failed); none listed at 0."""
        outcomes = [t.outcome for t in self.tables]
        return {o: outcomes.count(o) for o in OUTCOMES if o in outcomes}

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "tables": [_table_dict(t) for t in self.tables],
        }


def _table_dict(result: TableResult) -> dict[str, Any]:
    fields = asdict(result)
    del fields["changed"]  # the outcome says it
    first = ("source", "table", "target", "mode")
    return {
        **{k: fields.pop(k) for k in first},
        "outcome": result.outcome,
        **fields,
    }


def select_tables(
    sources: dict[str, SourceConfig], selector: str | None
) -> dict[str, dict[str, TableConfig] | None]:
    """Source name -> the tables to sync (None: every table the source lists)."""
    if not selector:
        return {name: config.tables for name, config in sources.items()}
    source, _, table = selector.partition(".")
    if source not in sources:
        raise ConfigError(
            f"No source '{source}' in gristmill.toml.{did_you_mean(source, sources)}"
            f" Sources: {', '.join(sources) or 'none'}."
        )
    declared = sources[source].tables
    if not table:
        return {source: declared}
    if declared is None:
        # Every table of the source syncs; one named explicitly does even if the source
        # would not list it (a view, a partition).
        return {source: {table: TableConfig()}}
    if table not in declared:
        raise NotFoundError(
            f"Source '{source}' has no table '{table}' in gristmill.toml."
            f"{did_you_mean(table, declared)}"
        )
    return {source: {table: declared[table]}}


def ingest(
    project: Project,
    selector: str | None = None,
    *,
    full_refresh: bool = False,
    progress: Progress | None = None,
) -> IngestSummary:
    """Sync every configured source table (or those `selector` names: SOURCE or SOURCE.TABLE).

    A table that fails is reported in the summary, with its reason, and the others go on.
    """
    started = time.perf_counter()
    config = project.config
    if not config.sources:
        raise ConfigError("gristmill.toml defines no [sources.*]; add one to ingest from.")
    selection = select_tables(config.sources, selector)
    only_table = (selector.partition(".")[2] or None) if selector else None
    catalog = project.catalog
    # On workers, a read is split by its size, which a read begun ahead would not know.
    plans = (
        {}
        if full_refresh or project.executor.DISTRIBUTED
        else read_ahead_plans(
            config.sources, list(selection), only_table, catalog.mirrored_states()
        )
    )
    with SourcesOpenedAhead(config.sources, project.root, list(selection), plans) as opened:
        opened.wait_until_reading()
        warehouse = project.warehouse
        raw_schema = config.warehouse.raw_schema
        warehouse.ensure_schema(raw_schema)
        warehouse.ensure_state_table()
        warehouse.drop_scratch([raw_schema], SCRATCH_PREFIXES)
        run_id = catalog.start_run("ingest" + (f" {selector}" if selector else ""))
        summary = IngestSummary(run_id)
        syncs = _RunSyncs(project, run_id, full_refresh, progress)
        status = "failed"
        try:
            for source_name, tables in selection.items():
                summary.tables += syncs.sync_source(source_name, tables, opened)
            status = "ok" if summary.ok else "failed"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            summary.seconds = time.perf_counter() - started
            catalog.finish_run(run_id, status)
    return summary


class OpenedSources:
    """The sources of one `gristmill run`, each opened once, when its first table syncs:
    its other tables reuse it, and a source that could not be opened fails them with the
    same reason without trying again (a host that does not answer costs one connect
    timeout, not one per table)."""

    def __init__(self, project: Project) -> None:
        self._project = project
        self._opened: dict[str, Source | Exception] = {}

    def open(self, name: str) -> Source:
        found = self._opened.get(name)
        if found is None:
            try:
                found = open_source(name, self._project.config.sources[name], self._project.root)
            except Exception as exc:
                found = exc
            self._opened[name] = found
        if isinstance(found, Exception):
            raise found
        return found

    def close(self) -> None:
        for opened in self._opened.values():
            if isinstance(opened, Source):
                opened.close()
        self._opened.clear()


def sync_table(
    project: Project,
    source_name: str,
    table_name: str,
    run_id: int,
    *,
    full_refresh: bool = False,
    progress: Progress | None = None,
    sources: OpenedSources | None = None,
) -> TableResult:
    """Sync one configured source table as a step of a larger run (`gristmill run`).

    `sources` holds the run's open sources; without it, the source is opened for this
    table alone."""
    source_config = project.config.sources[source_name]
    table_config = (source_config.tables or {}).get(table_name) or TableConfig()
    syncs = _RunSyncs(project, run_id, full_refresh, progress)
    opened = sources or OpenedSources(project)
    try:
        try:
            source = opened.open(source_name)
        except Exception as exc:
            return syncs.failed(source_name, table_name, table_config, exc)
        return syncs.sync(source, table_name, table_config)
    finally:
        if sources is None:
            opened.close()


def failure_message(what: str, exc: Exception) -> str:
    """What a failed table (or step) reports: a GristmillError's own message; for any
    other exception, a bug in gristmill or a driver, its type and message, the traceback
    logged at debug level."""
    if isinstance(exc, GristmillError):
        return redact(str(exc))
    log.debug("%s failed unexpectedly", what, exc_info=exc)
    return redact(f"unexpected {type(exc).__name__}: {exc} (gristmill --debug shows where)")


def _schema_warnings(result: TableResult, raw_schema: str) -> list[str]:
    """What the table's schema change leaves for the user to decide."""
    table = f"{raw_schema}.{result.target}"
    warnings = []
    if result.unfilled_columns:
        columns = ", ".join(result.unfilled_columns)
        warnings.append(
            f"{result.key}: new column(s) {columns}: rows synced before and not changed since"
            f" hold NULL there in {table}, whatever the source holds (a DEFAULT, a backfill)."
            f" To load their values: gristmill ingest {result.key} --full-refresh"
        )
    if result.dropped_columns:
        columns = ", ".join(result.dropped_columns)
        gone = f"{result.key}: column(s) {columns} no longer in the source table (dropped, renamed or excluded)"
        if result.mode == "full":
            warnings.append(f"{gone}: removed from {table}, which was reloaded in full.")
        else:
            warnings.append(
                f"{gone}: {table} keeps them with the values synced so far; rows synced from"
                " now on hold NULL there."
            )
    return warnings


@dataclass
class _RunSyncs:
    """The table syncs of one run, each recorded in the catalog."""

    project: Project
    run_id: int
    full_refresh: bool
    progress: Progress | None
    targets: dict[str, str] = field(default_factory=dict)
    """Warehouse table -> the source table loading into it, to refuse a second."""

    def sync_source(
        self, name: str, tables: dict[str, TableConfig] | None, opened: SourcesOpenedAhead
    ) -> list[TableResult]:
        """Sync `tables` of source `name` (None: every table it lists)."""
        try:
            source, read_ahead = opened.take(name)
        except Exception as exc:
            entries = tables or {EVERY_TABLE: TableConfig()}
            return [self.failed(name, t, c, exc) for t, c in entries.items()]
        try:
            if tables is None:
                try:
                    tables = {t: TableConfig() for t in source.list_tables()}
                except Exception as exc:
                    return [self.failed(name, EVERY_TABLE, TableConfig(), exc)]
            results = []
            for table_name, table_config in tables.items():
                ahead = read_ahead if read_ahead and read_ahead.table == table_name else None
                results.append(self.sync(source, table_name, table_config, ahead))
            return results
        finally:
            if read_ahead is not None:
                read_ahead.discard()
            source.close()

    def failed(
        self, source: str, table: str, table_config: TableConfig, exc: Exception
    ) -> TableResult:
        """The result of a table that could not be synced at all (its source failed)."""
        every = table == EVERY_TABLE
        target = EVERY_TABLE if every else self._target(table, table_config)
        mode = "" if every else table_config.mode
        result = TableResult(source, table, target, mode, status="failed")
        result.error = failure_message(result.key, exc)
        self._start(result)
        self._finish(result)
        return result

    @staticmethod
    def _target(table: str, table_config: TableConfig) -> str:
        return table_config.target or table.split(".")[-1]

    def sync(
        self,
        source: Source,
        table_name: str,
        table_config: TableConfig,
        read_ahead: ReadAhead | None = None,
    ) -> TableResult:
        project = self.project
        raw_schema = project.config.warehouse.raw_schema
        target = self._target(table_name, table_config)
        result = TableResult(source.name, table_name, target, table_config.mode)
        self._start(result)
        started = time.perf_counter()
        try:
            if target in self.targets:
                raise ConfigError(
                    f"{result.key} and {self.targets[target]} both load into {raw_schema}.{target};"
                    ' set target = "..." on one of them.'
                )
            self.targets[target] = result.key
            spec = read_ahead.spec if read_ahead else resolve_spec(source, table_name, table_config)
            sync = (CdcSync if table_config.mode == "cdc" else TableSync)(
                project.warehouse,
                source,
                spec,
                raw_schema,
                self.full_refresh,
                self.progress,
                read_ahead,
                project.executor,
            )
            if isinstance(sync, CdcSync):
                sync.for_project(project)
            result = sync.run()
            result.warnings = _schema_warnings(result, raw_schema)
            self._record_schema(result, sync)
            project.catalog.mirror_state(source.name, table_name, sync.state)
        except Exception as exc:
            result.status = "failed"
            result.error = failure_message(result.key, exc)
        finally:
            if read_ahead is not None:
                read_ahead.discard()
        result.seconds = time.perf_counter() - started
        self._finish(result)
        return result

    def _record_schema(self, result: TableResult, sync: TableSync) -> None:
        """A new version of the table's schema in the catalog, when its columns changed."""
        catalog = self.project.catalog
        columns = describe_columns(sync.table_schema)
        history = catalog.schema_history(result.source, result.table)
        if history and json.loads(history[-1]["columns"]) == columns:
            return
        change = result.schema_change or ("created" if not history else "replaced")
        if result.unfilled_columns:
            change += (
                f"; rows synced before hold NULL in {', '.join(result.unfilled_columns)}"
                f" (gristmill ingest {result.key} --full-refresh loads their values)"
            )
        catalog.record_schema(result.source, result.table, columns, change)

    def _start(self, result: TableResult) -> None:
        if self.progress is not None:
            self.progress.start(result.key)

    def _finish(self, result: TableResult) -> None:
        """Record the table's sync in the catalog, and show it done."""
        self.project.catalog.record_sync(
            self.run_id,
            TableSyncRecord(
                source=result.source,
                table=result.table,
                target=result.target,
                mode=result.mode,
                status=result.status,
                rows=result.rows,
                seconds=result.seconds,
                error=result.error,
                details={
                    "outcome": result.outcome,
                    "rows_read": result.rows_read,
                    "cursor": result.cursor,
                    "schema_change": result.schema_change,
                    "rejected_rows": result.rejected_rows,
                    "deleted_rows": result.deleted_rows,
                    "dropped_columns": result.dropped_columns,
                    "unfilled_columns": result.unfilled_columns,
                    "warnings": result.warnings,
                },
            ),
        )
        if self.progress is not None:
            self.progress.finish(result.key, result)

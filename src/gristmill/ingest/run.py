"""An ingest run: every selected source table synced in turn, each recorded in the
catalog; `sync_table` is one table's sync as a step of `gristmill run`."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from gristmill.catalog.base import TableSyncRecord
from gristmill.config import SourceConfig, TableConfig, redact
from gristmill.errors import ConfigError, GristmillError, NotFoundError, did_you_mean
from gristmill.ingest.engine import Progress, TableResult, TableSync
from gristmill.ingest.read_ahead import ReadAhead, SourcesOpenedAhead, read_ahead_plans
from gristmill.ingest.schema import describe_columns
from gristmill.ingest.sources import open_source
from gristmill.ingest.sources.base import Source
from gristmill.ingest.spec import resolve_spec

if TYPE_CHECKING:
    from gristmill.project import Project


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "tables": [asdict(t) for t in self.tables],
        }


def _select_tables(
    config_sources: dict[str, SourceConfig], selector: str | None
) -> tuple[list[str], str | None]:
    if not selector:
        return list(config_sources), None
    source, _, table = selector.partition(".")
    if source not in config_sources:
        raise ConfigError(
            f"No source '{source}' in gristmill.toml.{did_you_mean(source, config_sources)}"
            f" Sources: {', '.join(config_sources) or 'none'}."
        )
    return [source], table or None


def ingest(
    project: Project,
    selector: str | None = None,
    *,
    full_refresh: bool = False,
    progress: Progress | None = None,
) -> IngestSummary:
    """Sync every configured source table (or those `selector` names: SOURCE or SOURCE.TABLE).

    A table that fails is reported in the summary and the others go on.
    """
    started = time.perf_counter()
    config = project.config
    if not config.sources:
        raise ConfigError("gristmill.toml defines no [sources.*]; add one to ingest from.")
    source_names, only_table = _select_tables(config.sources, selector)
    catalog = project.catalog
    plans = (
        {}
        if full_refresh
        else read_ahead_plans(config.sources, source_names, only_table, catalog.mirrored_states())
    )
    with SourcesOpenedAhead(config.sources, project.root, source_names, plans) as opened:
        opened.wait_until_reading()
        warehouse = project.warehouse
        warehouse.ensure_schema(config.warehouse.raw_schema)
        warehouse.ensure_state_table()
        run_id = catalog.start_run("ingest" + (f" {selector}" if selector else ""))
        summary = IngestSummary(run_id)
        syncs = _RunSyncs(project, run_id, full_refresh, progress)
        try:
            for source_name in source_names:
                source_config = config.sources[source_name]
                source, read_ahead = opened.take(source_name)
                try:
                    tables = source_config.tables or {
                        t: TableConfig() for t in source.list_tables()
                    }
                    if only_table is not None:
                        if only_table not in tables:
                            raise NotFoundError(
                                f"Source '{source_name}' has no table '{only_table}' in"
                                f" gristmill.toml.{did_you_mean(only_table, tables)}"
                            )
                        tables = {only_table: tables[only_table]}
                    for table_name, table_config in tables.items():
                        ahead = (
                            read_ahead if read_ahead and read_ahead.table == table_name else None
                        )
                        summary.tables.append(syncs.sync(source, table_name, table_config, ahead))
                finally:
                    if read_ahead is not None:
                        read_ahead.discard()
                    source.close()
        finally:
            summary.seconds = time.perf_counter() - started
            catalog.finish_run(run_id, "ok" if summary.ok else "failed")
    return summary


def sync_table(
    project: Project,
    source_name: str,
    table_name: str,
    run_id: int,
    *,
    full_refresh: bool = False,
    progress: Progress | None = None,
) -> TableResult:
    """Sync one configured source table as a step of a larger run (`gristmill run`)."""
    source_config = project.config.sources[source_name]
    source = open_source(source_name, source_config, project.root)
    try:
        table_config = (source_config.tables or {}).get(table_name) or TableConfig()
        syncs = _RunSyncs(project, run_id, full_refresh, progress)
        return syncs.sync(source, table_name, table_config)
    finally:
        source.close()


@dataclass
class _RunSyncs:
    """The table syncs of one run, each recorded in the catalog."""

    project: Project
    run_id: int
    full_refresh: bool
    progress: Progress | None
    targets: dict[str, str] = field(default_factory=dict)
    """Warehouse table -> the source table loading into it, to refuse a second."""

    def sync(
        self,
        source: Source,
        table_name: str,
        table_config: TableConfig,
        read_ahead: ReadAhead | None = None,
    ) -> TableResult:
        project, progress = self.project, self.progress
        raw_schema = project.config.warehouse.raw_schema
        key = f"{source.name}.{table_name}"
        target = table_config.target or table_name.split(".")[-1]
        result = TableResult(source.name, table_name, target, table_config.mode)
        if progress is not None:
            progress.start(key)
        started = time.perf_counter()
        try:
            if target in self.targets:
                raise ConfigError(
                    f"{key} and {self.targets[target]} both load into {raw_schema}.{target}; "
                    f'set target = "..." on one of them.'
                )
            self.targets[target] = key
            spec = read_ahead.spec if read_ahead else resolve_spec(source, table_name, table_config)
            sync = TableSync(
                project.warehouse, source, spec, raw_schema, self.full_refresh, progress, read_ahead
            )
            result = sync.run()
            columns = describe_columns(sync.table_schema)
            history = project.catalog.schema_history(source.name, table_name)
            if not history or json.loads(history[-1]["columns"]) != columns:
                change = result.schema_change or ("created" if not history else "replaced")
                project.catalog.record_schema(source.name, table_name, columns, change)
            project.catalog.mirror_state(source.name, table_name, sync.state)
        except GristmillError as exc:
            result.status = "failed"
            result.error = redact(str(exc))
        finally:
            if read_ahead is not None:
                read_ahead.discard()
        result.seconds = time.perf_counter() - started
        project.catalog.record_sync(
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
                    "cursor": result.cursor,
                    "schema_change": result.schema_change,
                    "rejected_rows": result.rejected_rows,
                    "deleted_rows": result.deleted_rows,
                },
            ),
        )
        if progress is not None:
            progress.finish(key, result)
        return result

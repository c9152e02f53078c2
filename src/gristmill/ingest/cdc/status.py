"""What `gristmill ingest --status` and `--drop-slot` do: each change log's state at the
source (a slot keeps the source's log while gristmill is stopped, so its lag is shown in
bytes and time) and its removal."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError
from gristmill.ingest.cdc.pgoutput import format_lsn
from gristmill.ingest.sources import open_source

if TYPE_CHECKING:
    from gristmill.config import TableConfig
    from gristmill.project import Project


@dataclass
class LogReport:
    table: str
    """SOURCE.TABLE"""
    slot: str
    publication: str
    exists: bool
    active: bool
    confirmed: str | None
    """The position the source holds as applied (PostgreSQL's LSN)."""
    applied: str | None
    """The position the warehouse has applied (it may be ahead of `confirmed` by a batch
    a killed sync committed but did not confirm)."""
    lag_bytes: int | None
    lag_seconds: float | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cdc_tables(project: Project, selector: str | None) -> list[tuple[str, str, TableConfig]]:
    from gristmill.ingest.run import select_tables

    found = [
        (source, table, config)
        for source, tables in select_tables(project.config.sources, selector).items()
        for table, config in (tables or {}).items()
        if config.mode == "cdc"
    ]
    if not found:
        raise ConfigError(
            f'No table{f" of {selector}" if selector else ""} syncs with mode = "cdc" in'
            " gristmill.toml: only those have a change log."
        )
    return found


def log_status(project: Project, selector: str | None = None) -> list[LogReport]:
    """The change log of every cdc table (of `selector`): one that cannot be asked is
    reported with its reason, the others go on."""
    reports = []
    for source_name, table, _ in _cdc_tables(project, selector):
        key = f"{source_name}.{table}"
        try:
            source = open_source(source_name, project.config.sources[source_name], project.root)
            try:
                log = source.change_log(source.describe(table), project.config.name)
                try:
                    status = log.status()
                finally:
                    log.close()
            finally:
                source.close()
        except Exception as exc:
            from gristmill.ingest.run import failure_message

            reports.append(
                LogReport(
                    key, "", "", False, False, None, None, None, None, failure_message(key, exc)
                )
            )
            continue
        state = project.warehouse.read_state(source_name, table) or {}
        reports.append(
            LogReport(
                key,
                status.name,
                status.publication,
                status.exists,
                status.active,
                format_lsn(status.confirmed) if status.confirmed is not None else None,
                state.get("position"),
                status.lag_bytes,
                status.lag_seconds,
            )
        )
    return reports


def drop_log(project: Project, selector: str) -> bool:
    """Remove SOURCE.TABLE's slot and publication at the source; its next sync loads the
    table in full again (a new slot, a new snapshot). False: there was no slot."""
    source_name, _, table = selector.partition(".")
    if not table:
        raise ConfigError(
            f"--drop-slot removes one table's slot: name it as SOURCE.TABLE, not {selector!r}."
        )
    ((source_name, table, _),) = _cdc_tables(project, selector)
    source = open_source(source_name, project.config.sources[source_name], project.root)
    try:
        log = source.change_log(source.describe(table), project.config.name)
        try:
            return log.drop()
        finally:
            log.close()
    finally:
        source.close()

"""`gristmill ingest`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gristmill.cli.output import ENGINE, EngineName, RichProgress, print_summary

if TYPE_CHECKING:
    from gristmill.project import Project


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)


def ingest(
    selector: str | None = typer.Argument(None, help="SOURCE or SOURCE.TABLE; all when omitted."),
    full_refresh: bool = typer.Option(
        False, "--full-refresh", help="Reload tables in full, ignoring cursors and files loaded."
    ),
    json_output: bool = typer.Option(
        False,
        "--json",
        help="Print a JSON summary: every table with its outcome (synced, unchanged, failed)"
        " and error.",
    ),
    engine: EngineName | None = ENGINE,
    status: bool = typer.Option(
        False,
        "--status",
        help='Show the change log (replication slot) of each mode = "cdc" table: its name,'
        " whether a process reads it, and how far behind it is (bytes and seconds).",
    ),
    drop_slot: bool = typer.Option(
        False,
        "--drop-slot",
        help="Remove SOURCE.TABLE's replication slot and publication at the source; its next"
        " sync loads the table in full again.",
    ),
    project_dir: Path = typer.Option(Path("."), "--project", "-p", help="Project folder."),
) -> None:
    """Sync source tables and files into the warehouse.

    Each table syncs on its own: one that fails is reported with its reason, the others go on.

    Exit code: 0 when no table failed, 1 when one did, 2 for an invalid gristmill.toml or selector.
    """
    from gristmill.ingest import ingest as run_ingest
    from gristmill.project import Project

    if status or drop_slot:
        with Project.load(project_dir) as project:
            _change_logs(project, selector, drop_slot, json_output)
        return
    with Project.load(project_dir) as project:
        project.use_engine(engine and engine.value)
        if json_output:
            summary = run_ingest(project, selector, full_refresh=full_refresh)
        else:
            with RichProgress() as progress:
                summary = run_ingest(
                    project, selector, full_refresh=full_refresh, progress=progress
                )
    print_summary(summary, json_output)
    if not summary.ok:
        raise typer.Exit(1)


def _change_logs(project: Project, selector: str | None, drop: bool, json_output: bool) -> None:
    import json

    from gristmill.cli.output import console
    from gristmill.errors import ConfigError
    from gristmill.ingest.cdc.status import drop_log, log_status

    if drop:
        if selector is None:
            raise ConfigError("--drop-slot removes one table's slot: name it as SOURCE.TABLE.")
        dropped = drop_log(project, selector)
        if json_output:
            print(json.dumps({"table": selector, "dropped": dropped}))
        else:
            console.print(
                f"{selector}: replication slot and publication dropped; the next sync loads it in full."
                if dropped
                else f"{selector}: no replication slot to drop (publication removed if any)."
            )
        return
    reports = log_status(project, selector)
    if json_output:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        from rich.table import Table

        table = Table(title="change logs")
        for column in ("table", "slot", "reading", "applied", "lag", "lag time"):
            table.add_column(column)
        for r in reports:
            if r.error:
                table.add_row(r.table, "[red]error[/]", "", "", "", "")
                continue
            table.add_row(
                r.table,
                r.slot if r.exists else f"{r.slot} (not created yet)",
                "yes" if r.active else "no",
                r.applied or "",
                f"{r.lag_bytes:,} bytes" if r.lag_bytes is not None else "",
                f"{r.lag_seconds:.1f} s" if r.lag_seconds is not None else "",
            )
        console.print(table)
        for r in reports:
            if r.error:
                console.print(f"[bold red]{r.table}:[/] {r.error}", highlight=False)
    if any(r.error for r in reports):
        raise typer.Exit(1)

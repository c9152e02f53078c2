"""`gristmill ingest`."""

from __future__ import annotations

from pathlib import Path

import typer

from gristmill.cli.output import ENGINE, EngineName, RichProgress, print_summary


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
    project_dir: Path = typer.Option(Path("."), "--project", "-p", help="Project folder."),
) -> None:
    """Sync source tables and files into the warehouse.

    Each table syncs on its own: one that fails is reported with its reason, the others go on.

    Exit code: 0 when no table failed, 1 when one did, 2 for an invalid gristmill.toml or selector.
    """
    from gristmill.ingest import ingest as run_ingest
    from gristmill.project import Project

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

"""`gristmill init` and `gristmill quickstart`."""

from __future__ import annotations

from pathlib import Path

import typer

from gristmill.cli.output import RichProgress, console, print_summary


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("quickstart")(quickstart)


def init(directory: Path = typer.Argument(..., help="Folder for the new project.")) -> None:
    """Scaffold a project: gristmill.toml, transforms/, features/, models/."""
    from gristmill.project import init_project

    root = init_project(directory)
    console.print(
        f"Created a gristmill project in [bold]{root}[/]. Edit gristmill.toml to add sources."
    )


def quickstart(
    directory: Path = typer.Argument(Path("gristmill-quickstart"), help="Folder to create."),
    rows: int = typer.Option(100_000, "--rows", help="Transactions to generate."),
    json_output: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Create a demo fintech project with its application database, and ingest it."""
    from gristmill.quickstart.project import create_quickstart, run_quickstart

    if json_output:
        summary = run_quickstart(directory, rows=rows)
    else:
        with console.status(f"Creating the quickstart project ({rows:,} transactions)"):
            create_quickstart(directory, rows)
        with RichProgress() as progress:
            summary = run_quickstart(directory, rows=rows, progress=progress)
    print_summary(summary, json_output)
    if not summary.ok:
        raise typer.Exit(1)

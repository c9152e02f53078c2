"""`gristmill run`, `gristmill graph`, `gristmill runs` and `gristmill check`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from gristmill.cli.output import ENGINE, EngineName, console

if TYPE_CHECKING:
    from gristmill.graph.run import PlannedStep, RunSummary, StepResult

PROJECT = typer.Option(Path("."), "--project", "-p", help="Project folder.")
SELECTORS = typer.Argument(None, help="NAME, +NAME (with upstream), NAME+ (with downstream).")
JSON = typer.Option(False, "--json", help="Print a JSON summary.")

_STATUS = {
    "ok": "[green]ok[/]",
    "up_to_date": "[dim]up to date[/]",
    "failed": "[red]failed[/]",
    "skipped": "[yellow]skipped[/]",
    "interrupted": "[yellow]interrupted[/]",
    "pass": "[green]pass[/]",
    "fail": "[red]fail[/]",
    "error": "[red]error[/]",
}


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("graph")(graph)
    app.command("runs")(runs)
    app.command("check")(check)


def print_step(step: StepResult) -> None:
    if step.status == "up_to_date":
        return
    rows = f"{step.rows:,} rows" if step.rows else ""
    passed = sum(c["status"] == "pass" for c in step.checks)
    checks = f"{passed}/{len(step.checks)} checks pass" if step.checks else ""
    label = step.status.replace("_", " ")
    style = _STATUS[step.status].split("]")[0] + "]"
    console.print(
        f"  {style}{label:<8}[/] {step.name:<20} {step.mode:<11} {rows:>13} {step.seconds:5.2f}s"
        f" [dim]{checks}[/]",
        highlight=False,
    )
    for check in step.checks:
        if check["status"] != "pass":
            _print_check(check)
    for warning in step.warnings:
        console.print(f"    [yellow]warning:[/] {warning}", highlight=False)
    if step.error and not step.checks:
        console.print(f"    {step.error}", highlight=False, style="red")


def _print_check(result: dict[str, Any]) -> None:
    severity = result["check"]["severity"]
    console.print(
        f"    {_STATUS[result['status']]} {result['check']['name']} [dim]({severity})[/]:"
        f" {result['message']}",
        highlight=False,
    )
    for row in result["sample"][:5]:
        console.print(f"      {row}", highlight=False, style="dim")


def run(
    selectors: list[str] | None = SELECTORS,
    full_refresh: bool = typer.Option(
        False, "--full-refresh", help="Rebuild from scratch, ignoring what is up to date."
    ),
    workers: int | None = typer.Option(None, "--workers", "-w", min=1, help="Parallel steps."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan; change nothing."),
    engine: EngineName | None = ENGINE,
    json_output: bool = JSON,
    project_dir: Path = PROJECT,
) -> None:
    """Sync and build the selected assets that are out of date, in dependency order.

    A step that fails (a sync, a build, a blocking check) skips only what depends on it.

    Exit code: 0 when no step failed, 1 when one did, 2 for an invalid project or selector.
    """
    from gristmill.graph.run import plan
    from gristmill.graph.run import run as run_graph
    from gristmill.project import Project

    with Project.load(project_dir) as project:
        project.use_engine(engine and engine.value)
        if dry_run:
            _print_plan(plan(project, selectors or [], full_refresh=full_refresh), json_output)
            return
        summary = run_graph(
            project,
            selectors or [],
            full_refresh=full_refresh,
            workers=workers,
            on_step=None if json_output else print_step,
        )
    finish_run(summary, json_output)


def finish_run(summary: RunSummary, json_output: bool) -> None:
    """Print a run's summary (or its JSON); exit 1 when a step failed."""
    if json_output:
        print(json.dumps(summary.to_dict(), indent=2, default=str))
    else:
        print_run_total(summary)
    if not summary.ok:
        raise typer.Exit(1)


def _print_plan(steps: list[PlannedStep], json_output: bool) -> None:
    if json_output:
        print(json.dumps([asdict(s) for s in steps], indent=2))
        return
    for step in steps:
        style = "dim" if step.action == "up_to_date" else "bold"
        action = step.action.replace("_", " ")
        console.print(
            f"  [{style}]{action:<10}[/] {step.name:<28} [dim]{step.reason}[/]", highlight=False
        )
    todo = sum(s.action != "up_to_date" for s in steps)
    console.print(f"{todo} of {len(steps)} steps to run", highlight=False)


def print_run_total(summary: RunSummary) -> None:
    counts = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in summary.counts().items())
    console.print(
        f"run {summary.run_id}: {counts or 'nothing to do'} in {summary.seconds:.2f}s",
        highlight=False,
    )


def graph(
    selectors: list[str] | None = SELECTORS,
    fmt: str = typer.Option("tree", "--format", "-f", help="tree, dot, mermaid or json."),
    columns: bool = typer.Option(
        False, "--columns", help="With --format json: column-level lineage of SQL transforms."
    ),
    project_dir: Path = PROJECT,
) -> None:
    """Show the asset graph, or export it."""
    from gristmill.graph.export import render, to_tree
    from gristmill.project import Project

    with Project.load(project_dir) as project:
        asset_graph, only, text = render(project, fmt, selectors or [], columns)
    if text is None:
        console.print(to_tree(asset_graph, only))
    else:
        print(text)


def runs(
    run_id: int | None = typer.Argument(None, help="Show the steps of this run."),
    limit: int = typer.Option(20, "--limit", "-n", help="How many runs to list."),
    json_output: bool = JSON,
    project_dir: Path = PROJECT,
) -> None:
    """List past runs, or the steps of one run."""
    from rich.table import Table

    from gristmill.project import Project

    with Project.load(project_dir) as project:
        catalog = project.catalog
        if run_id is None:
            rows = catalog.runs(limit)
            title = "runs"
        else:
            rows = catalog.steps(run_id) or catalog.syncs(run_id)
            title = f"run {run_id}"
    if json_output:
        print(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        console.print(f"{title}: none recorded")
        return
    hidden = {"details", "run_id"}
    table = Table(title=title)
    names = [k for k in rows[0] if k not in hidden]
    for name in names:
        table.add_column(name)
    for row in rows:
        table.add_row(
            *(_STATUS.get(str(row[n]), str(row[n] if row[n] is not None else "")) for n in names)
        )
    console.print(table)


def check(
    selectors: list[str] | None = SELECTORS,
    json_output: bool = JSON,
    project_dir: Path = PROJECT,
) -> None:
    """Run the data checks of the selected assets."""
    from gristmill.graph.check import check as run_checks
    from gristmill.project import Project

    with Project.load(project_dir) as project:
        summary = run_checks(project, selectors or [])
    if json_output:
        print(json.dumps(summary.to_dict(), indent=2, default=str))
    else:
        for entry in summary.assets:
            console.print(f"[bold]{entry.asset}[/] [dim]{entry.relation}[/]", highlight=False)
            if entry.error:
                console.print(f"    [red]{entry.error}[/]", highlight=False)
            for result in entry.results:
                _print_check(result)
        results = summary.results
        failed = sum(r["status"] != "pass" for r in results)
        console.print(f"{len(results)} checks, {failed} not passing", highlight=False)
    if not summary.ok:
        raise typer.Exit(1)

"""`gristmill monitor`: a served model's drift, missing and stale inputs, decisions and
latency, from its prediction log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gristmill.cli.output import console

if TYPE_CHECKING:
    from gristmill.monitor import MonitorReport


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor)


def monitor(
    model: str = typer.Argument(..., help="A model of models/*.py that gristmill serve served."),
    since: str = typer.Option("7d", "--since", help="How far back: 7d, 24h, 30d..."),
    webhook: str | None = typer.Option(
        None, "--webhook", help="Post fired alerts to this URL (instead of the spec's webhook)."
    ),
    html: Path | None = typer.Option(
        None, "--html", help="Also write the report as a self-contained HTML page here."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    project_dir: Path = typer.Option(Path("."), "--project", "-p", help="Project folder."),
) -> None:
    """A served model's drift, missing and stale inputs, decisions and latency, per day.

    From the prediction log, in the warehouse: each feature's PSI against the model's training set (the training set's bins), the score's PSI against the training evaluation's deciles, missing and stale shares, decisions, latency percentiles; with the spec's labels, realized AUC, KS and bad rates.

    Exit code: 0, or 1 when a threshold of the model's Alerts fired (or the webhook failed).
    """
    from gristmill.monitor import monitor as run_monitor
    from gristmill.project import Project

    with Project.load(project_dir) as project:
        if json_output:
            report = run_monitor(project, model, since, webhook)
        else:
            with console.status(f"Reading the prediction log of {model}"):
                report = run_monitor(project, model, since, webhook)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(report.to_html(), encoding="utf-8")
    if json_output:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print_report(report)
        if html is not None:
            console.print(f"report: {html}", highlight=False)
    if report.alerts or report.webhook_error:
        raise typer.Exit(1)


def print_report(report: MonitorReport) -> None:
    from rich.table import Table

    from gristmill.monitor.model import FEATURE_COLUMNS, WINDOW_COLUMNS

    console.print(
        f"[bold]{report.model}[/]: {report.predictions:,} predictions since {report.start}"
        f" (versions {', '.join(f'v{v}: {n:,}' for v, n in report.versions.items()) or 'none'});"
        f" reference: v{report.version}'s training set {report.training_set}",
        highlight=False,
    )
    if report.features:
        table = Table(*FEATURE_COLUMNS, title="Inputs")
        for f in report.ranked_features:
            name, psi, *rest = f.cells()
            shown = [f"[red]{name}[/]", f"[red]{psi}[/]"] if f.drifted else [name, psi]
            table.add_row(*shown, *rest)
        console.print(table)
    if report.windows:
        table = Table(*WINDOW_COLUMNS)
        for w in report.windows:
            table.add_row(*w.cells())
        console.print(table)
    if report.realized is not None:
        _print_realized(report)
    for warning in report.warnings:
        console.print(f"[yellow]![/] {warning}", highlight=False)
    for alert in report.alerts:
        console.print(f"[bold red]alert:[/] {alert.message}", highlight=False)
    if report.webhook_error:
        console.print(f"[bold red]webhook:[/] {report.webhook_error}", highlight=False)


def _print_realized(report: MonitorReport) -> None:
    from rich.table import Table

    assert report.realized is not None
    realized = report.realized
    trained = "-" if realized.training_auc is None else f"{realized.training_auc:.3f}"
    from gristmill.monitor.realized import COLUMNS

    table = Table(*COLUMNS, title=f"Realized performance (training AUC {trained})")
    for o in [*realized.by_day, realized.overall]:
        table.add_row(*o.cells())
    console.print(table)

"""`gristmill init` and `gristmill quickstart`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gristmill.cli.output import RichProgress, console, print_summary

if TYPE_CHECKING:
    from gristmill.monitor import MonitorReport
    from gristmill.quickstart.serving import DemoDecision


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


def print_served(url: str, decisions: list[DemoDecision]) -> None:
    console.print()
    console.print(
        f"[bold]serving[/] (gristmill serve at {url}, started and stopped for the demo)",
        highlight=False,
    )
    for decision in decisions:
        answer = decision.response
        why = ", ".join(
            f"{r['feature']} = {r['value']} ({r['effect']:+.2f})" for r in answer["reasons"]
        )
        console.print(
            f"  {decision.label}: {decision.request['kind']} of {decision.request['amount']:,.0f}"
            f" → [bold]{answer['decision']}[/] (score {answer['score']:.3f}); {why}",
            highlight=False,
        )


def print_monitored(ordinary: MonitorReport, after_burst: MonitorReport) -> None:
    from gristmill.cli.monitor import print_report
    from gristmill.quickstart.serving import AMOUNT_FACTOR, DRIFTED, ORDINARY

    top = ordinary.ranked_features[0] if ordinary.features else None
    console.print()
    console.print(
        f"[bold]monitoring[/] (gristmill monitor fraud): after {ORDINARY} replayed"
        f" transactions, {len(ordinary.alerts)} alerts"
        + (f" (largest feature PSI: {top.name} {top.psi:.3f})" if top and top.psi else "")
        + f"; then a partner app sent {DRIFTED:,} p2p transfers of {AMOUNT_FACTOR}x the"
        " usual amount:",
        highlight=False,
    )
    print_report(after_burst)


def quickstart(
    directory: Path = typer.Argument(Path("gristmill-quickstart"), help="Folder to create."),
    rows: int = typer.Option(100_000, "--rows", help="Transactions to generate."),
    json_output: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Create a demo fintech project: ingest, transform, check, profile, features, a model, serving."""
    from dataclasses import asdict

    from gristmill.cli.features import print_materialized, print_online_features
    from gristmill.cli.models import print_version
    from gristmill.cli.profile import print_profile
    from gristmill.cli.run import print_run_total, print_step
    from gristmill.project import Project
    from gristmill.quickstart.project import create_quickstart, run_quickstart

    if json_output:
        result = run_quickstart(directory, rows=rows)
        print(
            json.dumps(
                {
                    "ingest": result.ingest.to_dict(),
                    "run": result.run.to_dict(),
                    "profile": result.profile.to_dict(),
                    "report": str(result.report),
                    "online": [asdict(r) for r in result.online],
                    "sample": asdict(result.sample) if result.sample else None,
                    "model": result.trained.to_dict() if result.trained else None,
                    "served": [asdict(d) for d in result.served[1]] if result.served else None,
                    "monitor": [r.to_dict() for r in result.monitored]
                    if result.monitored
                    else None,
                },
                default=str,
            )
        )
    else:
        with console.status(f"Creating the quickstart project ({rows:,} transactions)"):
            create_quickstart(directory, rows)
        with RichProgress() as progress:
            result = run_quickstart(directory, rows=rows, progress=progress)
        print_summary(result.ingest, json_output=False)
        console.print("[bold]transforms[/] (built, then checked, then published)")
        for step in result.run.steps:
            print_step(step)
        print_run_total(result.run)
        console.print()
        print_profile(result.profile)
        console.print(f"report: {result.report}", highlight=False)
        console.print()
        print_materialized(result.online)
        if result.sample:
            print_online_features(result.sample)
        if result.trained:
            console.print()
            with Project.load(directory) as project:
                print_version(project.root, result.trained, project.registry.aliases("fraud"))
        if result.served:
            print_served(*result.served)
        if result.monitored:
            print_monitored(*result.monitored)
            console.print(f"report: {result.monitor_report}", highlight=False)
    if not result.ok:
        raise typer.Exit(1)

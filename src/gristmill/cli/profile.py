"""`gristmill profile`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gristmill.cli.output import console

if TYPE_CHECKING:
    from gristmill.profile.model import TableProfile

REPORTS_DIR = "reports"


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)


def profile(
    table: str = typer.Argument(..., help="A warehouse table: [schema.]table."),
    target: str | None = typer.Option(None, "--target", help="A binary target column."),
    time: str | None = typer.Option(None, "--time", help="A date or timestamp column."),
    sample: int | None = typer.Option(None, "--sample", min=1, help="Profile a sample of N rows."),
    compare: str | None = typer.Option(None, "--compare", help="Another table to compare with."),
    html: Path | None = typer.Option(
        None, "--html", help="Where to write the report (default: reports/TABLE.html)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the profile as JSON."),
    project_dir: Path = typer.Option(Path("."), "--project", "-p", help="Project folder."),
) -> None:
    """Profile a warehouse table: statistics computed in the warehouse, an HTML report."""
    from gristmill.profile import profile as run_profile
    from gristmill.project import Project

    with Project.load(project_dir) as project:
        if json_output:
            result = run_profile(
                project, table, target=target, time=time, sample=sample, compare=compare
            )
        else:
            with console.status(f"Profiling {table}"):
                result = run_profile(
                    project, table, target=target, time=time, sample=sample, compare=compare
                )
        path = html or project.root / REPORTS_DIR / f"{result.table}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(result.to_html(), encoding="utf-8")
    if json_output:
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return
    print_profile(result)
    console.print(f"report: {path}", highlight=False)


def print_profile(result: TableProfile) -> None:
    from rich.table import Table

    sampled = f", a sample of {result.sampled:,} rows" if result.sampled else ""
    header = f"{result.table}: {result.rows:,} rows{sampled}, profiled in {result.seconds:.1f}s"
    if result.target is not None and result.target_rate is not None:
        header += f"; target {result.target} rate {result.target_rate:.2%}"
    table = Table(title=header, title_justify="left", box=None, pad_edge=False)
    columns = ["column", "missing", "distinct", "min", "max", "mean"]
    if result.target:
        columns.append("IV")
    if any(c.psi is not None for c in result.columns):
        columns.append("PSI")
    columns.append("flags")
    for name in columns:
        numeric = name in ("missing", "distinct", "mean", "IV", "PSI")
        table.add_column(name, justify="right" if numeric else "left", no_wrap=name != "flags")
    for c in result.columns:
        row = [
            c.name,
            f"{c.missing_share:.1%}",
            ("≈" if not c.distinct_exact else "") + f"{c.distinct:,}",
            _short(c.min, 12),
            _short(c.max, 12),
            f"{c.mean:.4g}" if c.mean is not None else "",
        ]
        if result.target:
            row.append(_iv(c.target.iv, c.target.strength) if c.target else "")
        if "PSI" in columns:
            row.append(f"{c.psi:.3f}" if c.psi is not None else "")
        row.append(", ".join(c.flags))
        table.add_row(*row)
    console.print(table)
    if result.candidate_keys:
        console.print(f"candidate keys: {', '.join(result.candidate_keys)}", highlight=False)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)


def _iv(iv: float, strength: str) -> str:
    colour = {"useless": "dim", "weak": "", "medium": "cyan", "strong": "green"}.get(
        strength, "red"
    )
    return f"[{colour}]{iv:.3f}[/]" if colour else f"{iv:.3f}"


def _short(value: object, width: int = 19) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"

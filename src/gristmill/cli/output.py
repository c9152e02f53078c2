"""Terminal output shared by commands: progress bars, summaries, JSON."""

from __future__ import annotations

import enum
import json
import re
import time
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from gristmill.ingest import IngestSummary, TableResult


class EngineName(enum.StrEnum):
    local = "local"
    dask = "dask"


ENGINE = typer.Option(
    None,
    "--engine",
    help="Where the heavy work runs: local (this process) or dask (the cluster of"
    " \\[execution] in gristmill.toml). Overrides its engine.",
)

console = Console()

OUTCOME_STYLES = {
    "synced": "[green]synced[/]",
    "unchanged": "[dim]unchanged[/]",
    "failed": "[red]failed[/]",
}


class RichProgress:
    """A progress line per table with rows loaded and rows per second."""

    def __init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.completed:>12,.0f} rows"),
            TextColumn("{task.fields[rate]:>12} rows/s"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._started: dict[str, float] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, key: str) -> None:
        self._started[key] = time.perf_counter()
        self._tasks[key] = self._progress.add_task(key, total=None, rate="", status="")

    def advance(self, key: str, rows: int) -> None:
        task = self._tasks[key]
        self._progress.advance(task, rows)
        done = self._progress.tasks[task].completed
        elapsed = max(time.perf_counter() - self._started[key], 1e-6)
        self._progress.update(task, rate=f"{done / elapsed:,.0f}")

    def finish(self, key: str, result: TableResult) -> None:
        task = self._tasks[key]
        rate = f"{result.rows / result.seconds:,.0f}" if result.seconds else ""
        self._progress.update(
            task,
            completed=result.rows,
            total=result.rows,
            rate=rate,
            status=OUTCOME_STYLES[result.outcome],
        )


def json_exact(value: Any) -> str:
    """`value` as indented JSON in which a Decimal is a number with all its digits (an
    online sum of amounts, exact), neither text nor the nearest double; other values
    JSON cannot hold are their text."""
    # A marker no value can hold: the decimals are written as marked text, then unquoted.
    marker = uuid.uuid4().hex

    def encode(item: Any) -> str:
        if isinstance(item, Decimal) and item.is_finite():
            return f"{marker}{item}{marker}"
        return str(item)

    text = json.dumps(value, indent=2, default=encode)
    return re.sub(f'"{marker}([^"]*){marker}"', r"\1", text)


def print_summary(summary: IngestSummary, json_output: bool) -> None:
    if json_output:
        print(json.dumps(summary.to_dict(), default=str, indent=2))
        return
    table = Table(
        title=f"ingest run {summary.run_id}: {summary.rows:,} rows changed in {summary.seconds:.1f}s"
    )
    numbers = ("rows read", "rows changed", "seconds")
    for column in ("table", "outcome", "mode", *numbers, "cursor", "changes"):
        table.add_column(column, justify="right" if column in numbers else "left")
    for t in summary.tables:
        changes = ", ".join(
            part
            for part in (
                t.schema_change,
                f"{t.deleted_rows} deleted" if t.deleted_rows else None,
                f"{t.rejected_rows} rejected" if t.rejected_rows else None,
            )
            if part
        )
        table.add_row(
            t.key if t.target == t.table else f"{t.key} → {t.target}",
            OUTCOME_STYLES[t.outcome],
            t.mode,
            f"{t.rows_read:,}",
            f"{t.rows:,}",
            f"{t.seconds:.2f}",
            str(t.cursor or ""),
            changes,
        )
    console.print(table)
    for t in summary.tables:
        for warning in t.warnings:
            console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    for t in summary.tables:
        if t.error:
            console.print(f"[bold red]{t.key} failed:[/] {t.error}", highlight=False)
    failed = summary.counts().get("failed", 0)
    if failed:
        console.print(
            f"[bold red]{failed} of {len(summary.tables)} tables failed[/]", highlight=False
        )

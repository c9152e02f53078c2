"""`gristmill diff`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from gristmill.checks.diff import DiffResult


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)


def diff(
    a: str = typer.Argument(..., help="Table A: SOURCE.TABLE, or a warehouse [schema.]table."),
    b: str = typer.Argument(..., help="Table B, named the same way."),
    key: str = typer.Option(
        ...,
        "--key",
        "-k",
        help="The unique key both tables share: a column, or columns comma-separated (id,line).",
    ),
    columns: str | None = typer.Option(
        None, "--columns", "-c", help="Columns to compare, comma-separated (default: all shared)."
    ),
    float_tolerance: float = typer.Option(
        0.0,
        "--float-tolerance",
        help="Floats differing by at most this share of the larger value are equal"
        " (default 0: exactly equal; e.g. 1e-9).",
    ),
    limit: int = typer.Option(20, "--limit", help="Rows listed per kind of difference."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    project_dir: Path = typer.Option(Path("."), "--project", "-p", help="Project folder."),
) -> None:
    """List the keys missing on each side and the rows whose values differ.

    Exits with 1 when the tables differ, 0 when they are equal. Checksums of key ranges
    are computed inside each database; only ranges that disagree are compared row by row.

    Values are compared normalised (the same value is equal in PostgreSQL, MySQL and
    DuckDB) and shown as you would write them: timestamps in ISO 8601, bytes as hex.
    """
    from gristmill.checks.diff import diff_tables
    from gristmill.cli.output import console
    from gristmill.project import Project

    names = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    keys = [k.strip() for k in key.split(",")]
    with Project.load(project_dir) as project:
        if json_output:
            result = diff_tables(project, a, b, keys, names, float_tolerance)
        else:
            with console.status(f"diff {a} ↔ {b} on {key} ..."):
                result = diff_tables(project, a, b, keys, names, float_tolerance)
    if json_output:
        print(json.dumps(result.to_dict(), default=str, indent=2))
    else:
        print_result(result, limit)
    if not result.equal:
        raise typer.Exit(1)


def print_result(result: DiffResult, limit: int) -> None:
    from rich.markup import escape
    from rich.table import Table

    from gristmill.cli.output import console

    verdict = "[green]equal[/]" if result.equal else f"[red]{result.differences:,} differences[/]"
    console.print(
        f"[bold]{result.a}[/] ({result.rows_a:,} rows) ↔ [bold]{result.b}[/]"
        f" ({result.rows_b:,} rows) on {result.key_label}: {verdict}",
        highlight=False,
    )
    for title, keys in (
        (f"missing in {result.a} ({len(result.missing_in_a):,})", result.missing_in_a),
        (f"missing in {result.b} ({len(result.missing_in_b):,})", result.missing_in_b),
    ):
        if keys:
            console.print(f"[bold]{escape(title)}[/]")
            table = Table()
            for column in result.key:
                table.add_column(column)
            for k in keys[:limit]:
                table.add_row(*_key_cells(result, k))
            if len(keys) > limit:
                table.add_row(f"… {len(keys) - limit:,} more", *[""] * (len(result.key) - 1))
            console.print(table)
    if result.changed:
        console.print(f"[bold]changed rows ({len(result.changed):,})[/]")
        table = Table()
        for column in (*result.key, "column", result.a, result.b):
            table.add_column(column)
        blank = [""] * len(result.key)
        for row in result.changed[:limit]:
            for i, (column, (va, vb)) in enumerate(row.columns.items()):
                cells = _key_cells(result, row.key) if i == 0 else blank
                table.add_row(*cells, column, _cell(va), _cell(vb))
        if len(result.changed) > limit:
            table.add_row(f"… {len(result.changed) - limit:,} more", *blank[1:], "", "", "")
        console.print(table)
    if result.only_in_a or result.only_in_b:
        console.print(
            f"not compared: only in {result.a}: {', '.join(result.only_in_a) or '-'};"
            f" only in {result.b}: {', '.join(result.only_in_b) or '-'}",
            highlight=False,
        )
    for column, why in result.not_compared.items():
        console.print(f"[yellow]not compared: {escape(column)}: {escape(why)}.[/]", highlight=False)
    console.print(
        f"[dim]{result.levels} levels, {result.segments:,} segments, {result.queries} queries,"
        f" {result.rows_moved:,} rows moved, {result.seconds:.2f}s[/]"
    )


def _key_cells(result: DiffResult, key: Any) -> list[str]:
    parts = key if len(result.key) > 1 else (key,)
    return [_cell(p) for p in parts]


def _cell(value: Any) -> str:
    from rich.markup import escape

    return "NULL" if value is None else escape(str(value))

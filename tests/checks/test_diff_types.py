"""For every row of the type table (tests/ingest/type_table.py) of PostgreSQL and MySQL: a
clean sync diffs to zero, and one changed cell is found, with its column, on PostgreSQL ->
DuckDB, MySQL -> DuckDB, PostgreSQL -> PostgreSQL and MySQL -> PostgreSQL.

Each pair builds one source table with a column per row (edge values, a NULL row, and one
row per column holding its first value), syncs it with `gristmill ingest` (a column that
stops on the warehouse with its `column_types` override), diffs it, then changes each
column's own row in the source to the row's `changed` value and diffs again. The tests of
a pair share that work (one xdist group per pair).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gristmill.checks.diff import DiffResult, diff_tables
from gristmill.project import Project
from tests.conftest import PG_URL, require_server
from tests.helpers import run_ingest, write_project
from tests.ingest.type_table import TABLES, TypeRow
from tests.ingest.typed_source import TypedSource

PAIRS = {
    "pg-duckdb": ("postgres", "duckdb"),
    "mysql-duckdb": ("mysql", "duckdb"),
    "pg-pg": ("postgres", "postgres"),
    "mysql-pg": ("mysql", "postgres"),
}
"""pair -> (source kind, warehouse type)."""
TABLE = "typed"
NOT_COMPARED = {("mysql-pg", "c_json"): "a jsonb column keeps no text as written"}
"""(pair, column) -> why the diff leaves the column out, saying so (README, Diff)."""


@dataclass
class Scenario:
    """One pair's source table, synced and diffed clean, then changed and diffed again."""

    clean: DiffResult
    changed: DiffResult
    own_row: dict[str, int]
    """column -> the id of the row whose cell of that column was changed."""


def _build(pair: str, root: Path) -> Iterator[Scenario]:
    kind, warehouse_type = PAIRS[pair]
    name = "t_" + uuid.uuid4().hex[:10]
    source = TypedSource(kind, root, name)
    warehouse: dict[str, Any] = {"type": "duckdb", "path": str(root / "wh.duckdb")}
    if warehouse_type == "postgres":
        require_server("PostgreSQL", "127.0.0.1", 5432)
        warehouse = {"type": "postgres", "url": PG_URL, "raw_schema": name + "_wh"}
    try:
        rows = TABLES[kind]
        for row in rows:
            assert row.changed not in (None, row.values[0]), f"{row.column}: give a changed value"
        own_row = source.create(TABLE, rows, own_rows=True)
        overrides = {r.column: r.override for r in rows if warehouse_type in r.stops}
        source.tables[TABLE]["column_types"] = overrides
        write_project(
            root, {"app": {**source.config(), "tables": source.tables}}, warehouse=warehouse
        )
        summary = run_ingest(root)
        assert summary.ok, summary.to_dict()
        with Project.load(root) as project:
            clean = diff_tables(project, f"app.{TABLE}", TABLE, "id")
            for row in rows:
                source.execute(
                    f"UPDATE {source.quoted(TABLE)} SET {source.quoted(row.column)} = {row.changed}"
                    f" WHERE id = {own_row[row.column]}"
                )
            changed = diff_tables(project, f"app.{TABLE}", TABLE, "id")
        yield Scenario(clean, changed, own_row)
    finally:
        source.close()
        if warehouse_type == "postgres":
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as admin:
                for schema in (name + "_wh", f"_gristmill_{name}_wh"):
                    admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Scenario]]:
    builders: list[Iterator[Scenario]] = []

    class Lazy(dict[str, Scenario]):
        def __missing__(self, pair: str) -> Scenario:
            builder = _build(pair, tmp_path_factory.mktemp(pair))
            builders.append(builder)
            self[pair] = next(builder)
            return self[pair]

    yield Lazy()
    for builder in builders:
        next(builder, None)  # cleans up


def _params() -> list[Any]:
    return [
        pytest.param(pair, row, id=f"{pair}-{row.column}", marks=pytest.mark.xdist_group(pair))
        for pair, (kind, _) in PAIRS.items()
        for row in TABLES[kind]
    ]


@pytest.mark.parametrize(("pair", "row"), _params())
def test_clean_sync_diffs_to_zero(pair: str, row: TypeRow, scenarios: dict[str, Scenario]) -> None:
    result = scenarios[pair].clean
    assert not result.missing_in_a and not result.missing_in_b, result.to_dict()
    if (pair, row.column) in NOT_COMPARED:
        assert row.column not in result.columns
        assert NOT_COMPARED[pair, row.column] in result.not_compared[row.column]
        return
    assert row.column in result.columns
    wrong = [(c.key, c.columns[row.column]) for c in result.changed if row.column in c.columns]
    assert wrong == [], f"{row.column} ({row.source_type}): equal values reported as changed"


@pytest.mark.parametrize(("pair", "row"), _params())
def test_one_changed_cell_is_found(pair: str, row: TypeRow, scenarios: dict[str, Scenario]) -> None:
    scenario = scenarios[pair]
    result = scenario.changed
    assert not result.missing_in_a and not result.missing_in_b, result.to_dict()
    if (pair, row.column) in NOT_COMPARED:
        assert row.column in result.not_compared
        return
    found = {c.key: c.columns for c in result.changed if row.column in c.columns}
    own = scenario.own_row[row.column]
    assert list(found) == [own], f"{row.column}: changed in row {own}, found in {list(found)}"
    assert list(found[own]) == [row.column]
    a, b = found[own][row.column]
    assert a != b and a is not None and b is not None

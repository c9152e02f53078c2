"""For every type of the type list (tests/checks/diff_types.py): a clean sync diffs to zero,
and one changed cell is found, with its column, on PostgreSQL -> DuckDB, MySQL -> DuckDB
and PostgreSQL -> PostgreSQL.

Each pair builds one source table with a column per type (edge values, a NULL row, and
one row per type holding its first value), syncs it with `gristmill ingest`, diffs it,
then changes each type's own row in the source and diffs again. The tests of a pair
share that work (one xdist group per pair).
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
from tests.checks.diff_types import TypeCase, cases
from tests.conftest import MYSQL_URL, PG_URL, require_server
from tests.helpers import run_ingest, write_project

PAIRS = {"pg-duckdb": "postgres", "mysql-duckdb": "mysql", "pg-pg": "postgres"}


@dataclass
class Scenario:
    """One pair's source table, synced and diffed clean, then changed and diffed again."""

    cases: list[TypeCase]
    clean: DiffResult
    changed: DiffResult
    changed_row: dict[str, int]
    """type name -> the id of the row whose cell of that type was changed."""


def _column(case: TypeCase) -> str:
    return f"c_{case.name}"


def _rows(source: str, types: list[TypeCase]) -> list[list[str]]:
    """Edge values (padded with NULL), a row of NULLs, then one row per type holding its
    first value (its own row to change)."""
    edges = max(len(t.values[source]) for t in types)
    rows = [
        [t.values[source][r] if r < len(t.values[source]) else "NULL" for t in types]
        for r in range(edges)
    ]
    rows.append(["NULL"] * len(types))
    for k, _ in enumerate(types):
        rows.append([t.values[source][0] if j == k else "NULL" for j, t in enumerate(types)])
    return rows


class _Postgres:
    def __init__(self, schema: str) -> None:
        import psycopg

        self.schema = schema
        self.db = psycopg.connect(PG_URL, autocommit=True)
        self.db.execute(f'CREATE SCHEMA "{schema}"')
        self.db.execute(f"CREATE TYPE \"{schema}\".mood AS ENUM ('sad', 'ok', 'happy')")

    def ddl(self, case: TypeCase) -> str:
        return case.ddl["postgres"].replace("{schema}", f'"{self.schema}"')

    def table(self, name: str) -> str:
        return f'"{self.schema}"."{name}"'

    def execute(self, sql: str) -> None:
        self.db.execute(sql)

    def close(self) -> None:
        self.db.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        self.db.close()


class _MySQL:
    def __init__(self, schema: str) -> None:
        import pymysql

        self.db = pymysql.connect(
            host="127.0.0.1", user="root", database="test", autocommit=True, charset="utf8mb4"
        )
        self.tables: list[str] = []

    def ddl(self, case: TypeCase) -> str:
        return case.ddl["mysql"]

    def table(self, name: str) -> str:
        self.tables.append(name)
        return f"`{name}`"

    def execute(self, sql: str) -> None:
        with self.db.cursor() as cursor:
            cursor.execute(sql)

    def close(self) -> None:
        for name in self.tables:
            self.execute(f"DROP TABLE IF EXISTS `{name}`")
        self.db.close()


def _build(pair: str, root: Path) -> Iterator[Scenario]:
    source = PAIRS[pair]
    require_server(
        "PostgreSQL" if source == "postgres" else "MariaDB/MySQL",
        "127.0.0.1",
        5432 if source == "postgres" else 3306,
    )
    name = "t_" + uuid.uuid4().hex[:10]
    db: _Postgres | _MySQL = _Postgres(name) if source == "postgres" else _MySQL(name)
    warehouse: dict[str, Any] = {"type": "duckdb", "path": str(root / "wh.duckdb")}
    if pair == "pg-pg":
        require_server("PostgreSQL", "127.0.0.1", 5432)
        warehouse = {"type": "postgres", "url": PG_URL, "raw_schema": name + "_raw"}
    try:
        types = cases(source)
        table = db.table(name)
        body = ", ".join(f"{_column(t)} {db.ddl(t)}" for t in types)
        db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, {body})")
        rows = _rows(source, types)
        values = ", ".join(f"({i}, {', '.join(row)})" for i, row in enumerate(rows, 1))
        db.execute(f"INSERT INTO {table} VALUES {values}")
        if source == "postgres":
            sources = {"app": {"type": "postgres", "url": PG_URL, "schema": name}}
        else:
            sources = {"app": {"type": "mysql", "url": MYSQL_URL, "tables": {name: {}}}}
        write_project(root, sources, warehouse=warehouse)
        summary = run_ingest(root)
        assert summary.ok, summary.to_dict()
        first_own_row = len(rows) - len(types) + 1
        changed_row = {t.name: first_own_row + k for k, t in enumerate(types)}
        with Project.load(root) as project:
            clean = diff_tables(project, f"app.{name}", name, "id")
            for t in types:
                db.execute(
                    f"UPDATE {table} SET {_column(t)} = {t.changed[source]}"
                    f" WHERE id = {changed_row[t.name]}"
                )
            changed = diff_tables(project, f"app.{name}", name, "id")
        yield Scenario(types, clean, changed, changed_row)
    finally:
        if pair == "pg-pg":
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as admin:
                admin.execute(f'DROP SCHEMA IF EXISTS "{name}_raw" CASCADE')
        db.close()


_SCENARIOS: dict[str, Scenario] = {}


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
        pytest.param(pair, case, id=f"{pair}-{case.name}", marks=pytest.mark.xdist_group(pair))
        for pair, source in PAIRS.items()
        for case in cases(source)
    ]


@pytest.mark.parametrize(("pair", "case"), _params())
def test_clean_sync_diffs_to_zero(
    pair: str, case: TypeCase, scenarios: dict[str, Scenario]
) -> None:
    result = scenarios[pair].clean
    assert not result.missing_in_a and not result.missing_in_b, result.to_dict()
    column = _column(case)
    assert column in result.columns
    wrong = [(c.key, c.columns[column]) for c in result.changed if column in c.columns]
    assert wrong == [], f"{case.name}: equal values reported as changed"


@pytest.mark.parametrize(("pair", "case"), _params())
def test_one_changed_cell_is_found(
    pair: str, case: TypeCase, scenarios: dict[str, Scenario]
) -> None:
    scenario = scenarios[pair]
    result = scenario.changed
    column = _column(case)
    assert not result.missing_in_a and not result.missing_in_b, result.to_dict()
    found = {c.key: c.columns for c in result.changed if column in c.columns}
    row = scenario.changed_row[case.name]
    assert list(found) == [row], f"{case.name}: changed in row {row}, found in {list(found)}"
    assert list(found[row]) == [column]
    a, b = found[row][column]
    assert a != b and a is not None and b is not None

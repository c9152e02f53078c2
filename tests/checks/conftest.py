"""Fixtures of the diff's tests: pairs of tables on real servers.

`pair`: PostgreSQL source <-> DuckDB warehouse, DuckDB <-> DuckDB (two warehouse tables),
PostgreSQL source <-> PostgreSQL warehouse. `source_pair`: the pairs a sync makes,
PostgreSQL -> DuckDB, MySQL -> DuckDB, PostgreSQL -> PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from gristmill.project import Project
from tests.conftest import MYSQL_URL, PG_URL, mysql_connect, require_server
from tests.helpers import write_project

PAIRS = ["pg-duckdb", "duckdb-duckdb", "pg-pg"]
SOURCE_PAIRS = ["pg-duckdb", "mysql-duckdb", "pg-pg"]


class Side:
    """One table's database: creates tables and changes rows in it."""

    def __init__(self, dialect: str, name: str, project: Project | None, schema: str) -> None:
        self.dialect = dialect
        self.name = name  # how diff names the table, e.g. app.t_x or raw.t_x
        self.project = project
        self.schema = schema
        self.table = name.rsplit(".", 1)[-1]

    def quote(self, name: str) -> str:
        return f"`{name}`" if self.dialect == "mysql" else f'"{name}"'

    @property
    def ref(self) -> str:
        if self.dialect == "mysql":
            return self.quote(self.table)
        return f"{self.quote(self.schema)}.{self.quote(self.table)}"

    def execute(self, sql: str) -> None:
        if self.dialect == "postgres":
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as db:
                db.execute(sql)
        elif self.dialect == "mysql":
            db = mysql_connect()
            try:
                with db.cursor() as cursor:
                    cursor.execute(sql)
            finally:
                db.close()
        else:
            assert self.project is not None
            self.project.warehouse.execute(sql)

    def create(self, columns: dict[str, str], key_type: str = "BIGINT") -> None:
        self.create_table({"id": key_type, **columns}, ["id"])

    def create_table(self, columns: dict[str, str], key: Sequence[str]) -> None:
        self.columns = list(columns)
        body = ", ".join(f"{self.quote(c)} {t}" for c, t in columns.items())
        primary = ", ".join(self.quote(k) for k in key)
        charset = " DEFAULT CHARSET = utf8mb4" if self.dialect == "mysql" else ""
        self.execute(f"CREATE TABLE {self.ref} ({body}, PRIMARY KEY ({primary})){charset}")

    def insert(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        marks = ", ".join("%s" for _ in rows[0])
        if self.dialect == "postgres":
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as db, db.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {self.ref} VALUES ({marks})", rows)
            return
        if self.dialect == "mysql":
            db = mysql_connect()
            try:
                with db.cursor() as cursor:
                    cursor.executemany(f"INSERT INTO {self.ref} VALUES ({marks})", rows)
            finally:
                db.close()
            return
        import pyarrow as pa

        assert self.project is not None
        values = [
            [str(v) if isinstance(v, uuid.UUID) else v for v in col]
            for col in zip(*rows, strict=True)
        ]
        table = pa.table([pa.array(v) for v in values], names=self.columns)
        self.project.warehouse.append(self.schema, self.table, table.to_batches())


def _pair(kind: str, tmp_path: Path, unique_name: str) -> Iterator[tuple[Project, Side, Side]]:
    needs_pg = "pg" in kind
    if needs_pg:
        require_server("PostgreSQL", "127.0.0.1", 5432)
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as db:
            db.execute(f'CREATE SCHEMA "{unique_name}"')
    if kind.startswith("mysql"):
        require_server("MariaDB/MySQL", "127.0.0.1", 3306)
    sources = {
        "app": {"type": "postgres", "url": PG_URL, "schema": unique_name},
        "shop": {"type": "mysql", "url": MYSQL_URL},
    }
    warehouse: dict[str, Any] = {"type": "duckdb", "path": str(tmp_path / "wh.duckdb")}
    if kind == "pg-pg":
        warehouse = {"type": "postgres", "url": PG_URL, "raw_schema": unique_name}
    write_project(tmp_path, sources, warehouse=warehouse)
    project = Project.load(tmp_path)
    if kind == "pg-duckdb":
        project.warehouse.ensure_schema("raw")
        a = Side("postgres", f"app.{unique_name}_a", None, unique_name)
        b = Side("duckdb", f"raw.{unique_name}_b", project, "raw")
    elif kind == "mysql-duckdb":
        project.warehouse.ensure_schema("raw")
        a = Side("mysql", f"shop.{unique_name}_a", None, "test")
        b = Side("duckdb", f"raw.{unique_name}_b", project, "raw")
    elif kind == "duckdb-duckdb":
        project.warehouse.ensure_schema("raw")
        a = Side("duckdb", f"raw.{unique_name}_a", project, "raw")
        b = Side("duckdb", f"{unique_name}_b", project, "raw")  # the raw schema by default
    else:
        a = Side("postgres", f"app.{unique_name}_a", None, unique_name)
        b = Side("postgres", f"{unique_name}_b", None, unique_name)
    try:
        yield project, a, b
    finally:
        project.close()
        if a.dialect == "mysql":
            a.execute(f"DROP TABLE IF EXISTS {a.ref}")
        if needs_pg:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as db:
                db.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')


@pytest.fixture(params=PAIRS)
def pair(request: Any, tmp_path: Path, unique_name: str) -> Iterator[tuple[Project, Side, Side]]:
    yield from _pair(request.param, tmp_path, unique_name)


@pytest.fixture(params=SOURCE_PAIRS)
def source_pair(
    request: Any, tmp_path: Path, unique_name: str
) -> Iterator[tuple[Project, Side, Side]]:
    yield from _pair(request.param, tmp_path, unique_name)

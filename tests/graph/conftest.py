"""Projects with a SQLite application database, transforms, and each warehouse."""

from __future__ import annotations

import sqlite3
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gristmill.graph.run import RunSummary, run
from gristmill.project import Project
from tests.conftest import PG_URL, require_server
from tests.helpers import write_project


@dataclass
class GraphProject:
    root: Path
    app: Path
    derived: str
    raw: str

    def app_sql(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        with sqlite3.connect(self.app) as db:
            db.execute(sql, params)

    def write(self, name: str, text: str) -> Path:
        path = self.root / "transforms" / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    def run(self, *selectors: str, **kwargs: Any) -> RunSummary:
        with Project.load(self.root) as project:
            return run(project, selectors, **kwargs)

    def status(self, summary: RunSummary) -> dict[str, str]:
        return {s.name: s.status for s in summary.steps}

    def rows(self, table: str, order_by: str = "1") -> list[dict[str, Any]]:
        schema, _, name = table.rpartition(".")
        with Project.load(self.root) as project:
            relation = project.warehouse.qualified(schema or self.derived, name)
            rows: list[dict[str, Any]] = project.warehouse.query_arrow(
                f"SELECT * FROM {relation} ORDER BY {order_by}"
            ).to_pylist()
            return rows


@pytest.fixture(params=["duckdb", "postgres"])
def graph_project(request: Any, tmp_path: Path, unique_name: str) -> Iterator[GraphProject]:
    root = tmp_path / "project"
    (root / "transforms").mkdir(parents=True)
    app = tmp_path / "app.sqlite"
    with sqlite3.connect(app) as db:
        db.executescript(
            """
            CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,
              amount DECIMAL(10,2) NOT NULL, created_at TIMESTAMP NOT NULL,
              updated_at TIMESTAMP NOT NULL);
            INSERT INTO users VALUES (1, 'Ana', 'KE'), (2, 'Bo', 'UG'), (3, 'Chidi', NULL);
            INSERT INTO orders VALUES
              (1, 1, 10.50, '2026-01-01 10:00:00', '2026-01-01 10:00:00'),
              (2, 1, 4.25, '2026-01-02 09:00:00', '2026-01-02 09:00:00'),
              (3, 2, 100.00, '2026-01-02 12:00:00', '2026-01-02 12:00:00');
            """
        )
    if request.param == "duckdb":
        warehouse: dict[str, Any] = {"type": "duckdb", "path": str(tmp_path / "wh.duckdb")}
        raw, derived = "raw", "analytics"
    else:
        require_server("PostgreSQL", "127.0.0.1", 5432)
        raw, derived = f"{unique_name}_raw", f"{unique_name}_an"
        warehouse = {"type": "postgres", "url": PG_URL}
    warehouse["raw_schema"] = raw
    write_project(
        root,
        {
            "app": {
                "type": "sqlite",
                "path": str(app),
                "tables": {
                    "users": {"mode": "full"},
                    "orders": {"mode": "merge", "cursor": "updated_at"},
                },
            }
        },
        warehouse=warehouse,
        catalog={"path": str(tmp_path / "catalog.sqlite")},
        transforms={"schema": derived},
    )
    yield GraphProject(root, app, derived, raw)
    if request.param == "postgres":
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as db:
            for schema in (raw, derived, f"_gristmill_{raw}"):
                db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

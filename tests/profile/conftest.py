"""A project on each warehouse, with a table to profile loaded from Arrow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from gristmill.project import Project
from tests.conftest import PG_URL, require_server
from tests.helpers import write_project


class ProfileProject:
    def __init__(self, root: Path, schema: str) -> None:
        self.root = root
        self.schema = schema

    def load(self, name: str, table: pa.Table) -> str:
        with Project.load(self.root) as project:
            warehouse = project.warehouse
            warehouse.ensure_schema(self.schema)
            warehouse.recreate_table(self.schema, name, table.schema)
            warehouse.append(self.schema, name, table.to_batches())
        return f"{self.schema}.{name}"


@pytest.fixture(params=["duckdb", "postgres"])
def profile_project(request: Any, tmp_path: Path, unique_name: str) -> Iterator[ProfileProject]:
    if request.param == "duckdb":
        warehouse: dict[str, Any] = {"type": "duckdb", "path": str(tmp_path / "w.duckdb")}
        schema = "raw"
    else:
        require_server("PostgreSQL", "127.0.0.1", 5432)
        warehouse = {"type": "postgres", "url": PG_URL, "raw_schema": unique_name}
        schema = unique_name
    root = tmp_path / "project"
    root.mkdir()
    write_project(root, {}, warehouse=warehouse, catalog={"path": str(tmp_path / "c.sqlite")})
    yield ProfileProject(root, schema)
    if request.param == "postgres":
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as db:
            for schema in (unique_name, f"_gristmill_{unique_name}"):
                db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

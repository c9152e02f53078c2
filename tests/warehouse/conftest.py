from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG_URL, require_server


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_config(request: Any, tmp_path: Path, unique_name: str) -> Iterator[dict[str, Any]]:
    """The [warehouse] entry of a project, for every warehouse backend."""
    if request.param == "duckdb":
        yield {"type": "duckdb", "path": str(tmp_path / "wh.duckdb"), "raw_schema": "raw"}
        return
    require_server("PostgreSQL", "127.0.0.1", 5432)
    yield {"type": "postgres", "url": PG_URL, "raw_schema": unique_name}
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as db:
        for schema in (unique_name, f"_gristmill_{unique_name}"):
            db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MYSQL_URL, PG_URL, require_server
from tests.ingest.harness import MySQLHarness, PostgresHarness, SourceHarness, SQLiteHarness


def _sqlite(tmp_path: Path, name: str) -> SourceHarness:
    return SQLiteHarness(tmp_path)


def _postgres(tmp_path: Path, name: str) -> SourceHarness:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    return PostgresHarness(PG_URL, name)


def _mysql(tmp_path: Path, name: str) -> SourceHarness:
    require_server("MariaDB/MySQL", "127.0.0.1", 3306)
    return MySQLHarness(MYSQL_URL, name)


# Every SQL source kind the conformance suite runs over.
HARNESSES: dict[str, Callable[[Path, str], SourceHarness]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
    "mysql": _mysql,
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: Any, tmp_path: Path, unique_name: str) -> Iterator[SourceHarness]:
    h = HARNESSES[request.param](tmp_path, unique_name)
    yield h
    h.close()

"""PostgreSQL source specifics: parallel snapshot reads, numerics, connection errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gristmill.ingest.sources import postgres
from tests.helpers import run_ingest, warehouse_rows, write_project
from tests.ingest.harness import PostgresHarness


@pytest.fixture
def pg(pg_url: str, unique_name: str) -> PostgresHarness:
    harness = PostgresHarness(pg_url, unique_name)
    yield harness
    harness.close()


def test_parallel_streams_read_every_row_once(
    pg: PostgresHarness, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "MIN_BLOCKS_PER_STREAM", 10)
    pg.execute(
        "CREATE TABLE big AS SELECT g::bigint AS id, md5(g::text) AS h FROM generate_series(1, 200000) g"
    )
    write_project(project_dir, {"app": {**pg.source_config(), "tables": {"big": {"parallel": 4}}}})

    summary = run_ingest(project_dir)

    assert summary.ok, summary.to_dict()
    rows = warehouse_rows(project_dir, "big")
    assert len(rows) == 200_000
    assert {r["id"] for r in rows} == set(range(1, 200_001))


def test_numerics_keep_precision_and_unconstrained_numeric_is_checked_into_decimal_38_9(
    pg: PostgresHarness, project_dir: Path
) -> None:
    pg.execute("CREATE TABLE n (id int PRIMARY KEY, exact numeric(20,6), free numeric)")
    pg.execute("INSERT INTO n VALUES (1, 12345678901234.123456, 3.141592654), (2, NULL, 1e20)")
    write_project(project_dir, {"app": {**pg.source_config(), "tables": {"n": {}}}})
    assert run_ingest(project_dir).ok
    assert warehouse_rows(project_dir, "n") == [
        {"id": 1, "exact": Decimal("12345678901234.123456"), "free": Decimal("3.141592654")},
        {"id": 2, "exact": None, "free": Decimal("100000000000000000000.000000000")},
    ]
    # A digit more than DECIMAL(38,9) holds is never rounded away: the table stops.
    pg.execute("UPDATE n SET free = 3.1415926535 WHERE id = 1")

    (table,) = run_ingest(project_dir).tables

    assert table.status == "failed"
    assert "column 'free'" in (table.error or "") and "3.1415926535" in (table.error or "")
    assert warehouse_rows(project_dir, "n")[0]["free"] == Decimal("3.141592654")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://postgres:s3cret-pw@127.0.0.1:1/test", "127.0.0.1:1/test"),
        ("postgresql://nobody:s3cret-pw@127.0.0.1:5432/test", "nobody"),
    ],
)
def test_unreachable_host_or_bad_role_is_a_clear_error_without_the_password(
    pg_url: str, project_dir: Path, url: str, expected: str
) -> None:
    write_project(project_dir, {"app": {"type": "postgres", "url": url, "tables": {"t": {}}}})

    (table,) = run_ingest(project_dir).tables

    error = table.error or ""
    assert table.status == "failed" and "cannot connect" in error
    assert "Source 'app'" in error and expected in error
    assert "s3cret-pw" not in error


def test_user_defined_types_arrive_as_their_text(pg: PostgresHarness, project_dir: Path) -> None:
    # The source reads no type catalog, so enums and composites come as PostgreSQL
    # prints them; domains come as their base type.
    # The types live in the test's own schema, which is dropped afterwards.
    pg.execute("CREATE TYPE mood AS ENUM ('calm', 'busy')")
    pg.execute("CREATE TYPE pair AS (x int, label text)")
    pg.execute("CREATE DOMAIN amount AS numeric(8,2) CHECK (VALUE >= 0)")
    pg.execute("CREATE TABLE u (id int PRIMARY KEY, m mood, ms mood[], p pair, a amount)")
    pg.execute(
        "INSERT INTO u VALUES (1, 'busy', ARRAY['calm', 'busy']::mood[], (7, 'é'), 12.5),"
        " (2, NULL, NULL, NULL, NULL)"
    )
    write_project(project_dir, {"app": {**pg.source_config(), "tables": {"u": {}}}})

    assert run_ingest(project_dir).ok

    assert warehouse_rows(project_dir, "u") == [
        {"id": 1, "m": "busy", "ms": "{calm,busy}", "p": "(7,é)", "a": Decimal("12.50")},
        {"id": 2, "m": None, "ms": None, "p": None, "a": None},
    ]

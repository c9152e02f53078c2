"""MySQL/MariaDB source specifics: its own types, connection errors, long tables."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import run_ingest, warehouse_rows, write_project
from tests.ingest.harness import MySQLHarness


@pytest.fixture
def my(mysql_url: str, unique_name: str) -> Iterator[MySQLHarness]:
    harness = MySQLHarness(mysql_url, unique_name)
    yield harness
    harness.close()


def test_mysql_specific_types(my: MySQLHarness, project_dir: Path) -> None:
    my.execute(
        "CREATE TABLE t (id INT UNSIGNED PRIMARY KEY, big BIGINT UNSIGNED, flag BIT(1),"
        " y YEAR, e ENUM('a','b'), j JSON, tiny TINYINT)"
    )
    my.execute(
        "INSERT INTO t VALUES (4294967295, 18446744073709551615, b'1', 2024, 'b',"
        ' \'{"k": [1, "ü"]}\', -5)'
    )
    write_project(project_dir, {"app": {**my.source_config(), "tables": {"t": {}}}})

    assert run_ingest(project_dir).ok

    (row,) = warehouse_rows(project_dir, "t")
    assert row["id"] == 4_294_967_295
    assert row["big"] == Decimal("18446744073709551615")
    assert row["flag"] is True and row["y"] == 2024 and row["e"] == "b" and row["tiny"] == -5
    assert row["j"].replace(" ", "") == '{"k":[1,"ü"]}'


def test_a_table_longer_than_one_batch_arrives_whole(my: MySQLHarness, project_dir: Path) -> None:
    my.execute("CREATE TABLE big (id BIGINT PRIMARY KEY, v VARCHAR(20))")
    my.execute("INSERT INTO big SELECT seq, CONCAT('v', seq) FROM seq_1_to_250000")
    write_project(project_dir, {"app": {**my.source_config(), "tables": {"big": {}}}})

    summary = run_ingest(project_dir)

    assert summary.tables[0].rows == 250_000
    assert len({r["id"] for r in warehouse_rows(project_dir, "big")}) == 250_000


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root:s3cret-pw@127.0.0.1:1/test", "127.0.0.1:1/test"),
        ("mysql://root:s3cret-pw@127.0.0.1:3306/test", "Access denied"),
    ],
)
def test_unreachable_host_or_wrong_password_without_the_password(
    mysql_url: str, project_dir: Path, url: str, expected: str
) -> None:
    write_project(project_dir, {"app": {"type": "mysql", "url": url, "tables": {"t": {}}}})

    (table,) = run_ingest(project_dir).tables

    error = table.error or ""
    assert table.status == "failed" and "cannot connect" in error
    assert "Source 'app'" in error and expected in error
    assert "s3cret-pw" not in error

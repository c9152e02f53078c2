"""The PostgreSQL connection that the source, the warehouse and the diff share."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pytest

from gristmill.postgres_adbc import DriverError, PostgresConnection


@pytest.fixture
def conn(pg_url: str):  # type: ignore[no-untyped-def]
    connection = PostgresConnection.open(pg_url, "test")
    yield connection
    connection.close()


def test_parameters_of_every_kind_are_bound_as_values(conn: PostgresConnection) -> None:
    values = ["it's é 😀", 2**40, -1.5, True, None, Decimal("12.34"), date(2024, 2, 29)]
    placeholders = ", ".join(f"${i + 1}" for i in range(len(values)))

    (row,) = conn.rows(f"SELECT {placeholders}", values)

    # NUMERIC arrives as text: the source and the warehouse make it a decimal (faithful).
    assert list(row) == [str(v) if isinstance(v, Decimal) else v for v in values]


def test_statements_share_a_transaction_until_commit_or_rollback(
    conn: PostgresConnection, unique_name: str
) -> None:
    conn.execute(f"CREATE TABLE {unique_name} (id INT)")
    conn.execute(f"INSERT INTO {unique_name} VALUES (1)")
    conn.rollback()
    with pytest.raises(DriverError, match="does not exist"):
        conn.rows(f"SELECT * FROM {unique_name}")
    conn.rollback()

    conn.execute(f"CREATE TABLE {unique_name} (id BIGINT, name TEXT)")
    conn.ingest("public", unique_name, pa.table({"id": [1, 2], "name": ["a", None]}).to_reader())
    conn.commit()
    try:
        assert sorted(conn.rows(f"SELECT * FROM {unique_name}")) == [(1, "a"), (2, None)]
        batches = list(conn.batches(f"SELECT id FROM {unique_name} WHERE id > $1", [1]))
        assert sum(b.num_rows for b in batches) == 1
    finally:
        conn.rollback()
        conn.execute(f"DROP TABLE {unique_name}")
        conn.commit()


def test_an_error_keeps_the_servers_first_line(conn: PostgresConnection) -> None:
    with pytest.raises(DriverError) as caught:
        conn.rows("SELECT no_such_column FROM pg_class")

    assert 'column "no_such_column" does not exist' in caught.value.first_line
    assert "\n" not in caught.value.first_line


def test_reading_a_table_imports_neither_pandas_nor_polars(pg_url: str) -> None:
    # ADBC's DB-API module imports both: a third of a second in every sync.
    probe = (
        "import sys\n"
        "from gristmill.postgres_adbc import PostgresConnection\n"
        f"c = PostgresConnection.open({pg_url!r}, 'probe')\n"
        "c.rows('SELECT $1::text, $2::bigint', ['a', 1])\n"
        "list(c.batches('SELECT relname, relpages FROM pg_class'))\n"
        "print(sorted(m for m in ('pandas', 'polars', 'pyarrow.dataset') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"

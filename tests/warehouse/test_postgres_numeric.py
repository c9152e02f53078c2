"""What a query on the PostgreSQL warehouse gives for NUMERIC: exact decimals, never a
rounded value, never a traceback; what no decimal holds stops with the column named, or
(`beyond_decimal="float"`, for statistics and models) arrives as doubles."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill.config import WarehouseConfig
from gristmill.errors import BackendError
from gristmill.warehouse.postgres import PostgresWarehouse


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresWarehouse]:
    from tests.conftest import PG_URL, require_server

    require_server("PostgreSQL", "127.0.0.1", 5432)
    root = tmp_path_factory.mktemp("pgnum")
    wh = PostgresWarehouse(WarehouseConfig(type="postgres", url=PG_URL), Path(root))
    yield wh
    wh.close()


def values_sql(values: list[str | None], column_type: str = "NUMERIC") -> str:
    rows = ", ".join(
        f"({i}, {'NULL' if v is None else repr(v)}::{column_type})" for i, v in enumerate(values)
    )
    return f"SELECT x FROM (VALUES {rows}) AS v (i, x) ORDER BY i"


def test_a_division_arrives_exactly(warehouse: PostgresWarehouse) -> None:
    result = warehouse.query_arrow(
        "SELECT 100.00::numeric(12,2) / 7 AS seventh, avg(x) AS mean"
        " FROM (VALUES (1::numeric), (2::numeric)) AS v (x)"
    )
    assert result.schema.field("seventh").type == pa.decimal128(18, 16)
    assert result.to_pylist() == [
        {"seventh": Decimal("14.2857142857142857"), "mean": Decimal("1.5000000000000000")}
    ]


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (["0.000000000000000000000000000001", "-2"], pa.decimal128(31, 30)),
        (["1" * 38, "-0.5"], pa.decimal256(39, 1)),
        (["9" * 38], pa.decimal128(38, 0)),
        (["1" * 40 + "." + "2" * 36], pa.decimal256(76, 36)),
        ([None, None], pa.decimal128(1, 0)),
        ([], pa.decimal128(1, 0)),
    ],
)
def test_the_narrowest_decimal_that_holds_every_value(
    warehouse: PostgresWarehouse, values: list[str | None], dtype: pa.DataType
) -> None:
    result = warehouse.query_arrow(
        values_sql(values) if values else "SELECT 1::numeric AS x LIMIT 0"
    )
    assert result.schema.field("x").type == dtype
    assert result.column("x").to_pylist() == [None if v is None else Decimal(v) for v in values]


def test_a_declared_precision_and_scale_is_kept(warehouse: PostgresWarehouse) -> None:
    result = warehouse.query_arrow(
        "SELECT 1.5::numeric(12,2) AS small, 12345678901234567890123456789012345678.5::numeric(50,10) AS wide"
    )
    assert result.schema.field("small").type == pa.decimal128(12, 2)
    assert result.schema.field("wide").type == pa.decimal256(50, 10)
    assert result.to_pylist() == [
        {"small": Decimal("1.50"), "wide": Decimal("12345678901234567890123456789012345678.5")}
    ]


@pytest.mark.parametrize("special", ["NaN", "Infinity", "-Infinity", "1" * 77])
def test_what_no_decimal_holds_stops_with_the_column_named(
    warehouse: PostgresWarehouse, special: str
) -> None:
    sql = f"SELECT 1 AS id, '{special}'::numeric AS ratio"
    with pytest.raises(BackendError, match="ratio") as info:
        warehouse.query_arrow(sql)
    assert "CAST(ratio AS DOUBLE PRECISION)" in str(info.value)
    # Statistics and models take doubles: NaN and infinities are doubles.
    [row] = warehouse.query_arrow(sql, beyond_decimal="float").to_pylist()
    assert str(row["ratio"]) == str(float(special))


def test_for_statistics_only_what_no_decimal_holds_is_a_double(
    warehouse: PostgresWarehouse,
) -> None:
    result = warehouse.query_arrow(
        "SELECT 100.00::numeric(12,2) / 7 AS seventh, 1.5::numeric(12,2) AS amount",
        beyond_decimal="float",
    )
    assert result.schema.field("seventh").type == pa.decimal128(18, 16)
    assert result.schema.field("amount").type == pa.decimal128(12, 2)
    assert result.to_pylist() == [
        {"seventh": Decimal("14.2857142857142857"), "amount": Decimal("1.50")}
    ]
    odd = warehouse.query_arrow(
        "SELECT CAST(x AS numeric(10,2)) AS odd FROM (VALUES (1, 'NaN'::numeric), (2, 3.25))"
        " AS v (i, x) ORDER BY i",
        beyond_decimal="float",
    )
    assert odd.schema.field("odd").type == pa.float64()
    assert str(odd.column("odd").to_pylist()) == "[nan, 3.25]"


def test_rows_hold_decimals(warehouse: PostgresWarehouse) -> None:
    [row] = warehouse.fetchall("SELECT 1::numeric / 4, 'NaN'::numeric, 2.50::numeric(5,2)")
    assert [type(v) for v in row] == [Decimal] * 3
    assert [str(v) for v in row] == ["0.25000000000000000000", "NaN", "2.50"]


def test_inside_a_transaction_too(warehouse: PostgresWarehouse) -> None:
    with warehouse.transaction() as tx:
        table = tx.fetch_arrow("SELECT 1::numeric / 3 AS third")
    assert table.column("third").to_pylist() == [Decimal("0.33333333333333333333")]


decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: (
        len(d.as_tuple().digits) + max(0, -int(d.as_tuple().exponent)) <= 60
        and abs(int(d.as_tuple().exponent)) <= 60
    )
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(st.none(), decimals), max_size=12))
def test_any_values_round_trip_exactly(
    warehouse: PostgresWarehouse, values: list[Decimal | None]
) -> None:
    texts = [None if v is None else format(v, "f") for v in values]
    sql = values_sql(texts) if values else "SELECT 1::numeric AS x LIMIT 0"
    try:
        result = warehouse.query_arrow(sql)
    except BackendError as exc:
        # Only a value beyond 76 digits at the result's common scale may be refused.
        assert "76 digits" in str(exc)
        return
    assert result.column("x").to_pylist() == values

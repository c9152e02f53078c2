"""The type table (README, Types), row by row, on every source kind and both warehouses:
each value arrives exactly, or the table stops with an error naming source, table,
column and the column_types override, which then loads the column as documented."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Context, Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill.project import Project
from gristmill.types import DATE_INFINITY, TIMESTAMP_INFINITY
from tests.helpers import run_ingest, write_project
from tests.ingest.harness import PostgresHarness
from tests.ingest.type_table import INF, NINF, TABLES, TypeRow
from tests.ingest.typed_source import TypedSource


@pytest.fixture(params=sorted(TABLES))
def typed_source(request: Any, tmp_path: Path, unique_name: str) -> Iterator[TypedSource]:
    source = TypedSource(request.param, tmp_path, unique_name + "_src")
    yield source
    source.close()


def _read(root: Path, table: str, rows: list[TypeRow]) -> dict[str, list[Any]]:
    with Project.load(root) as project:
        schema = project.config.warehouse.raw_schema
        columns = ", ".join(
            f'CAST("{r.column}" AS VARCHAR) AS "{r.column}"' if r.read_as_text else f'"{r.column}"'
            for r in rows
        )
        result = project.warehouse.query_arrow(
            f'SELECT {columns} FROM "{schema}"."{table}" ORDER BY id'
        )
    return {name: _values(result.column(name)) for name in result.column_names}


def _values(column: pa.ChunkedArray) -> list[Any]:
    """Python values, with infinite timestamps and dates as INF and NINF."""
    dtype = column.type
    if pa.types.is_timestamp(dtype) or pa.types.is_date32(dtype):
        storage, top = (
            (pa.int64(), TIMESTAMP_INFINITY)
            if pa.types.is_timestamp(dtype)
            else (pa.int32(), DATE_INFINITY)
        )
        raw = column.cast(storage).to_pylist()
        return [
            INF
            if r == top
            else NINF
            if r == -top
            else None
            if r is None
            else pa.array([r], storage).cast(dtype)[0].as_py()
            for r in raw
        ]
    if pa.types.is_list(dtype) and pa.types.is_temporal(dtype.value_type):
        return [
            _values(pa.chunked_array([item.values], dtype.value_type)) if item.is_valid else None
            for chunk in column.chunks
            for item in chunk
        ]
    return column.to_pylist()


def _same(expected: Any, got: Any) -> bool:
    if expected is None or got is None:
        return expected is got
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(got, float) and math.isnan(got)
    if isinstance(expected, Decimal) or (isinstance(expected, int) and isinstance(got, Decimal)):
        got = Decimal(got) if isinstance(got, str) else got
        expected = Decimal(expected)
        return (expected.is_nan() and got.is_nan()) or (not expected.is_nan() and expected == got)
    if isinstance(expected, dict | list) and isinstance(got, str):
        got = json.loads(got)
    if isinstance(expected, list):
        return (
            isinstance(got, list)
            and len(got) == len(expected)
            and all(_same(e, g) for e, g in zip(expected, got, strict=True))
        )
    if isinstance(expected, timedelta) and isinstance(got, pa.MonthDayNano):
        return got.months == 0 and expected == timedelta(
            days=got.days, microseconds=got.nanoseconds // 1000
        )
    if isinstance(expected, UUID) and isinstance(got, str | bytes):
        got = UUID(got) if isinstance(got, str) else UUID(bytes=got)
    if isinstance(expected, datetime) and expected.tzinfo is not None:
        return (
            isinstance(got, datetime) and got.tzinfo is not None and got.astimezone(UTC) == expected
        )
    if isinstance(expected, float) and not isinstance(got, float):
        return False
    if (
        isinstance(expected, date)
        and not isinstance(expected, datetime)
        and isinstance(got, datetime)
    ):
        return False
    return bool(expected == got)


def _check(root: Path, table: str, rows: list[TypeRow], warehouse: str, overridden: bool) -> None:
    loaded = _read(root, table, rows)
    for row in rows:
        expected = list(row.override_expected if overridden else row.expected_on(warehouse))
        got = loaded[row.column]
        expected += [None] * (len(got) - len(expected))  # the NULL rows
        assert len(got) == len(expected), row.column
        for e, g in zip(expected, got, strict=True):
            assert _same(e, g), (row.column, row.source_type, e, g)


def test_every_type_arrives_exactly_or_stops_naming_the_override(
    typed_source: TypedSource, warehouse_config: dict[str, Any], project_dir: Path
) -> None:
    warehouse = warehouse_config["type"]
    rows = TABLES[typed_source.kind]
    loading = [r for r in rows if warehouse not in r.stops]
    stopping = [r for r in rows if warehouse in r.stops]
    typed_source.create("typed", loading)
    for row in stopping:
        typed_source.create(f"s_{row.column}", [row])
    sources = {"src": {**typed_source.config(), "tables": typed_source.tables}}
    write_project(project_dir, sources, warehouse=warehouse_config)

    summary = run_ingest(project_dir)

    results = {t.table: t for t in summary.tables}
    assert results["typed"].status == "ok", results["typed"].error
    _check(project_dir, "typed", loading, warehouse, overridden=False)
    for row in stopping:
        result = results[f"s_{row.column}"]
        assert result.status == "failed", row.column
        error = result.error or ""
        assert f"Source 'src', table 's_{row.column}', column '{row.column}'" in error, error
        assert f'column_types = {{ {row.column} = "{row.override}" }}' in error, error
        assert "Traceback" not in error

    if not stopping:
        return
    for row in stopping:
        typed_source.tables[f"s_{row.column}"]["column_types"] = {row.column: row.override}
    write_project(project_dir, sources, warehouse=warehouse_config)

    summary = run_ingest(project_dir)

    assert summary.ok, summary.to_dict()
    for row in stopping:
        _check(project_dir, f"s_{row.column}", [row], warehouse, overridden=True)


@pytest.fixture
def non_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/Sao_Paulo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@st.composite
def _numerics(draw: st.DrawFn) -> Decimal:
    digits = draw(st.integers(min_value=0, max_value=10**45))
    exponent = draw(st.integers(min_value=-40, max_value=10))
    return Decimal(digits).scaleb(exponent) * draw(st.sampled_from([1, -1]))


def _fits_decimal_38_9(value: Decimal) -> bool:
    return (
        value == value.quantize(Decimal("1e-9"), context=Context(prec=100))
        and abs(value) < Decimal(10) ** 29
    )


@pytest.mark.parametrize("warehouse", ["duckdb", "postgres"])
def test_numerics_and_timestamps_arrive_as_python_has_them(
    pg_url: str, tmp_path: Path, unique_name: str, warehouse: str, non_utc: None
) -> None:
    """Random NUMERIC and timestamp values from PostgreSQL arrive equal to the Python values
    inserted, or (a NUMERIC beyond DECIMAL(38,9) on DuckDB) stop the table; the process
    runs in a time zone far from UTC."""
    harness = PostgresHarness(pg_url, unique_name + "_src")
    raw_schema = "raw" if warehouse == "duckdb" else unique_name
    examples = iter(range(1_000))

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        numbers=st.lists(_numerics(), min_size=1, max_size=5),
        moments=st.lists(st.datetimes(), min_size=1, max_size=5),
        zone=st.integers(min_value=-14 * 60, max_value=14 * 60),
    )
    def check(numbers: list[Decimal], moments: list[datetime], zone: int) -> None:
        root = tmp_path / f"p{next(examples)}"
        root.mkdir()
        offset = timezone(timedelta(minutes=zone))
        harness.create_table("v", {"id": "bigint"})
        harness.execute(
            "ALTER TABLE v ADD COLUMN n NUMERIC, ADD COLUMN t TIMESTAMP, ADD COLUMN z TIMESTAMPTZ"
        )
        count = max(len(numbers), len(moments))
        rows = [
            {
                "id": i,
                "n": numbers[i % len(numbers)],
                "t": moments[i % len(moments)],
                "z": moments[i % len(moments)].replace(tzinfo=offset),
            }
            for i in range(count)
        ]
        harness.insert("v", rows)
        config = (
            {"type": "duckdb", "path": str(root / "wh.duckdb")}
            if warehouse == "duckdb"
            else {"type": "postgres", "url": pg_url, "raw_schema": raw_schema}
        )
        sources = {"src": {**harness.source_config(), "tables": {"v": {}}}}
        write_project(root, sources, warehouse=config)

        (result,) = run_ingest(root).tables

        if warehouse == "duckdb" and not all(_fits_decimal_38_9(n) for n in numbers):
            assert result.status == "failed" and "column 'n'" in (result.error or "")
            return
        assert result.status == "ok", result.error
        with Project.load(root) as project:
            loaded = project.warehouse.query_arrow(
                f'SELECT CAST(n AS VARCHAR) AS n, t, z FROM "{raw_schema}".v ORDER BY id'
            ).to_pylist()
        for row, got in zip(rows, loaded, strict=True):
            assert Decimal(got["n"]) == row["n"]
            assert got["t"] == row["t"]
            assert got["z"] == row["z"]

    try:
        check()
    finally:
        harness.close()
        if warehouse == "postgres":
            import psycopg

            with psycopg.connect(pg_url, autocommit=True) as db:
                for schema in (raw_schema, f"_gristmill_{raw_schema}"):
                    db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_cursor_at_infinity_stops_the_table_instead_of_skipping_later_changes(
    pg_url: str, warehouse_config: dict[str, Any], project_dir: Path, unique_name: str
) -> None:
    harness = PostgresHarness(pg_url, unique_name + "_src")
    try:
        harness.create_table("events", {"id": "bigint", "at": "timestamp"})
        harness.execute("INSERT INTO events VALUES (1, '2024-01-01'), (2, '2024-01-02')")
        tables = {"events": {"mode": "merge", "cursor": "at"}}
        sources = {"src": {**harness.source_config(), "tables": tables}}
        write_project(project_dir, sources, warehouse=warehouse_config)
        assert run_ingest(project_dir).ok
        harness.execute("UPDATE events SET at = 'infinity' WHERE id = 2")

        (result,) = run_ingest(project_dir).tables

        assert result.status == "failed"
        assert "cursor column 'at' holds infinity" in (result.error or "")
    finally:
        harness.close()

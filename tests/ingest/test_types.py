"""The type table (README, Types), row by row, on every source kind and both warehouses:
each value arrives exactly, or the table stops with an error naming source, table,
column and the column_types override, which then loads the column as documented."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill.project import Project
from gristmill.types import DATE_INFINITY, TIMESTAMP_INFINITY
from tests.conftest import MYSQL_URL, PG_URL, require_server
from tests.helpers import run_ingest, write_project
from tests.ingest.harness import MySQLHarness, PostgresHarness, SourceHarness, SQLiteHarness
from tests.ingest.type_table import INF, NINF, TABLES, TypeRow

FILE_TYPES = {
    "int8": pa.int8(),
    "int64": pa.int64(),
    "uint64": pa.uint64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "date32[day]": pa.date32(),
    "timestamp[us]": pa.timestamp("us"),
    "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC"),
    "decimal128(12, 2)": pa.decimal128(12, 2),
    "binary": pa.binary(),
    "list<item: int32>": pa.list_(pa.int32()),
    "list<item: int64>": pa.list_(pa.int64()),
}


class TypedSource:
    """A source of one kind holding the type table: one table (`typed`) with every row
    that loads on the warehouse under test, one table per row that stops it."""

    def __init__(self, kind: str, root: Path, name: str) -> None:
        self.kind = kind
        self.root = root
        self.name = name
        self.harness: SourceHarness | None = None
        if kind == "postgres":
            require_server("PostgreSQL", "127.0.0.1", 5432)
            self.harness = PostgresHarness(PG_URL, name)
        elif kind == "mysql":
            require_server("MariaDB/MySQL", "127.0.0.1", 3306)
            self.harness = MySQLHarness(MYSQL_URL, name)
            self.harness.execute("SET SESSION sql_mode = ''")  # lets the zero date in
        elif kind == "sqlite":
            self.harness = SQLiteHarness(root)
        self.tables: dict[str, dict[str, Any]] = {}

    def config(self) -> dict[str, Any]:
        if self.harness is not None:
            return self.harness.source_config()
        return {"type": "files"}

    def create(self, table: str, rows: list[TypeRow]) -> None:
        if self.harness is not None:
            self._create_sql(table, rows)
        else:
            self._create_file(table, rows)

    def _create_sql(self, table: str, rows: list[TypeRow]) -> None:
        assert self.harness is not None
        q = self.harness.QUOTE
        columns = ", ".join(f"{q}{r.column}{q} {r.source_type}" for r in rows)
        self.harness.execute(
            f"CREATE TABLE {q}{table}{q} ({q}id{q} INTEGER PRIMARY KEY, {columns})"
        )
        for i in range(max(len(r.values) for r in rows) + 1):  # the last row: all NULL
            values = ", ".join(r.values[i] if i < len(r.values) else "NULL" for r in rows)
            self.harness.execute(f"INSERT INTO {q}{table}{q} VALUES ({i}, {values})")
        self.tables[table] = {}

    def _create_file(self, table: str, rows: list[TypeRow]) -> None:
        count = max(len(r.values) for r in rows) + 1
        ids = list(range(count))

        def column(r: TypeRow) -> list[Any]:
            return [r.values[i] if i < len(r.values) else None for i in ids]

        folder = self.root / "landing"
        folder.mkdir(exist_ok=True)
        path = folder / f"{table}.{self.kind}"
        if self.kind == "parquet":
            arrays = {"id": pa.array(ids, pa.int64())}
            arrays |= {r.column: pa.array(column(r), FILE_TYPES[r.source_type]) for r in rows}
            pq.write_table(pa.table(arrays), path)
        elif self.kind == "csv":
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["id", *(r.column for r in rows)])
                for i in ids:
                    writer.writerow(
                        [i, *("" if v is None else v for v in (column(r)[i] for r in rows))]
                    )
        else:
            with path.open("w", encoding="utf-8") as handle:
                for i in ids:
                    record = {"id": i} | {r.column: column(r)[i] for r in rows if i < len(r.values)}
                    handle.write(json.dumps(record) + "\n")
        self.tables[table] = {"path": str(path)}

    def close(self) -> None:
        if self.harness is not None:
            self.harness.close()


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

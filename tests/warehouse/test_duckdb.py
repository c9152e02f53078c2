"""The DuckDB warehouse's own behaviour, beyond the conformance suite."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from gristmill.config import WarehouseConfig
from gristmill.warehouse.duckdb import ROW_GROUP_ROWS, DuckDBWarehouse, whole_row_groups


def _batches(total: int, size: int) -> list[pa.RecordBatch]:
    ids = pa.array(range(total), pa.int64())
    return pa.table({"id": ids}).to_batches(max_chunksize=size) if total else []


@pytest.mark.parametrize(
    "total", [0, 1, ROW_GROUP_ROWS - 1, ROW_GROUP_ROWS, ROW_GROUP_ROWS + 1, 3 * ROW_GROUP_ROWS + 7]
)
@pytest.mark.parametrize("size", [1_000, ROW_GROUP_ROWS - 1, 156_000, 5 * ROW_GROUP_ROWS + 1])
def test_batches_are_regrouped_into_whole_row_groups(total: int, size: int) -> None:
    regrouped = list(whole_row_groups(_batches(total, size)))

    rows = [b.num_rows for b in regrouped]
    whole = total // ROW_GROUP_ROWS
    assert rows[:whole] == [ROW_GROUP_ROWS] * whole
    assert sum(rows[whole:]) == total % ROW_GROUP_ROWS
    ids = [i for b in regrouped for i in b.column(0).to_pylist()]
    assert ids == list(range(total))


def test_an_append_of_large_batches_keeps_every_row_in_order(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(WarehouseConfig(path=str(tmp_path / "w.duckdb")), tmp_path)
    try:
        warehouse.ensure_schema("raw")
        warehouse.recreate_table("raw", "t", pa.schema([("id", pa.int64())]))
        total = 2 * ROW_GROUP_ROWS + 5
        assert warehouse.append("raw", "t", _batches(total, 156_000)) == total
        [(count, first, last, distinct)] = warehouse.fetchall(
            'SELECT count(*), min(id), max(id), count(DISTINCT id) FROM "raw"."t"'
        )
        assert (count, first, last, distinct) == (total, 0, total - 1, total)
    finally:
        warehouse.close()

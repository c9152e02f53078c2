"""One suite, every warehouse: types, parallel appends, transactions, and whole syncs."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from gristmill.config import WarehouseConfig
from gristmill.errors import BackendError, ConnectionFailedError
from gristmill.warehouse import connect_warehouse
from gristmill.warehouse.base import Warehouse
from tests.helpers import run_ingest, write_project
from tests.ingest.harness import SQLiteHarness

TYPED = pa.table(
    {
        "id": pa.array([1, 2], pa.int64()),
        "small": pa.array([7, None], pa.int32()),
        "amount": pa.array([Decimal("1234567890.12"), None], pa.decimal128(12, 2)),
        "ratio": pa.array([0.25, None], pa.float64()),
        "name": pa.array(["héllo 世界", None]),
        "ok": pa.array([True, None]),
        "day": pa.array([date(2024, 2, 29), None]),
        "at": pa.array([datetime(2024, 1, 2, 3, 4, 5, 123456), None], pa.timestamp("us")),
        "at_tz": pa.array(
            [datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), None], pa.timestamp("us", tz="UTC")
        ),
        "raw": pa.array([b"\x00\xff", None], pa.binary()),
        "tags": pa.array([[1, 2], None], pa.list_(pa.int32())),
        "doc": pa.ExtensionArray.from_storage(pa.json_(pa.string()), pa.array(['{"a":1}', None])),
    }
)


@pytest.fixture
def warehouse(warehouse_config: dict[str, Any], tmp_path: Path) -> Warehouse:
    wh = connect_warehouse(WarehouseConfig(**warehouse_config), tmp_path)
    wh.ensure_schema(warehouse_config["raw_schema"])
    yield wh
    wh.close()


def _schema(warehouse: Warehouse) -> str:
    return warehouse.config.raw_schema


def _normal(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("{"):
        return value.replace(" ", "")
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def test_every_type_round_trips(warehouse: Warehouse) -> None:
    schema = _schema(warehouse)
    warehouse.recreate_table(schema, "typed", TYPED.schema)

    warehouse.append(schema, "typed", TYPED.to_batches())

    got = warehouse.query_arrow(f'SELECT * FROM "{schema}"."typed" ORDER BY id').to_pylist()
    want = TYPED.to_pylist()
    assert [{k: _normal(v) for k, v in r.items()} for r in got] == [
        {k: _normal(v) for k, v in r.items()} for r in want
    ]


def test_appends_from_two_threads_at_once(warehouse: Warehouse) -> None:
    schema = _schema(warehouse)
    table = pa.table({"id": pa.array(range(50_000), pa.int64())})
    warehouse.recreate_table(schema, "many", table.schema)

    def load(offset: int) -> None:
        shifted = pa.table({"id": pa.array(range(offset, offset + 50_000), pa.int64())})
        warehouse.append(schema, "many", shifted.to_batches(max_chunksize=5_000))

    threads = [threading.Thread(target=load, args=(n * 50_000,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert warehouse.row_count(schema, "many") == 100_000


def test_a_failed_transaction_leaves_nothing(warehouse: Warehouse) -> None:
    schema = _schema(warehouse)
    warehouse.recreate_table(schema, "kept", pa.schema([("id", pa.int64())]))

    with pytest.raises(RuntimeError), warehouse.transaction() as tx:
        tx.execute(f'INSERT INTO "{schema}"."kept" VALUES (1)')
        tx.execute(f'CREATE TABLE "{schema}"."half" (id BIGINT)')
        raise RuntimeError("crash between statements")

    assert warehouse.row_count(schema, "kept") == 0
    assert not warehouse.table_exists(schema, "half")


def test_state_round_trips(warehouse: Warehouse) -> None:
    warehouse.ensure_state_table()
    with warehouse.transaction() as tx:
        warehouse.write_state(tx, "app", "users", {"cursor": {"kind": "int", "value": 5}})
    assert warehouse.read_state("app", "users") == {"cursor": {"kind": "int", "value": 5}}
    assert warehouse.read_state("app", "nope") is None


def test_a_bad_statement_is_a_backend_error(warehouse: Warehouse) -> None:
    with pytest.raises(BackendError, match="no_such_table"):
        warehouse.fetchall("SELECT * FROM no_such_table")


def test_postgres_warehouse_unreachable_without_password(tmp_path: Path) -> None:
    config = WarehouseConfig(type="postgres", url="postgresql://u:pw-s3cret@127.0.0.1:1/x")
    with pytest.raises(ConnectionFailedError) as info:
        connect_warehouse(config, tmp_path)
    assert "127.0.0.1:1/x" in str(info.value) and "pw-s3cret" not in str(info.value)


def test_whole_syncs_through_every_warehouse(
    warehouse_config: dict[str, Any], project_dir: Path, tmp_path: Path
) -> None:
    app = SQLiteHarness(tmp_path)
    app.create_table(
        "ledger",
        {"id": "bigint", "amount": "decimal(12,2)", "seq": "bigint", "gone": "timestamp"},
    )
    app.insert("ledger", [{"id": i, "amount": Decimal("1.50"), "seq": i // 2} for i in range(6)])
    app.create_table("events", {"id": "bigint", "seq": "int"})
    app.insert("events", [{"id": i, "seq": 1} for i in range(3)])
    # No key: rows read again are told apart by their values, as a multiset.
    app.create_table("log", {"line": "text", "seq": "int"}, primary_key=())
    app.insert("log", [{"line": "same", "seq": 1}, {"line": "same", "seq": 1}])
    tables = {
        "ledger": {"mode": "merge", "cursor": "seq", "soft_delete_column": "gone", "lookback": 5},
        "events": {"mode": "append", "cursor": "seq"},
        "log": {"mode": "append", "cursor": "seq", "lookback": 5},
    }
    write_project(
        project_dir, {"app": {**app.source_config(), "tables": tables}}, warehouse=warehouse_config
    )
    assert run_ingest(project_dir).ok
    app.execute("UPDATE ledger SET amount = 9.99, seq = 10 WHERE id = 1")
    app.execute("UPDATE ledger SET gone = '2024-01-01 00:00:00', seq = 10 WHERE id = 2")
    app.execute("ALTER TABLE ledger ADD COLUMN note TEXT")
    app.insert("ledger", [{"id": 7, "amount": Decimal("2.00"), "seq": 11, "note": "new"}])
    app.insert("events", [{"id": 3, "seq": 1}, {"id": 4, "seq": 2}])  # a tie, and a new one
    app.insert("log", [{"line": "same", "seq": 1}, {"line": "next", "seq": 2}])

    summary = run_ingest(project_dir)
    again = run_ingest(project_dir)

    assert summary.ok, summary.to_dict()
    changed = {t.table: (t.rows, t.deleted_rows) for t in summary.tables}
    assert changed == {"ledger": (2, 1), "events": (2, 0), "log": (2, 0)}
    assert {t.table: (t.rows, t.deleted_rows) for t in again.tables} == {
        "ledger": (0, 0),
        "events": (0, 0),
        "log": (0, 0),
    }
    from gristmill.project import Project

    schema = warehouse_config["raw_schema"]
    with Project.load(project_dir) as project:
        ledger = project.warehouse.query_arrow(
            f'SELECT id, amount, note FROM "{schema}".ledger ORDER BY id'
        ).to_pylist()
        events = project.warehouse.query_arrow(
            f'SELECT id FROM "{schema}".events ORDER BY id'
        ).to_pylist()
        log = project.warehouse.query_arrow(
            f'SELECT line, seq FROM "{schema}".log ORDER BY seq, line DESC'
        ).to_pylist()
    assert [(r["id"], r["amount"], r["note"]) for r in ledger] == [
        (0, Decimal("1.50"), None),
        (1, Decimal("9.99"), None),
        (3, Decimal("1.50"), None),
        (4, Decimal("1.50"), None),
        (5, Decimal("1.50"), None),
        (7, Decimal("2.00"), "new"),
    ]
    assert [r["id"] for r in events] == [0, 1, 2, 3, 4]
    assert [(r["line"], r["seq"]) for r in log] == [("same", 1)] * 3 + [("next", 2)]
    app.close()

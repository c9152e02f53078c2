"""One suite, every SQL source kind: types, sync modes, cursor ties, deletes, schema changes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gristmill.ingest import read_ahead
from gristmill.project import Project
from tests.helpers import run_ingest, warehouse_rows, write_project
from tests.ingest.harness import LOGICAL_TYPES, SourceHarness

SAMPLE: dict[str, list[Any]] = {
    "bigint": [9_007_199_254_740_993, -1],
    "int": [2_147_483_647, 0],
    "decimal(12,2)": [Decimal("1234567890.12"), Decimal("-0.01")],
    "float": [1.5, -2.25e10],
    "text": ["héllo wörld, 世界 🚀", ""],
    "bool": [True, False],
    "date": [date(2024, 2, 29), date(1970, 1, 1)],
    "timestamp": [datetime(2024, 1, 2, 3, 4, 5, 123456), datetime(1999, 12, 31, 23, 59, 59)],
    "timestamptz": [
        datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=3))),
        datetime(2000, 6, 1, 12, 0, tzinfo=UTC),
    ],
    "json": [{"a": [1, 2, {"b": "ü"}]}, {}],
    "bytes": [b"\x00\xde\xad\xbe\xef", b""],
    "int[]": [[1, 2, 3], []],
}


def _column(logical: str) -> str:
    return "c_" + "".join(ch if ch.isalnum() else "_" for ch in logical)


def _normalise(logical: str, value: Any) -> Any:
    if value is None:
        return None
    if logical == "json":
        return json.loads(value) if isinstance(value, str) else value
    if logical == "timestamptz":
        return value.astimezone(UTC)
    if logical == "bytes":
        return bytes(value)
    return value


def _project(harness: SourceHarness, root: Path, tables: dict[str, Any]) -> Path:
    return write_project(root, {"src": {**harness.source_config(), "tables": tables}})


def test_types_round_trip(harness: SourceHarness, project_dir: Path) -> None:
    logicals = [t for t in LOGICAL_TYPES if t not in harness.UNSUPPORTED]
    harness.create_table("typed", {"id": "bigint", **{_column(t): t for t in logicals}})
    rows = [{"id": i, **{_column(t): SAMPLE[t][i] for t in logicals}} for i in range(2)]
    rows.append({"id": 2})  # every column NULL
    harness.insert("typed", rows)
    _project(harness, project_dir, {"typed": {}})

    summary = run_ingest(project_dir)

    assert summary.ok, summary.to_dict()
    loaded = warehouse_rows(project_dir, "typed")
    assert len(loaded) == 3
    for i, row in enumerate(loaded):
        for logical in logicals:
            expected = SAMPLE[logical][i] if i < 2 else None
            got = _normalise(logical, row[_column(logical)])
            assert got == _normalise(logical, expected), (logical, got, expected)


def test_full_refresh_mirrors_the_source(harness: SourceHarness, project_dir: Path) -> None:
    harness.create_table("items", {"id": "bigint", "name": "text"})
    harness.insert("items", [{"id": i, "name": f"n{i}"} for i in range(5)])
    _project(harness, project_dir, {"items": {"mode": "full"}})
    assert run_ingest(project_dir).ok
    harness.execute("DELETE FROM items WHERE id = 0")
    harness.execute("UPDATE items SET name = 'changed' WHERE id = 1")

    reloaded = run_ingest(project_dir).tables[0]
    same = run_ingest(project_dir).tables[0]

    rows = warehouse_rows(project_dir, "items")
    assert [(r["id"], r["name"]) for r in rows] == [
        (1, "changed"),
        (2, "n2"),
        (3, "n3"),
        (4, "n4"),
    ]
    # A reload rewrites every row; one that brings the same rows changes none.
    assert (reloaded.rows_read, reloaded.rows) == (4, 4)
    assert (same.rows_read, same.rows) == (4, 0)


def test_append_cursor_ties_neither_lost_nor_doubled(
    harness: SourceHarness, project_dir: Path
) -> None:
    harness.create_table("events", {"id": "bigint", "seq": "bigint", "payload": "text"})
    harness.insert("events", [{"id": i, "seq": i // 3, "payload": "x"} for i in range(6)])
    _project(harness, project_dir, {"events": {"mode": "append", "cursor": "seq"}})
    assert run_ingest(project_dir).rows == 6
    # Rows arriving later with the last synced cursor value (seq 1) and beyond.
    harness.insert("events", [{"id": 6, "seq": 1, "payload": "late tie"}])
    harness.insert("events", [{"id": i, "seq": 2, "payload": "new"} for i in range(7, 9)])

    first = run_ingest(project_dir)
    version = _state(project_dir, "events")["version"]
    again = run_ingest(project_dir)

    assert first.ok and again.ok
    assert first.tables[0].rows == 3
    assert again.tables[0].rows == 0 and _state(project_dir, "events")["version"] == version
    rows = warehouse_rows(project_dir, "events")
    assert [r["id"] for r in rows] == list(range(9))


def test_merge_upserts_by_key_and_drops_soft_deleted_rows(
    harness: SourceHarness, project_dir: Path
) -> None:
    harness.create_table(
        "accounts",
        {
            "id": "bigint",
            "balance": "decimal(12,2)",
            "updated_at": "timestamp",
            "deleted_at": "timestamp",
        },
    )
    t0 = datetime(2024, 1, 1)
    harness.insert(
        "accounts",
        [
            {"id": i, "balance": Decimal("10.00"), "updated_at": t0 + timedelta(minutes=i)}
            for i in range(4)
        ],
    )
    _project(
        harness,
        project_dir,
        {"accounts": {"mode": "merge", "cursor": "updated_at", "soft_delete_column": "deleted_at"}},
    )
    assert run_ingest(project_dir).ok
    harness.execute(
        "UPDATE accounts SET balance = 99.50, updated_at = '2024-01-02 00:00:00' WHERE id = 1"
    )
    harness.execute(
        "UPDATE accounts SET deleted_at = '2024-01-02 00:00:00', updated_at = '2024-01-02 00:00:00'"
        " WHERE id = 2"
    )
    harness.insert(
        "accounts", [{"id": 9, "balance": Decimal("1.00"), "updated_at": datetime(2024, 1, 2)}]
    )

    summary = run_ingest(project_dir)

    assert summary.ok, summary.to_dict()
    # Only the changed rows are read, plus the one row at the last cursor value: reads are
    # inclusive of it so that rows committed later with the same value are never lost.
    # That one is found unchanged: `rows` counts the rows the sync changed.
    synced = summary.tables[0]
    assert (synced.rows_read, synced.rows, synced.deleted_rows) == (4, 2, 1)
    rows = warehouse_rows(project_dir, "accounts")
    assert [(r["id"], r["balance"]) for r in rows] == [
        (0, Decimal("10.00")),
        (1, Decimal("99.50")),
        (3, Decimal("10.00")),
        (9, Decimal("1.00")),
    ]


@pytest.mark.parametrize("mode", ["merge", "append"])
def test_a_sync_that_finds_nothing_new_changes_nothing(
    harness: SourceHarness, project_dir: Path, mode: str
) -> None:
    harness.create_table(
        "accounts",
        {"id": "bigint", "balance": "int", "updated_at": "timestamp", "deleted_at": "timestamp"},
    )
    t0 = datetime(2024, 1, 1)
    last = t0 + timedelta(minutes=10)
    harness.insert(
        "accounts",
        # Rows inside the lookback window, rows tied at the last cursor value, and a row
        # soft-deleted at that value: each sync reads them all again.
        [{"id": i, "balance": i, "updated_at": t0 + timedelta(minutes=i)} for i in range(4)]
        + [{"id": i, "balance": i, "updated_at": last} for i in (4, 5)]
        + [{"id": 6, "balance": 6, "updated_at": last, "deleted_at": last}],
    )
    table = {
        "mode": mode,
        "cursor": "updated_at",
        "soft_delete_column": "deleted_at",
        "lookback": "1h",
    }
    _project(harness, project_dir, {"accounts": table})
    assert run_ingest(project_dir).ok
    version = _state(project_dir, "accounts")["version"]

    for _ in range(2):
        again = run_ingest(project_dir)
        assert again.ok, again.to_dict()
        synced = again.tables[0]
        assert (synced.rows_read, synced.rows, synced.deleted_rows) == (7, 0, 0)
        assert _state(project_dir, "accounts")["version"] == version
    assert [r["id"] for r in warehouse_rows(project_dir, "accounts")] == list(range(6))

    # One change inside the window is found, and only it.
    harness.execute("UPDATE accounts SET balance = 20 WHERE id = 2")
    harness.insert("accounts", [{"id": 7, "balance": 7, "updated_at": last}])
    changed = run_ingest(project_dir).tables[0]
    assert changed.rows == (2 if mode == "merge" else 1)
    assert _state(project_dir, "accounts")["version"] != version


CURSOR_VALUES: dict[str, list[Any]] = {
    "bigint": [1, 2, 3, 4],
    "decimal(12,2)": [
        Decimal("-0.01"),
        Decimal("0.10"),
        Decimal("1234567890.12"),
        Decimal("9999999999.99"),
    ],
    "date": [date(1999, 12, 31), date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1)],
    "timestamp": [
        datetime(2024, 1, 1) + timedelta(microseconds=us) for us in (0, 1, 999_999, 1_000_000)
    ],
    # Instants written in other zones; the sync runs in a zone ahead of UTC, so that a
    # cursor written as its wall-clock time in any zone but UTC would skip rows.
    "timestamptz": [
        datetime(2024, 1, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=3))),
        datetime(2024, 1, 1, 9, 0, 0, 2, tzinfo=UTC),
        datetime(2024, 1, 1, 5, 0, 0, 3, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2024, 1, 1, 10, 0, 0, 3, tzinfo=UTC),
    ],
}


@pytest.fixture
def tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone nine hours ahead of UTC (the warehouse's sessions
    take it up)."""
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("kind", sorted(CURSOR_VALUES))
def test_cursor_values_of_every_kind_are_compared_exactly(
    harness: SourceHarness, project_dir: Path, kind: str, tokyo: None
) -> None:
    if kind in harness.UNSUPPORTED:
        pytest.skip(f"{harness.kind} has no {kind} column")
    values = CURSOR_VALUES[kind]
    harness.create_table("events", {"id": "bigint", "at": kind})
    harness.insert("events", [{"id": i, "at": values[i]} for i in range(3)])
    _project(harness, project_dir, {"events": {"mode": "append", "cursor": "at"}})
    assert run_ingest(project_dir).ok
    # A row tied with the last value, one just past it.
    harness.insert("events", [{"id": 3, "at": values[2]}, {"id": 4, "at": values[3]}])

    synced = run_ingest(project_dir).tables[0]
    again = run_ingest(project_dir).tables[0]

    assert synced.status == again.status == "ok", (synced.error, again.error)
    assert (synced.rows, again.rows) == (2, 0)
    rows = warehouse_rows(project_dir, "events")
    assert [(r["id"], _normalise(kind, r["at"])) for r in rows] == [
        (i, _normalise(kind, v)) for i, v in enumerate([*values[:3], values[2], values[3]])
    ]


def test_a_lookback_that_does_not_fit_the_cursor_says_what_fits(
    harness: SourceHarness, project_dir: Path
) -> None:
    harness.create_table("events", {"id": "bigint", "seq": "bigint", "at": "timestamp"})
    _project(
        harness,
        project_dir,
        {
            "events": {"mode": "append", "cursor": "seq", "lookback": "10m"},
            "timed": {"mode": "append", "cursor": "at", "lookback": 100, "target": "t2"},
        },
    )
    harness.create_table("timed", {"id": "bigint", "at": "timestamp"})

    by_seq, by_time = run_ingest(project_dir).tables

    assert "lookback = '10m' does not fit cursor 'seq'" in (by_seq.error or "")
    assert "lookback = 1000" in (by_seq.error or "")
    assert "lookback = 100 does not fit cursor 'at'" in (by_time.error or "")
    assert 'lookback = "10m"' in (by_time.error or "")


def test_setting_a_soft_delete_column_reloads_the_table(
    harness: SourceHarness, project_dir: Path
) -> None:
    harness.create_table("users", {"id": "bigint", "seq": "bigint", "gone": "bool"})
    harness.insert("users", [{"id": 0, "seq": 0, "gone": False}, {"id": 1, "seq": 1, "gone": True}])
    _project(harness, project_dir, {"users": {"mode": "merge", "cursor": "seq"}})
    assert run_ingest(project_dir).ok
    _project(
        harness,
        project_dir,
        {"users": {"mode": "merge", "cursor": "seq", "soft_delete_column": "gone"}},
    )

    reloaded = run_ingest(project_dir).tables[0]

    assert reloaded.status == "ok", reloaded.error
    assert [r["id"] for r in warehouse_rows(project_dir, "users")] == [0]


def test_hard_deletes_found_by_key_comparison(harness: SourceHarness, project_dir: Path) -> None:
    harness.create_table("users", {"id": "bigint", "updated_at": "bigint"})
    harness.insert("users", [{"id": i, "updated_at": 1} for i in range(5)])
    _project(
        harness,
        project_dir,
        {"users": {"mode": "merge", "cursor": "updated_at", "detect_deletes": True}},
    )
    assert run_ingest(project_dir).ok
    harness.execute("DELETE FROM users WHERE id IN (1, 3)")

    summary = run_ingest(project_dir)

    assert summary.tables[0].deleted_rows == 2
    assert [r["id"] for r in warehouse_rows(project_dir, "users")] == [0, 2, 4]


def test_select_exclude_and_rename(harness: SourceHarness, project_dir: Path) -> None:
    harness.create_table("people", {"id": "bigint", "name": "text", "ssn": "text", "age": "int"})
    harness.insert("people", [{"id": 1, "name": "Ama", "ssn": "123-45", "age": 30}])
    _project(
        harness,
        project_dir,
        {"people": {"exclude": ["ssn"], "rename": {"name": "full_name"}, "target": "customers"}},
    )

    assert run_ingest(project_dir).ok

    assert warehouse_rows(project_dir, "customers") == [{"id": 1, "full_name": "Ama", "age": 30}]


def test_new_and_widened_columns_follow_the_source(
    harness: SourceHarness, project_dir: Path
) -> None:
    harness.create_table("orders", {"id": "bigint", "qty": "int", "seq": "bigint"})
    harness.insert("orders", [{"id": 1, "qty": 5, "seq": 1}])
    _project(harness, project_dir, {"orders": {"mode": "append", "cursor": "seq"}})
    assert run_ingest(project_dir).ok
    harness.execute(f"ALTER TABLE orders ADD COLUMN note {harness.column_ddl('text')}")
    harness.insert("orders", [{"id": 2, "qty": 7, "seq": 2, "note": "new column"}])

    summary = run_ingest(project_dir)

    assert summary.ok, summary.to_dict()
    assert "added note" in (summary.tables[0].schema_change or "")
    rows = warehouse_rows(project_dir, "orders")
    assert [(r["id"], r["note"]) for r in rows] == [(1, None), (2, "new column")]


def test_incompatible_type_change_stops_the_table_and_keeps_its_data(
    harness: SourceHarness, project_dir: Path
) -> None:
    harness.create_table("ledger", {"id": "bigint", "amount": "bigint", "seq": "bigint"})
    harness.insert("ledger", [{"id": 1, "amount": 5, "seq": 1}])
    harness.create_table("other", {"id": "bigint"})
    harness.insert("other", [{"id": 1}])
    _project(harness, project_dir, {"ledger": {"mode": "append", "cursor": "seq"}, "other": {}})
    assert run_ingest(project_dir).ok
    harness.create_table("ledger", {"id": "bigint", "amount": "text", "seq": "bigint"})
    harness.insert("ledger", [{"id": 2, "amount": "five", "seq": 2}])

    summary = run_ingest(project_dir)

    ledger, other = summary.tables
    assert ledger.status == "failed" and other.status == "ok"
    assert "ledger" in ledger.error and "'amount'" in ledger.error
    assert "int64" in ledger.error and "string" in ledger.error
    assert warehouse_rows(project_dir, "ledger") == [{"id": 1, "amount": 5, "seq": 1}]


def test_missing_table_and_column_name_close_matches(
    harness: SourceHarness, project_dir: Path
) -> None:
    harness.create_table("transactions", {"id": "bigint", "amount": "int"})
    _project(
        harness, project_dir, {"transaction": {}, "transactions": {"columns": ["id", "amout"]}}
    )

    summary = run_ingest(project_dir)

    missing_table, missing_column = summary.tables
    assert "Did you mean 'transactions'?" in missing_table.error
    assert "Did you mean 'amount'?" in missing_column.error


@pytest.mark.parametrize(
    "stage_bytes",
    [read_ahead.IN_MEMORY_STAGE_BYTES, 0],
    ids=["stage_in_memory", "stage_table"],
)
def test_types_survive_incremental_merges(
    harness: SourceHarness, project_dir: Path, monkeypatch: pytest.MonkeyPatch, stage_bytes: int
) -> None:
    monkeypatch.setattr(read_ahead, "IN_MEMORY_STAGE_BYTES", stage_bytes)
    logicals = [t for t in LOGICAL_TYPES if t not in harness.UNSUPPORTED]
    harness.create_table(
        "typed", {"id": "bigint", "seq": "bigint", **{_column(t): t for t in logicals}}
    )
    values = [{_column(t): SAMPLE[t][i] for t in logicals} for i in range(2)]
    harness.insert("typed", [{"id": i, "seq": 0, **values[i]} for i in range(2)])
    _project(harness, project_dir, {"typed": {"mode": "merge", "cursor": "seq"}})
    assert run_ingest(project_dir).ok
    harness.insert("typed", [{"id": 2, "seq": 1, **values[0]}])

    merged = run_ingest(project_dir)
    version = _state(project_dir)["version"]
    # Reads the row at the last cursor value again, and finds it unchanged in every type.
    again = run_ingest(project_dir)

    assert merged.ok and again.ok, (merged.to_dict(), again.to_dict())
    assert _state(project_dir)["version"] == version
    loaded = warehouse_rows(project_dir, "typed")
    assert [r["id"] for r in loaded] == [0, 1, 2]
    for row, expected in zip(loaded, [values[0], values[1], values[0]], strict=True):
        for logical in logicals:
            got = _normalise(logical, row[_column(logical)])
            assert got == _normalise(logical, expected[_column(logical)]), (logical, got)


@pytest.mark.parametrize("mirrored", [100, 0], ids=["mirror_ahead", "mirror_behind"])
def test_read_ahead_is_used_only_from_the_warehouse_cursor(
    harness: SourceHarness, project_dir: Path, monkeypatch: pytest.MonkeyPatch, mirrored: int
) -> None:
    taken: list[bool] = []
    take = read_ahead.ReadAhead.take

    def recording_take(self: read_ahead.ReadAhead, cursor: dict[str, Any] | None) -> Any:
        extract = take(self, cursor)
        taken.append(extract is not None)
        return extract

    monkeypatch.setattr(read_ahead.ReadAhead, "take", recording_take)
    harness.create_table("events", {"id": "bigint", "seq": "bigint"})
    harness.insert("events", [{"id": i, "seq": i} for i in range(3)])
    _project(harness, project_dir, {"events": {"mode": "append", "cursor": "seq"}})
    assert run_ingest(project_dir).ok
    harness.insert("events", [{"id": 3, "seq": 3}])
    assert run_ingest(project_dir).ok
    # The catalog's mirror of the state falls out of step with the warehouse's, as a crash
    # between the two writes would leave it (or, ahead of it, a mirror some other copy of
    # the project wrote): the read begun from it must not be used.
    with sqlite3.connect(project_dir / ".gristmill" / "catalog.sqlite") as catalog:
        catalog.execute(
            "UPDATE sync_state SET state = json_set(state, '$.cursor.value', ?)", [mirrored]
        )
    harness.insert("events", [{"id": 4, "seq": 4}])

    assert run_ingest(project_dir).ok

    assert taken == [True, False]
    assert [(r["id"], r["seq"]) for r in warehouse_rows(project_dir, "events")] == [
        (i, i) for i in range(5)
    ]


def test_a_table_gone_since_its_last_sync_fails_alone(
    harness: SourceHarness, project_dir: Path
) -> None:
    for table in ("events", "others"):
        harness.create_table(table, {"id": "bigint", "seq": "bigint"})
        harness.insert(table, [{"id": 0, "seq": 0}])
    settings = {"mode": "append", "cursor": "seq"}
    _project(harness, project_dir, {"events": settings, "others": settings})
    assert run_ingest(project_dir).ok
    harness.execute("DROP TABLE events")
    harness.insert("others", [{"id": 1, "seq": 1}])

    gone, others = run_ingest(project_dir).tables

    assert gone.status == "failed" and "has no table 'events'" in (gone.error or "")
    assert others.status == "ok"
    assert [r["id"] for r in warehouse_rows(project_dir, "others")] == [0, 1]


def _state(root: Path, table: str = "typed") -> dict[str, Any]:
    with Project.load(root) as project:
        state = project.warehouse.read_state("src", table)
    assert state is not None
    return state

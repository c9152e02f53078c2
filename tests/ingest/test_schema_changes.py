"""Schema changes and table kinds, over every SQL source kind: what a sync cannot carry
over by itself is said in the summary and the catalog, with the command that fixes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gristmill.project import Project
from tests.helpers import run_ingest, warehouse_rows, write_project
from tests.ingest.harness import SourceHarness


def _project(harness: SourceHarness, root: Path, tables: dict[str, Any] | None) -> Path:
    config = harness.source_config()
    if tables is not None:
        config["tables"] = tables
    return write_project(root, {"src": config})


def _history(root: Path, table: str) -> list[dict[str, Any]]:
    with Project.load(root) as project:
        return project.catalog.schema_history("src", table)


def _last_sync(root: Path) -> dict[str, Any]:
    with Project.load(root) as project:
        run = project.catalog.runs(1)[0]
        (sync,) = project.catalog.syncs(run["id"])
    return sync


def test_a_column_added_with_a_default_says_old_rows_hold_null_and_how_to_reload(
    harness: SourceHarness, project_dir: Path
) -> None:
    harness.create_table("orders", {"id": "bigint", "seq": "bigint"})
    harness.insert("orders", [{"id": 1, "seq": 1}, {"id": 2, "seq": 2}])
    _project(harness, project_dir, {"orders": {"mode": "merge", "cursor": "seq"}})
    assert run_ingest(project_dir).ok
    harness.execute("ALTER TABLE orders ADD COLUMN status VARCHAR(10) NOT NULL DEFAULT 'new'")
    harness.insert("orders", [{"id": 3, "seq": 3, "status": "paid"}])

    (result,) = run_ingest(project_dir).tables

    assert result.outcome == "synced" and result.unfilled_columns == ["status"]
    (warning,) = result.warnings
    assert "status" in warning and "NULL" in warning
    assert "gristmill ingest src.orders --full-refresh" in warning
    # Row 2, at the last cursor value, is read again (reads include it); row 1 is not.
    assert [(r["id"], r["status"]) for r in warehouse_rows(project_dir, "orders")] == [
        (1, None),
        (2, "new"),
        (3, "paid"),
    ]
    history = _history(project_dir, "orders")
    assert "added status" in history[-1]["change"]
    assert "--full-refresh" in history[-1]["change"]
    details = json.loads(_last_sync(project_dir)["details"])
    assert details["unfilled_columns"] == ["status"] and details["warnings"] == [warning]

    reloaded = run_ingest(project_dir, "src.orders", full_refresh=True)

    assert reloaded.tables[0].warnings == []
    assert [(r["id"], r["status"]) for r in warehouse_rows(project_dir, "orders")] == [
        (1, "new"),
        (2, "new"),
        (3, "paid"),
    ]


def test_a_column_added_to_a_table_read_whole_needs_no_reload(
    harness: SourceHarness, project_dir: Path
) -> None:
    harness.create_table("users", {"id": "bigint"})
    harness.insert("users", [{"id": 1}])
    _project(harness, project_dir, {"users": {"mode": "full"}})
    assert run_ingest(project_dir).ok
    harness.execute("ALTER TABLE users ADD COLUMN tier VARCHAR(10) NOT NULL DEFAULT 'gold'")

    (result,) = run_ingest(project_dir).tables

    assert result.unfilled_columns == [] and result.warnings == []
    assert "added tier" in (result.schema_change or "")
    assert warehouse_rows(project_dir, "users") == [{"id": 1, "tier": "gold"}]


@pytest.mark.parametrize("mode", ["merge", "full"])
def test_a_dropped_column_is_reported_once(
    harness: SourceHarness, project_dir: Path, mode: str
) -> None:
    harness.create_table("orders", {"id": "bigint", "seq": "bigint", "memo": "text"})
    harness.insert("orders", [{"id": 1, "seq": 1, "memo": "a"}, {"id": 2, "seq": 2, "memo": "b"}])
    table = {"mode": mode, "cursor": "seq"} if mode == "merge" else {"mode": mode}
    _project(harness, project_dir, {"orders": table})
    assert run_ingest(project_dir).ok
    harness.execute("ALTER TABLE orders DROP COLUMN memo")
    harness.insert("orders", [{"id": 3, "seq": 3}])

    (result,) = run_ingest(project_dir).tables
    (again,) = run_ingest(project_dir).tables

    assert result.status == "ok" and result.dropped_columns == ["memo"]
    (warning,) = result.warnings
    assert "memo" in warning
    assert "dropped memo" in (result.schema_change or "")
    assert again.dropped_columns == [] and again.warnings == []
    history = _history(project_dir, "orders")
    assert len(history) == 2 and "dropped memo" in history[-1]["change"]
    rows = warehouse_rows(project_dir, "orders")
    if mode == "merge":
        # The warehouse keeps the column, and what it held; rows synced since (row 2, at the
        # last cursor value, is read again) hold NULL.
        assert "NULL" in warning
        assert [(r["id"], r["memo"]) for r in rows] == [(1, "a"), (2, None), (3, None)]
        columns = {c["name"]: c for c in json.loads(history[-1]["columns"])}
        assert columns["memo"].get("dropped") is True
    else:
        assert "removed" in warning
        assert rows == [{"id": i, "seq": i} for i in (1, 2, 3)]


def test_a_dropped_column_that_comes_back_is_filled_again(
    harness: SourceHarness, project_dir: Path
) -> None:
    harness.create_table("orders", {"id": "bigint", "seq": "bigint", "memo": "text"})
    harness.insert("orders", [{"id": 1, "seq": 1, "memo": "first"}])
    _project(harness, project_dir, {"orders": {"mode": "append", "cursor": "seq"}})
    assert run_ingest(project_dir).ok
    harness.execute("ALTER TABLE orders DROP COLUMN memo")
    harness.insert("orders", [{"id": 2, "seq": 2}])
    assert run_ingest(project_dir).tables[0].dropped_columns == ["memo"]
    harness.execute(f"ALTER TABLE orders ADD COLUMN memo {harness.column_ddl('text')}")
    harness.insert("orders", [{"id": 3, "seq": 3, "memo": "back"}])

    (result,) = run_ingest(project_dir).tables

    assert result.status == "ok" and "memo" in (result.schema_change or "")
    assert [(r["id"], r["memo"]) for r in warehouse_rows(project_dir, "orders")] == [
        (1, "first"),
        (2, None),
        (3, "back"),
    ]
    columns = json.loads(_history(project_dir, "orders")[-1]["columns"])
    assert not any(c.get("dropped") for c in columns)


def test_views_sync_only_when_named(harness: SourceHarness, project_dir: Path) -> None:
    harness.create_table("items", {"id": "bigint", "name": "text"})
    harness.insert("items", [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
    harness.execute("CREATE VIEW named_items AS SELECT id, name FROM items WHERE id > 1")
    _project(harness, project_dir, None)

    every_table = run_ingest(project_dir)
    asked = run_ingest(project_dir, "src.named_items")
    _project(harness, project_dir, {"items": {}, "named_items": {}})
    declared = run_ingest(project_dir)

    assert [t.key for t in every_table.tables] == ["src.items"]
    assert [(t.key, t.outcome) for t in asked.tables] == [("src.named_items", "synced")]
    assert [(t.key, t.outcome) for t in declared.tables] == [
        ("src.items", "unchanged"),
        ("src.named_items", "unchanged"),
    ]
    assert warehouse_rows(project_dir, "named_items") == [{"id": 2, "name": "b"}]

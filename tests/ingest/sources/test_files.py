"""Files source: CSV, Parquet and JSON lines, picked up incrementally, bad rows reported."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill.project import Project
from tests.helpers import run_ingest, warehouse_rows, write_project


def _project(root: Path, table: dict[str, Any], name: str = "events") -> Path:
    return write_project(root, {"landing": {"type": "files", "tables": {name: table}}})


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_csv_new_files_are_loaded_once_each(project_dir: Path) -> None:
    _write(project_dir / "in/a.csv", "id,name,amount\n1,Zoë,1.5\n2,Wanjirũ,2.25\n")
    _project(project_dir, {"path": "in/*.csv", "mode": "append"})
    assert run_ingest(project_dir).rows == 2
    _write(project_dir / "in/b.csv", "id,name,amount\n3,Kofi,\n")

    second = run_ingest(project_dir)
    third = run_ingest(project_dir)

    assert (second.rows, third.rows) == (1, 0)
    assert warehouse_rows(project_dir, "events") == [
        {"id": 1, "name": "Zoë", "amount": 1.5},
        {"id": 2, "name": "Wanjirũ", "amount": 2.25},
        {"id": 3, "name": "Kofi", "amount": None},
    ]


def test_full_mode_reloads_every_file(project_dir: Path) -> None:
    _write(project_dir / "in/a.csv", "id\n1\n2\n")
    _project(project_dir, {"path": "in/*.csv", "mode": "full"})
    run_ingest(project_dir)
    _write(project_dir / "in/b.csv", "id\n3\n")

    assert run_ingest(project_dir).rows == 3
    assert [r["id"] for r in warehouse_rows(project_dir, "events")] == [1, 2, 3]


def test_parquet_types_round_trip(project_dir: Path) -> None:
    table = pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "amount": pa.array([Decimal("1234567890.12"), None], pa.decimal128(12, 2)),
            "at": pa.array(
                [datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), None],
                pa.timestamp("us", tz="UTC"),
            ),
            "day": pa.array([date(2024, 2, 29), None], pa.date32()),
            "ok": pa.array([True, None]),
            "name": pa.array(["世界 🚀", None]),
            "raw": pa.array([b"\x00\xff", None], pa.binary()),
        }
    )
    (project_dir / "in").mkdir()
    pq.write_table(table, project_dir / "in/part-0.parquet")
    _project(project_dir, {"path": "in/*.parquet", "mode": "append"})

    assert run_ingest(project_dir).ok

    assert warehouse_rows(project_dir, "events") == table.to_pylist()


def test_jsonl_with_nested_values(project_dir: Path) -> None:
    _write(
        project_dir / "in/e.jsonl",
        '{"id": 1, "tags": ["a", "b"], "n": 1.5}\n{"id": 2, "n": null}\n',
    )
    _project(project_dir, {"path": "in/*.jsonl", "mode": "append"})

    assert run_ingest(project_dir).ok

    assert warehouse_rows(project_dir, "events") == [
        {"id": 1, "tags": ["a", "b"], "n": 1.5},
        {"id": 2, "tags": None, "n": None},
    ]


MALFORMED = "id,amount\n1,10\n2,abc\n3,30,extra\n4,40\n"


def test_malformed_csv_rows_fail_the_table_naming_file_and_line(project_dir: Path) -> None:
    _write(project_dir / "in/a.csv", "id,amount\n0,5\n")
    _project(project_dir, {"path": "in/*.csv", "mode": "append"})
    assert run_ingest(project_dir).ok
    _write(project_dir / "in/b.csv", MALFORMED)

    summary = run_ingest(project_dir)

    (result,) = summary.tables
    assert result.status == "failed"
    assert "b.csv:3" in result.error and "b.csv:4" in result.error
    assert "'abc'" in result.error
    assert warehouse_rows(project_dir, "events") == [{"id": 0, "amount": 5}]


def test_bad_rows_within_max_bad_rows_are_quarantined(project_dir: Path) -> None:
    _write(project_dir / "in/a.csv", "id,amount\n0,5\n")
    _project(project_dir, {"path": "in/*.csv", "mode": "append", "max_bad_rows": 5})
    run_ingest(project_dir)
    _write(project_dir / "in/b.csv", MALFORMED)

    summary = run_ingest(project_dir)

    assert summary.ok and summary.tables[0].rejected_rows == 2
    assert [r["id"] for r in warehouse_rows(project_dir, "events")] == [0, 1, 4]
    with Project.load(project_dir) as project:
        rejected = project.warehouse.query_arrow(
            "SELECT file, line, error FROM _gristmill.rejected_rows ORDER BY line"
        ).to_pylist()
    assert [(Path(r["file"]).name, r["line"]) for r in rejected] == [("b.csv", 3), ("b.csv", 4)]


def test_malformed_jsonl_line_is_reported_with_its_line(project_dir: Path) -> None:
    _write(project_dir / "in/e.jsonl", '{"id": 1}\n{"id": 2\n{"id": 3}\n')
    _project(project_dir, {"path": "in/*.jsonl", "mode": "append"})

    (result,) = run_ingest(project_dir).tables

    assert result.status == "failed" and "e.jsonl:2" in result.error
    assert not Project.load(project_dir).warehouse.table_exists("raw", "events")


def test_a_new_column_in_a_later_file_is_added(project_dir: Path) -> None:
    _write(project_dir / "in/a.csv", "id,name\n1,a\n")
    _project(project_dir, {"path": "in/*.csv", "mode": "append"})
    run_ingest(project_dir)
    _write(project_dir / "in/b.csv", "id,name,score\n2,b,9.5\n")

    summary = run_ingest(project_dir)

    assert "added score" in (summary.tables[0].schema_change or "")
    assert warehouse_rows(project_dir, "events") == [
        {"id": 1, "name": "a", "score": None},
        {"id": 2, "name": "b", "score": 9.5},
    ]


def test_merge_keeps_the_latest_version_of_each_key(project_dir: Path) -> None:
    _write(project_dir / "in/1.csv", "id,status,v\n1,new,1\n2,new,1\n1,paid,2\n")
    _project(
        project_dir, {"path": "in/*.csv", "mode": "merge", "primary_key": ["id"], "cursor": "v"}
    )
    run_ingest(project_dir)
    _write(project_dir / "in/2.csv", "id,status,v\n2,paid,3\n")

    assert run_ingest(project_dir).ok

    assert warehouse_rows(project_dir, "events") == [
        {"id": 1, "status": "paid", "v": 2},
        {"id": 2, "status": "paid", "v": 3},
    ]


def test_a_glob_matching_nothing_is_a_clear_error(project_dir: Path) -> None:
    _project(project_dir, {"path": "nowhere/*.csv"})

    (result,) = run_ingest(project_dir).tables

    assert result.status == "failed" and "no file matches 'nowhere/*.csv'" in result.error


@pytest.mark.parametrize("suffix", [".txt"])
def test_unknown_extension_asks_for_a_format(project_dir: Path, suffix: str) -> None:
    _write(project_dir / f"in/a{suffix}", "id\n1\n")
    _project(project_dir, {"path": f"in/*{suffix}"})

    (result,) = run_ingest(project_dir).tables

    assert 'format = "csv"' in result.error

"""Diff keys: composite keys (through segmentation and bisection), keys with hostile text,
keys reported as the user writes them, and clear errors for keys that are no keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gristmill.checks.diff import diff_tables
from gristmill.errors import BackendError, ConfigError, NotFoundError
from gristmill.project import Project
from tests.checks.conftest import Side

HOSTILE = ["o'brien", 'say "hi"', "back\\slash", "Zürich", "日本", "", "a,b", "a\x1fb", "NULL"]
"""Text key values: quotes, backslash, unicode, empty, the row hash's separator."""


def _accounts(n: int) -> list[tuple[str, int, int]]:
    """(account, line, amount): ~3,000 rows, so that the diff bisects."""
    accounts = [f"acct{i:04d}" for i in range(n)] + HOSTILE
    return [(a, line, i * 10 + line) for i, a in enumerate(accounts) for line in (1, 2, 3)]


def _text(side: Side) -> str:
    return (
        "VARCHAR(40)"
        if side.dialect == "mysql"
        else "TEXT"
        if side.dialect == "postgres"
        else "VARCHAR"
    )


def test_composite_key_finds_missing_extra_and_changed_rows(
    source_pair: tuple[Project, Side, Side],
) -> None:
    project, a, b = source_pair
    for side in (a, b):
        columns = {"account": _text(side), "line": "INTEGER", "amount": "BIGINT"}
        side.create_table(columns, ["account", "line"])
    rows = _accounts(1000)
    a.insert([r for r in rows if r[:2] not in {("o'brien", 2), ("acct0500", 1)}])
    changed = {("日本", 3): 7, ("acct0000", 1): -1, ("a\x1fb", 2): 99}
    b_rows = [(acc, line, changed.get((acc, line), amount)) for acc, line, amount in rows]
    b.insert([r for r in b_rows if r[:2] != ("", 1)] + [("acct9999", 1, 1)])

    result = diff_tables(project, a.name, b.name, ["account", "line"])

    assert result.key == ["account", "line"]
    assert result.missing_in_a == [("acct0500", 1), ("acct9999", 1), ("o'brien", 2)]
    assert result.missing_in_b == [("", 1)]
    assert sorted((c.key, c.columns) for c in result.changed) == [
        (("a\x1fb", 2), {"amount": (10072, 99)}),
        (("acct0000", 1), {"amount": (1, -1)}),
        (("日本", 3), {"amount": (10043, 7)}),
    ]
    assert result.rows_moved < len(rows)  # segmented, not fetched whole
    report = result.to_dict()
    assert report["key"] == ["account", "line"]
    assert report["missing_in_b"] == [{"account": "", "line": 1}]
    assert {
        "key": {"account": "acct0000", "line": 1},
        "columns": {"amount": {"a": 1, "b": -1}},
    } in (report["changed"])


def test_composite_key_of_a_timestamp_and_an_integer(pair: tuple[Project, Side, Side]) -> None:
    project, a, b = pair
    for side in (a, b):
        stamp = "TIMESTAMPTZ" if side.dialect != "mysql" else "TIMESTAMP(6)"
        side.create_table({"at": stamp, "seq": "INTEGER", "v": "INTEGER"}, ["at", "seq"])
    start = datetime(2024, 3, 31, 0, 59, 59, 999999, tzinfo=UTC)
    rows = [(start + timedelta(minutes=i), i % 3, i) for i in range(1200)]
    a.insert(rows)
    b.insert([(at, seq, v + (v == 600)) for at, seq, v in rows[1:]])

    result = diff_tables(project, a.name, b.name, ("at", "seq"))

    assert result.missing_in_b == [("2024-03-31T00:59:59.999999+00:00", 0)]
    assert [(c.key, c.columns) for c in result.changed] == [
        (("2024-03-31T10:59:59.999999+00:00", 0), {"v": (600, 601)})
    ]


def test_text_keys_with_quotes_and_unicode(source_pair: tuple[Project, Side, Side]) -> None:
    project, a, b = source_pair
    for side in (a, b):
        side.create_table({"k": _text(side), "v": "INTEGER"}, ["k"])
    keys = [f"k{i:04d}" for i in range(1500)] + HOSTILE
    a.insert([(k, i) for i, k in enumerate(keys) if k != 'say "hi"'])
    b.insert([(k, i + (k == "back\\slash")) for i, k in enumerate(keys) if k != "o'brien"])

    result = diff_tables(project, a.name, b.name, "k")

    assert result.missing_in_a == ['say "hi"']
    assert result.missing_in_b == ["o'brien"]
    assert [(c.key, c.columns) for c in result.changed] == [("back\\slash", {"v": (1502, 1503)})]


def test_keys_that_are_no_keys_stop_with_a_clear_error(pair: tuple[Project, Side, Side]) -> None:
    project, a, b = pair
    for side in (a, b):
        side.create_table({"id": "INTEGER", "line": "INTEGER", "v": "INTEGER"}, ["id", "line"])
    a.insert([(1, 1, 1), (1, 2, 2)])
    b.insert([(1, 1, 1), (1, 2, 3)])

    with pytest.raises(BackendError, match=r"key \(id\) is not unique: 1 appears more than once"):
        diff_tables(project, a.name, b.name, "id")
    with pytest.raises(NotFoundError, match=r"no column 'lien'.*Did you mean 'line'"):
        diff_tables(project, a.name, b.name, ["id", "lien"])
    with pytest.raises(ConfigError, match="named twice"):
        diff_tables(project, a.name, b.name, ["id", "ID"])
    with pytest.raises(ConfigError, match="needs a key"):
        diff_tables(project, a.name, b.name, [])
    assert [c.key for c in diff_tables(project, a.name, b.name, ["id", "line"]).changed] == [(1, 2)]


def test_cli_composite_key(tmp_path: Path) -> None:
    import duckdb

    from tests.helpers import write_project

    write_project(tmp_path, {}, warehouse={"type": "duckdb", "path": str(tmp_path / "wh.duckdb")})
    with duckdb.connect(str(tmp_path / "wh.duckdb")) as db:
        db.execute("CREATE SCHEMA raw")
        db.execute(
            "CREATE TABLE raw.a AS SELECT i // 3 AS id, i % 3 AS line,"
            " DATE '2024-01-01' + CAST(i AS INTEGER) AS day"
            " FROM range(900) t(i)"
        )
        db.execute("CREATE TABLE raw.b AS SELECT * FROM raw.a WHERE NOT (id = 5 AND line = 1)")
        db.execute("UPDATE raw.b SET day = DATE '1999-12-31' WHERE id = 7 AND line = 2")

    def gristmill(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gristmill", "diff", "a", "b", *args, "-p", str(tmp_path)],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
            timeout=120,
        )

    done = gristmill("--key", "id,line", "--json")
    assert done.returncode == 1, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["key"] == ["id", "line"]
    assert out["missing_in_b"] == [{"id": 5, "line": 1}]
    assert out["changed"] == [
        {"key": {"id": 7, "line": 2}, "columns": {"day": {"a": "2024-01-24", "b": "1999-12-31"}}}
    ]
    table = gristmill("-k", "id, line")
    assert table.returncode == 1
    assert "on id,line" in table.stdout and "2024-01-24" in table.stdout

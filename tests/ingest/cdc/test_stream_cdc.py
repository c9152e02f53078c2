"""`gristmill stream` following a cdc table: changes reach the warehouse as they commit,
other processes open the DuckDB file meanwhile, SIGTERM stops it cleanly, SIGKILL loses
nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import LogicalPostgres
from tests.helpers import write_project

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.slow

GRISTMILL = str(Path(sys.executable).with_name("gristmill"))


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(root: Path, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [GRISTMILL, "stream", "-p", str(root), "--poll-seconds", "0.1", "--json", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TZ": "Asia/Kolkata"},
    )


def read_only(root: Path, sql: str) -> list[tuple[Any, ...]]:
    """A user's read-only connection, as a notebook would open it (again while the stream
    commits a batch)."""
    path = str(root / ".gristmill" / "warehouse.duckdb")
    for _ in range(200):
        try:
            with duckdb.connect(path, read_only=True) as db:
                return db.execute(sql).fetchall()
        except duckdb.IOException:
            time.sleep(0.02)
    raise AssertionError("the warehouse stayed locked for 4 s")


def wait_until_equal(root: Path, db: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    expected = db.execute("SELECT id, amount::text FROM ledger ORDER BY id").fetchall()
    while time.monotonic() < deadline:
        try:
            found = read_only(root, "SELECT id, amount::VARCHAR FROM raw.ledger ORDER BY id")
        except duckdb.CatalogException:
            found = []
        if found == expected:
            return
        time.sleep(0.1)
    raise AssertionError(
        f"the warehouse did not catch up: {len(found)} rows, {len(expected)} expected"
    )


def test_stream_follows_while_others_use_the_warehouse(
    tmp_path: Path, logical_postgres: LogicalPostgres
) -> None:
    url = logical_postgres.new_database()
    db = psycopg.connect(url, autocommit=True)
    db.execute("CREATE TABLE ledger (id BIGINT PRIMARY KEY, amount NUMERIC(12, 2))")
    db.execute("CREATE TABLE shops (id INT PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO shops VALUES (1, 'kiosk')")
    db.execute("INSERT INTO ledger SELECT i, i FROM generate_series(1, 1000) i")
    tables = {"ledger": {"mode": "cdc"}, "shops": {"mode": "full"}}
    root = write_project(
        tmp_path,
        {"app": {"type": "postgres", "url": url, "tables": tables}},
        name="s" + uuid.uuid4().hex[:8],
    )
    port = free_port()
    stream = start(root, "--metrics-port", str(port))
    try:
        wait_until_equal(root, db)  # the first poll loads the table
        db.execute("INSERT INTO ledger VALUES (5000, 1)")
        wait_until_equal(root, db)
        metrics = metric_lines(port)
        assert any(
            line.startswith('gristmill_stream_read_total{name="app.ledger"}') for line in metrics
        )
        assert any(
            line.startswith('gristmill_stream_lag{name="app.ledger",unit="bytes"}')
            for line in metrics
        )
        assert 'gristmill_stream_failing{name="app.ledger"} 0.0' in metrics
        for round_ in range(5):
            db.execute(
                "INSERT INTO ledger SELECT i, i FROM generate_series(%s::bigint, %s::bigint) i",
                [10_000 * (round_ + 1), 10_000 * (round_ + 1) + 499],
            )
            db.execute("UPDATE ledger SET amount = amount + 1 WHERE id %% 7 = %s", [round_])
            db.execute("DELETE FROM ledger WHERE id %% 11 = %s", [round_])
            # Another gristmill command writes the warehouse while the stream runs.
            other = subprocess.run(
                [GRISTMILL, "ingest", "app.shops", "-p", str(root)], capture_output=True, text=True
            )
            assert other.returncode == 0, other.stdout + other.stderr
            wait_until_equal(root, db)
        assert read_only(root, "SELECT name FROM raw.shops") == [("kiosk",)]

        # A SIGKILL in the middle of changes loses nothing: a new stream resumes.
        db.execute("INSERT INTO ledger SELECT i, 1 FROM generate_series(100000, 160000) i")
        time.sleep(0.3)
        stream.send_signal(signal.SIGKILL)
        stream.wait(10)
        db.execute("UPDATE ledger SET amount = 2 WHERE id > 150000")
        stream = start(root)
        wait_until_equal(root, db)

        stream.send_signal(signal.SIGTERM)
        out, err = stream.communicate(timeout=20)
        assert stream.returncode == 0, err
        (totals,) = json.loads(out)
        assert totals["table"] == "app.ledger" and totals["changes"] > 0
        assert totals["error"] is None
    finally:
        if stream.poll() is None:
            stream.kill()
            stream.wait()
        db.close()
    import sqlite3

    catalog = sqlite3.connect(root / ".gristmill" / "catalog.sqlite")
    runs = catalog.execute(
        "SELECT command, status FROM runs WHERE command LIKE 'stream%'"
    ).fetchall()
    assert ("stream", "ok") in runs


def metric_lines(port: int) -> list[str]:
    import urllib.request

    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            lines = answer.read().decode().splitlines()
        if (
            any(line.startswith("gristmill_stream_lag") for line in lines)
            or time.monotonic() > deadline
        ):
            return lines
        time.sleep(0.1)


def test_a_metrics_port_in_use_refuses_to_start(
    tmp_path: Path, logical_postgres: LogicalPostgres
) -> None:
    import socket

    url = logical_postgres.new_database()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CREATE TABLE ledger (id BIGINT PRIMARY KEY)")
    tables = {"ledger": {"mode": "cdc"}}
    root = write_project(tmp_path, {"app": {"type": "postgres", "url": url, "tables": tables}})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [GRISTMILL, "stream", "-p", str(root), "--metrics-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert "in use" in done.stdout + done.stderr
    assert not (root / ".gristmill" / "catalog.sqlite").exists() or not _stream_runs(root)


def _stream_runs(root: Path) -> list[tuple[str]]:
    import sqlite3

    with sqlite3.connect(root / ".gristmill" / "catalog.sqlite") as catalog:
        return catalog.execute("SELECT command FROM runs WHERE command LIKE 'stream%'").fetchall()

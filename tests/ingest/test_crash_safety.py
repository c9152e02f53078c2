"""Exactly once in effect: a sync killed with SIGKILL at any moment, then re-run,
leaves the warehouse equal to the source, with no row lost and none doubled."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MYSQL_URL, PG_URL, require_server
from tests.helpers import write_project

ROWS = 150_000
pytestmark = pytest.mark.slow


class SQLiteApp:
    def __init__(self, root: Path) -> None:
        self.path = root / "app.sqlite"
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute(
            "CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount DECIMAL(12,2),"
            " memo TEXT, seq INTEGER NOT NULL)"
        )

    def config(self) -> dict[str, Any]:
        return {"type": "sqlite", "path": str(self.path)}

    def add(self, start: int, count: int, seq: int) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT INTO ledger VALUES (?, ?, ?, ?)",
            ((i, f"{i % 1000}.25", f"row {i} ✓", seq) for i in range(start, start + count)),
        )
        self.db.execute("COMMIT")

    def touch(self, every: int, seq: int) -> None:
        self.db.execute(
            f"UPDATE ledger SET amount = amount + 1, seq = {seq} WHERE id % {every} = 0"
        )

    def rows(self) -> list[tuple[Any, ...]]:
        return self.db.execute(
            "SELECT id, CAST(amount AS TEXT), seq FROM ledger ORDER BY id"
        ).fetchall()

    def close(self) -> None:
        self.db.close()


class PostgresApp:
    def __init__(self, schema: str) -> None:
        import psycopg

        self.schema = schema
        self.db = psycopg.connect(PG_URL, autocommit=True)
        self.db.execute(f'CREATE SCHEMA "{schema}"')
        self.db.execute(f'SET search_path TO "{schema}"')
        self.db.execute(
            "CREATE TABLE ledger (id BIGINT PRIMARY KEY, amount NUMERIC(12,2), memo TEXT,"
            " seq BIGINT NOT NULL)"
        )

    def config(self) -> dict[str, Any]:
        return {"type": "postgres", "url": PG_URL, "schema": self.schema}

    def add(self, start: int, count: int, seq: int) -> None:
        self.db.execute(
            "INSERT INTO ledger SELECT g, (g %% 1000) + 0.25, 'row ' || g || ' ✓', %s"
            " FROM generate_series(%s::bigint, %s::bigint) g",
            [seq, start, start + count - 1],
        )

    def touch(self, every: int, seq: int) -> None:
        self.db.execute(
            f"UPDATE ledger SET amount = amount + 1, seq = {seq} WHERE id % {every} = 0"
        )

    def rows(self) -> list[tuple[Any, ...]]:
        cur = self.db.execute("SELECT id, amount::text, seq FROM ledger ORDER BY id")
        return [(int(a), b, int(c)) for a, b, c in cur.fetchall()]

    def close(self) -> None:
        self.db.execute(f'DROP SCHEMA "{self.schema}" CASCADE')
        self.db.close()


class MySQLApp:
    def __init__(self, database: str) -> None:
        import pymysql

        self.database = database
        self.db = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
        self.db.cursor().execute(f"CREATE DATABASE `{database}`")
        self.db.select_db(database)
        self.db.cursor().execute(
            "CREATE TABLE ledger (id BIGINT PRIMARY KEY, amount DECIMAL(12,2), memo TEXT,"
            " seq BIGINT NOT NULL)"
        )

    def config(self) -> dict[str, Any]:
        return {"type": "mysql", "url": MYSQL_URL, "schema": self.database}

    def add(self, start: int, count: int, seq: int) -> None:
        # MariaDB's sequence engine: seq_A_to_B is a table of the integers A..B.
        self.db.cursor().execute(
            f"INSERT INTO ledger SELECT seq, (seq % 1000) + 0.25, CONCAT('row ', seq, ' ✓'),"
            f" {seq} FROM seq_{start}_to_{start + count - 1}"
        )

    def touch(self, every: int, seq: int) -> None:
        self.db.cursor().execute(
            f"UPDATE ledger SET amount = amount + 1, seq = {seq} WHERE id % {every} = 0"
        )

    def rows(self) -> list[tuple[Any, ...]]:
        cursor = self.db.cursor()
        cursor.execute("SELECT id, CAST(amount AS CHAR), seq FROM ledger ORDER BY id")
        return [(int(a), b, int(c)) for a, b, c in cursor.fetchall()]

    def close(self) -> None:
        self.db.cursor().execute(f"DROP DATABASE `{self.database}`")
        self.db.close()


def _ingest(project: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gristmill", "ingest", "--json", "-p", str(project)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _warehouse_rows(project: Path) -> list[tuple[Any, ...]]:
    import duckdb

    with duckdb.connect(str(project / ".gristmill" / "warehouse.duckdb"), read_only=True) as db:
        rows = db.execute(
            "SELECT id, CAST(amount AS VARCHAR), seq FROM raw.ledger ORDER BY id"
        ).fetchall()
    return [(int(a), b, int(c)) for a, b, c in rows]


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def app(request: Any, tmp_path: Path, unique_name: str) -> Any:
    if request.param == "postgres":
        require_server("PostgreSQL", "127.0.0.1", 5432)
        application: Any = PostgresApp(unique_name)
    elif request.param == "mysql":
        require_server("MariaDB/MySQL", "127.0.0.1", 3306)
        application = MySQLApp(unique_name)
    else:
        application = SQLiteApp(tmp_path)
    yield application
    application.close()


@pytest.mark.parametrize("mode", ["full", "append", "merge"])
def test_sigkill_at_any_moment_then_rerun_equals_source(
    app: Any, mode: str, project_dir: Path
) -> None:
    table: dict[str, Any] = {"mode": mode, "primary_key": ["id"]}
    if mode != "full":
        table["cursor"] = "seq"
    write_project(project_dir, {"app": {**app.config(), "tables": {"ledger": table}}})
    rng = random.Random(f"{mode}-{type(app).__name__}")
    app.add(0, ROWS, seq=0)
    next_id, kills, seq, duration = ROWS, 0, 0, 1.0
    while kills < 4 and seq < 16:
        seq += 1
        process = _ingest(project_dir)
        started = time.monotonic()
        # Kill anywhere in the run: start-up, reading, staging, or the commit itself.
        time.sleep(rng.uniform(0.3, 1.0) * duration)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        else:
            duration = time.monotonic() - started
        process.wait()
        # The source moves on between attempts: new rows, some of them sharing the
        # cursor value of rows already synced, and (except in append mode) updates.
        app.add(next_id, 20_000, seq=seq)
        next_id += 20_000
        if mode != "append":
            app.touch(every=97 + seq, seq=seq)
    assert kills >= 4, "the sync finished too fast to be killed mid-way: raise ROWS"

    final = _ingest(project_dir)
    _, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr.decode()

    assert _warehouse_rows(project_dir) == app.rows()

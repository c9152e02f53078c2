"""Exactly once in effect across SIGKILL: `gristmill ingest` of a cdc table killed at
random moments while changes (inserts, updates, deletes, a transaction held open across
kills) keep coming; then a run to the end leaves the warehouse equal to the source."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import LogicalPostgres
from tests.helpers import run_ingest, warehouse_rows, write_project

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.slow

KILLS = 6


def test_killed_syncs_converge_to_the_source(
    tmp_path: Path, logical_postgres: LogicalPostgres
) -> None:
    url = logical_postgres.new_database()
    db = psycopg.connect(url, autocommit=True)
    db.execute("CREATE TABLE ledger (id BIGINT PRIMARY KEY, amount NUMERIC(12, 2), memo TEXT)")
    db.execute(
        "INSERT INTO ledger SELECT i, i % 1000 + 0.25, 'row ' || i FROM generate_series(1, 20000) i"
    )
    tables = {"ledger": {"mode": "cdc"}}
    root = write_project(
        tmp_path,
        {"app": {"type": "postgres", "url": url, "tables": tables}},
        name="k" + uuid.uuid4().hex[:8],
    )
    assert run_ingest(root).ok
    rng = random.Random(7)
    held = psycopg.connect(url)  # a transaction left open across kills
    held.execute("INSERT INTO ledger SELECT i, 1, 'held' FROM generate_series(900001, 900100) i")
    gristmill = str(Path(sys.executable).with_name("gristmill"))
    kills = 0
    next_id = 20001
    for round_ in range(KILLS):
        with db.transaction():
            db.execute(
                "INSERT INTO ledger SELECT i, i %% 7, 'new ' || i FROM generate_series(%s, %s) i",
                [next_id, next_id + 29_999],
            )
        next_id += 30_000
        db.execute("UPDATE ledger SET amount = amount + 1 WHERE id %% 13 = %s", [round_])
        db.execute("DELETE FROM ledger WHERE id %% 101 = %s", [round_])
        if round_ == KILLS // 2:
            held.commit()
        process = subprocess.Popen(
            [gristmill, "ingest", "-p", str(root), "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TZ": "America/Sao_Paulo"},
        )
        time.sleep(rng.uniform(0.3, 2.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    held.close()
    final = run_ingest(root)
    assert final.ok, final.tables[0].error
    assert kills >= KILLS // 2, "the syncs were not killed mid-run: the test proves nothing"
    expected = db.execute("SELECT id, amount, memo FROM ledger ORDER BY id").fetchall()
    found = [(r["id"], r["amount"], r["memo"]) for r in warehouse_rows(root, "ledger")]
    assert len(found) == len(expected)
    assert found == expected
    db.close()

"""`gristmill run` when syncs fail or a run is killed: only what depends on a failed table
is skipped, and what a killed run leaves behind is cleaned up by the next."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from gristmill.ingest.sources.sqlite import SQLiteSource
from gristmill.project import Project
from tests.conftest import MYSQL_URL, PG_URL, require_server
from tests.graph.conftest import GraphProject


def _add_source(p: GraphProject, name: str, source: dict[str, Any]) -> None:
    config = tomllib.loads((p.root / "gristmill.toml").read_text())
    config["sources"][name] = source
    (p.root / "gristmill.toml").write_text(tomli_w.dumps(config))


def _syncs(p: GraphProject, run_id: int | None) -> tuple[str, dict[str, str]]:
    with Project.load(p.root) as project:
        run = next(r for r in project.catalog.runs() if r["id"] == run_id)
        syncs = project.catalog.syncs(run_id or 0)
    return run["status"], {f"{s['source']}.{s['source_table']}": s["status"] for s in syncs}


@pytest.fixture
def silent_port() -> Iterator[socket.socket]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.setblocking(False)
        yield listener


def _connections(listener: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


@pytest.mark.parametrize("graph_project", ["duckdb"], indirect=True)
def test_a_source_that_cannot_connect_skips_only_what_reads_it(
    graph_project: GraphProject,
) -> None:
    require_server("MariaDB/MySQL", "127.0.0.1", 3306)
    p = graph_project
    _add_source(
        p,
        "shop",
        {
            "type": "mysql",
            "url": MYSQL_URL.replace("root@", "root:wrong-s3cret@"),
            "tables": {"carts": {}, "lines": {}},
        },
    )
    p.write("cart_count.sql", "SELECT count(*) AS n FROM carts")
    p.write("user_orders.sql", "SELECT user_id, count(*) AS n FROM orders GROUP BY user_id")

    summary = p.run()

    assert p.status(summary) == {
        f"{p.raw}.users": "ok",
        f"{p.raw}.orders": "ok",
        f"{p.raw}.carts": "failed",
        f"{p.raw}.lines": "failed",
        "cart_count": "skipped",
        "user_orders": "ok",
    }
    errors = {s.name: s.error or "" for s in summary.steps}
    assert "Access denied" in errors[f"{p.raw}.carts"]
    assert "wrong-s3cret" not in errors[f"{p.raw}.carts"]
    assert _syncs(p, summary.run_id) == (
        "failed",
        {"app.users": "ok", "app.orders": "ok", "shop.carts": "failed", "shop.lines": "failed"},
    )


@pytest.mark.parametrize("graph_project", ["duckdb"], indirect=True)
def test_a_host_that_never_answers_is_tried_once_per_run(
    graph_project: GraphProject, silent_port: socket.socket
) -> None:
    p = graph_project
    port = silent_port.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/test?connect_timeout=2"
    _add_source(p, "far", {"type": "postgres", "url": url, "tables": {"a": {}, "b": {}}})

    started = time.monotonic()
    summary = p.run()

    assert time.monotonic() - started < 15
    status = p.status(summary)
    assert status[f"{p.raw}.a"] == status[f"{p.raw}.b"] == "failed"
    assert status[f"{p.raw}.users"] == status[f"{p.raw}.orders"] == "ok"
    assert _connections(silent_port) == 1


@pytest.mark.parametrize("graph_project", ["duckdb"], indirect=True)
def test_an_unexpected_exception_in_a_sync_fails_that_step_alone(
    graph_project: GraphProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = SQLiteSource.stream

    def stream(self: SQLiteSource, sql: str, *args: Any) -> Any:
        if '"users"' in sql:
            raise ZeroDivisionError("the driver divided by zero")
        return original(self, sql, *args)

    monkeypatch.setattr(SQLiteSource, "stream", stream)
    p = graph_project
    p.write("names.sql", "SELECT name FROM users")
    p.write("amounts.sql", "SELECT amount FROM orders")

    summary = p.run()

    status = p.status(summary)
    assert status[f"{p.raw}.users"] == "failed" and status["names"] == "skipped"
    assert status[f"{p.raw}.orders"] == "ok" and status["amounts"] == "ok"
    error = next(s.error for s in summary.steps if s.name == f"{p.raw}.users")
    assert "ZeroDivisionError: the driver divided by zero" in (error or "")
    assert _syncs(p, summary.run_id)[1]["app.users"] == "failed"


SLOW_CHECK = (
    '-- checks = [{ sql = "SELECT * FROM {this} WHERE'
    " (SELECT count(*) FROM range(300000) AS a, range(300000) AS b WHERE a.range <> b.range)"
    ' < 0" }]\n'
)
SLOW_CHECK_PG = '-- checks = [{ sql = "SELECT * FROM {this}, pg_sleep(60)" }]\n'


def _scratch(p: GraphProject) -> list[str]:
    with Project.load(p.root) as project:
        relations = project.warehouse.relations()
    return sorted(n for (s, n) in relations if s in (p.raw, p.derived) and n.startswith("_gm_"))


def _build_committed(p: GraphProject, process: subprocess.Popen[bytes]) -> None:
    """Until the killed run's build table exists (committed, being checked)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if p.raw == "raw":
            # DuckDB admits one process: the build's commit shows in its write-ahead log.
            wal = Path(str(p.root.parent / "wh.duckdb") + ".wal")
            if wal.exists() and wal.stat().st_size > 0:
                time.sleep(1.0)
                return
        else:
            import psycopg

            with psycopg.connect(PG_URL) as db:
                found = db.execute(
                    "SELECT 1 FROM information_schema.tables WHERE table_schema = %s"
                    " AND table_name = '_gm_build_big'",
                    [p.derived],
                ).fetchall()
            if found:
                return
        time.sleep(0.1)
    pytest.fail("the build table never appeared")


@pytest.mark.slow
def test_a_run_killed_while_checking_a_build_leaves_nothing_after_the_next_run(
    graph_project: GraphProject,
) -> None:
    p = graph_project
    p.write("big.sql", "SELECT id, user_id FROM orders")
    p.write("small.sql", "SELECT id FROM users")
    assert p.run().ok
    before = p.rows("big")
    check = SLOW_CHECK if p.raw == "raw" else SLOW_CHECK_PG
    p.write("big.sql", check + "SELECT id, user_id, 2 AS n FROM orders")
    process = subprocess.Popen(
        [sys.executable, "-m", "gristmill", "run", "big", "-p", str(p.root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _build_committed(p, process)
        assert process.poll() is None, "the run ended before it could be killed"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert p.rows("big") == before
    assert _scratch(p) == ["_gm_build_big"]

    # The edit is undone: big is up to date, and the next run builds nothing of it.
    p.write("big.sql", "SELECT id, user_id FROM orders")
    again = p.run("small")

    assert again.ok
    assert p.status(again) == {"small": "up_to_date"}
    assert _scratch(p) == []
    assert p.rows("big") == before


@pytest.mark.parametrize("graph_project", ["postgres"], indirect=True)
def test_scratch_tables_of_another_process_at_work_are_left_alone(
    graph_project: GraphProject,
) -> None:
    p = graph_project
    p.write("small.sql", "SELECT id FROM users")
    assert p.run().ok
    with Project.load(p.root) as busy:
        busy.warehouse.execute(f'CREATE TABLE "{p.derived}"._gm_build_small (id int)')

        while_busy = p.run("small")

        assert while_busy.ok and _scratch(p) == ["_gm_build_small"]
    after = p.run("small")

    assert after.ok and _scratch(p) == []

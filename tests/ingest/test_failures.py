"""One table that fails, fails alone: the other tables and sources go on, the summary lists
every table with its outcome, and the catalog records the run and those syncs as failed.

Failures are real: wrong passwords and unknown roles on the real servers, a port that
refuses, a host that accepts the connection and never answers, files pyarrow cannot read.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gristmill import config as gristmill_config
from gristmill.ingest import IngestSummary
from gristmill.ingest.sources.sqlite import SQLiteSource
from gristmill.project import Project
from tests.conftest import MYSQL_URL, PG_URL, require_server
from tests.helpers import run_ingest, warehouse_rows, write_project
from tests.ingest.harness import MySQLHarness


def _sqlite_app(root: Path) -> dict[str, Any]:
    path = root / "app.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany("INSERT INTO users VALUES (?, ?)", [(1, "Ana"), (2, "Bo")])
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL)")
        db.executemany("INSERT INTO orders VALUES (?, ?)", [(1, 1), (2, 2), (3, 3)])
    return {"type": "sqlite", "path": str(path)}


def _outcomes(summary: IngestSummary) -> dict[str, str]:
    return {t.key: t.outcome for t in summary.tables}


def _errors(summary: IngestSummary) -> dict[str, str]:
    return {t.key: t.error or "" for t in summary.tables if t.error}


def _catalog(root: Path, run_id: int) -> tuple[str, dict[str, str]]:
    with Project.load(root) as project:
        run = next(r for r in project.catalog.runs() if r["id"] == run_id)
        syncs = project.catalog.syncs(run_id)
    return run["status"], {f"{s['source']}.{s['source_table']}": s["status"] for s in syncs}


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word, as a host behind a
    firewall that drops replies, or a server hung mid-handshake, would."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


BAD_SOURCES = {
    "mysql_wrong_password": (
        "mysql",
        MYSQL_URL.replace("root@", "root:wrong-s3cret@"),
        "Access denied",
    ),
    "postgres_unknown_role": (
        "postgres",
        PG_URL.replace("postgres@", "nobody:wrong-s3cret@"),
        "nobody",
    ),
    "postgres_refused": (
        "postgres",
        "postgresql://postgres:wrong-s3cret@127.0.0.1:1/test",
        "127.0.0.1:1/test",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_a_source_that_cannot_connect_fails_its_tables_and_the_others_go_on(
    project_dir: Path, case: str
) -> None:
    kind, url, reason = BAD_SOURCES[case]
    require_server(kind, "127.0.0.1", 3306 if kind == "mysql" else 5432)
    app = _sqlite_app(project_dir)
    write_project(
        project_dir,
        {
            "app": {**app, "tables": {"users": {}}},
            "shop": {"type": kind, "url": url, "tables": {"orders": {}, "items": {}}},
            "late": {**app, "tables": {"orders": {"mode": "append", "cursor": "seq"}}},
        },
    )

    summary = run_ingest(project_dir)

    assert _outcomes(summary) == {
        "app.users": "synced",
        "shop.orders": "failed",
        "shop.items": "failed",
        "late.orders": "synced",
    }
    errors = _errors(summary)
    for key in ("shop.orders", "shop.items"):
        assert "Source 'shop'" in errors[key] and reason in errors[key], errors[key]
        assert "wrong-s3cret" not in errors[key]
    assert not summary.ok
    assert [r["id"] for r in warehouse_rows(project_dir, "orders")] == [1, 2, 3]
    status, syncs = _catalog(project_dir, summary.run_id)
    assert status == "failed"
    assert syncs == {
        "app.users": "ok",
        "shop.orders": "failed",
        "shop.items": "failed",
        "late.orders": "ok",
    }


def test_a_source_whose_tables_cannot_be_listed_fails_as_one_entry(
    pg_url: str, project_dir: Path
) -> None:
    app = _sqlite_app(project_dir)
    bad = pg_url.replace("postgres@", "nobody:wrong-s3cret@")
    write_project(project_dir, {"shop": {"type": "postgres", "url": bad}, "app": app})

    summary = run_ingest(project_dir)

    assert _outcomes(summary) == {"shop.*": "failed", "app.orders": "synced", "app.users": "synced"}
    assert "cannot connect" in _errors(summary)["shop.*"]
    assert _catalog(project_dir, summary.run_id) == (
        "failed",
        {"shop.*": "failed", "app.orders": "ok", "app.users": "ok"},
    )


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_a_host_that_never_answers_fails_its_source_within_the_connect_timeout(
    project_dir: Path, silent_port: int, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The url sets no timeout: gristmill's own default bounds the wait.
    monkeypatch.setattr(gristmill_config, "CONNECT_TIMEOUT_SECONDS", 2)
    url = {
        "postgres": f"postgresql://postgres@127.0.0.1:{silent_port}/test",
        "mysql": f"mysql://root@127.0.0.1:{silent_port}/test",
    }[kind]
    app = _sqlite_app(project_dir)
    write_project(
        project_dir,
        {"silent": {"type": kind, "url": url, "tables": {"t": {}}}, "app": app},
    )

    started = time.monotonic()
    summary = run_ingest(project_dir)

    assert time.monotonic() - started < 15
    assert _outcomes(summary) == {
        "silent.t": "failed",
        "app.orders": "synced",
        "app.users": "synced",
    }
    assert f"127.0.0.1:{silent_port}" in _errors(summary)["silent.t"]


def test_unreadable_files_fail_their_table_naming_the_file(project_dir: Path) -> None:
    landing = project_dir / "landing"
    landing.mkdir()
    (landing / "empty.csv").write_bytes(b"")
    (landing / "broken.parquet").write_bytes(b"this is not parquet")
    (landing / "good.csv").write_text("id,name\n1,a\n")
    write_project(
        project_dir,
        {
            "files": {
                "type": "files",
                "tables": {
                    "empty": {"path": "landing/empty.csv"},
                    "broken": {"path": "landing/broken.parquet"},
                    "good": {"path": "landing/good.csv"},
                },
            }
        },
    )

    summary = run_ingest(project_dir)

    assert _outcomes(summary) == {
        "files.empty": "failed",
        "files.broken": "failed",
        "files.good": "synced",
    }
    errors = _errors(summary)
    assert "empty.csv" in errors["files.empty"] and "empty" in errors["files.empty"]
    assert "broken.parquet" in errors["files.broken"]
    assert warehouse_rows(project_dir, "good") == [{"id": 1, "name": "a"}]


def test_an_unmappable_type_fails_its_table_alone(
    mysql_url: str, unique_name: str, project_dir: Path
) -> None:
    # A TINYINT(1) holding 5: no boolean holds it, so the table stops, naming the override.
    harness = MySQLHarness(mysql_url, unique_name)
    try:
        harness.execute("CREATE TABLE shapes (id INT PRIMARY KEY, flag TINYINT(1))")
        harness.execute("INSERT INTO shapes VALUES (1, 5)")
        harness.create_table("plain", {"id": "bigint"})
        harness.insert("plain", [{"id": 1}])
        write_project(project_dir, {"app": harness.source_config()})

        summary = run_ingest(project_dir)
    finally:
        harness.close()

    assert _outcomes(summary) == {"app.plain": "synced", "app.shapes": "failed"}
    assert "flag" in _errors(summary)["app.shapes"]
    assert "column_types" in _errors(summary)["app.shapes"]
    assert warehouse_rows(project_dir, "plain") == [{"id": 1}]


def test_an_unexpected_exception_fails_its_table_with_type_and_message(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in a driver (or in gristmill) is reported as that table's failure."""
    original = SQLiteSource.stream

    def stream(self: SQLiteSource, sql: str, *args: Any) -> Any:
        if '"users"' in sql:
            raise ZeroDivisionError("the driver divided by zero")
        return original(self, sql, *args)

    monkeypatch.setattr(SQLiteSource, "stream", stream)
    write_project(project_dir, {"app": _sqlite_app(project_dir)})

    with caplog.at_level(logging.DEBUG, logger="gristmill"):
        summary = run_ingest(project_dir)

    assert _outcomes(summary) == {"app.orders": "synced", "app.users": "failed"}
    assert "ZeroDivisionError: the driver divided by zero" in _errors(summary)["app.users"]
    logged = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert logged and "app.users" in logged[0].getMessage()
    assert _catalog(project_dir, summary.run_id) == (
        "failed",
        {"app.orders": "ok", "app.users": "failed"},
    )


def test_keyboard_interrupt_stops_the_run_and_records_it(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stream(self: SQLiteSource, *args: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(SQLiteSource, "stream", stream)
    write_project(project_dir, {"app": _sqlite_app(project_dir)})

    with pytest.raises(KeyboardInterrupt):
        run_ingest(project_dir)

    with Project.load(project_dir) as project:
        (run,) = project.catalog.runs()
    assert run["status"] == "interrupted"


def test_outcomes_tell_synced_from_unchanged(project_dir: Path) -> None:
    app = _sqlite_app(project_dir)
    write_project(
        project_dir,
        {
            "app": {
                **app,
                "tables": {"users": {}, "orders": {"mode": "append", "cursor": "seq"}},
            }
        },
    )
    first = run_ingest(project_dir)
    with sqlite3.connect(app["path"]) as db:
        db.execute("INSERT INTO orders VALUES (4, 4)")

    second = run_ingest(project_dir)
    third = run_ingest(project_dir)

    assert _outcomes(first) == {"app.users": "synced", "app.orders": "synced"}
    assert _outcomes(second) == {"app.users": "unchanged", "app.orders": "synced"}
    assert _outcomes(third) == {"app.users": "unchanged", "app.orders": "unchanged"}
    assert third.to_dict()["counts"] == {"unchanged": 2}
    assert third.ok


def test_a_named_table_missing_from_the_config_stops_before_the_run(project_dir: Path) -> None:
    from gristmill.errors import NotFoundError

    write_project(project_dir, {"app": {**_sqlite_app(project_dir), "tables": {"users": {}}}})

    with pytest.raises(NotFoundError, match="Did you mean 'users'"):
        run_ingest(project_dir, "app.user")

    with Project.load(project_dir) as project:
        assert project.catalog.runs() == []


def test_a_table_read_ahead_that_fails_unexpectedly_fails_alone(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first table of a source is read while the warehouse opens: a failure there is
    that table's, not its source's."""
    app = _sqlite_app(project_dir)
    tables = {"orders": {"mode": "append", "cursor": "seq"}, "users": {}}
    write_project(project_dir, {"app": {**app, "tables": tables}})
    assert run_ingest(project_dir).ok
    original = SQLiteSource.stream

    def stream(self: SQLiteSource, sql: str, *args: Any) -> Any:
        if '"orders"' in sql:
            raise ZeroDivisionError("the driver divided by zero")
        return original(self, sql, *args)

    monkeypatch.setattr(SQLiteSource, "stream", stream)

    summary = run_ingest(project_dir)

    assert _outcomes(summary) == {"app.orders": "failed", "app.users": "unchanged"}
    assert "ZeroDivisionError" in _errors(summary)["app.orders"]

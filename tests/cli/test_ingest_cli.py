"""`gristmill ingest` when some tables fail: every table listed with its outcome, in the
terminal and in --json, and a non-zero exit code."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import _app, gristmill
from tests.conftest import MYSQL_URL, require_server
from tests.helpers import write_project
from tests.ingest.harness import MySQLHarness


@pytest.fixture
def failing_project(project_dir: Path) -> Path:
    """A good source, a MySQL source refusing the password, and files of which one is empty."""
    require_server("MariaDB/MySQL", "127.0.0.1", 3306)
    (project_dir / "in").mkdir()
    (project_dir / "in" / "empty.csv").write_bytes(b"")
    (project_dir / "in" / "events.csv").write_text("id,kind\n1,click\n2,view\n")
    return write_project(
        project_dir,
        {
            "app": {"type": "sqlite", "path": str(_app(project_dir))},
            "shop": {
                "type": "mysql",
                "url": MYSQL_URL.replace("root@", "root:wrong-s3cret@"),
                "tables": {"orders": {}, "items": {}},
            },
            "landing": {
                "type": "files",
                "tables": {"empty": {"path": "in/empty.csv"}, "events": {"path": "in/*s.csv"}},
            },
        },
    )


def _by_key(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{t['source']}.{t['table']}": t for t in summary["tables"]}


def test_json_lists_every_table_with_its_outcome_and_the_exit_code_says_failed(
    failing_project: Path,
) -> None:
    result = gristmill("ingest", "--json", "-p", str(failing_project))

    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    tables = _by_key(summary)
    assert {k: t["outcome"] for k, t in tables.items()} == {
        "app.users": "synced",
        "shop.orders": "failed",
        "shop.items": "failed",
        "landing.empty": "failed",
        "landing.events": "synced",
    }
    assert {k: t["status"] for k, t in tables.items()} == {
        k: "failed" if t["outcome"] == "failed" else "ok" for k, t in tables.items()
    }
    assert summary["ok"] is False and summary["rows"] == 12
    assert summary["counts"] == {"synced": 2, "failed": 3}
    assert "Access denied" in tables["shop.orders"]["error"]
    assert "empty.csv" in tables["landing.empty"]["error"]
    assert tables["app.users"]["error"] is None
    assert "wrong-s3cret" not in result.stdout + result.stderr

    again = json.loads(gristmill("ingest", "--json", "-p", str(failing_project)).stdout)
    assert _by_key(again)["app.users"]["outcome"] == "unchanged"


def test_the_terminal_summary_shows_each_outcome_and_each_reason(failing_project: Path) -> None:
    result = gristmill("ingest", "-p", str(failing_project))

    assert result.returncode == 1
    out = " ".join(result.stdout.split())
    assert "app.users" in out and "synced" in out and "failed" in out
    assert "shop.orders failed: Source 'shop': cannot connect" in out
    assert "landing.events" in out
    assert "3 of 5 tables failed" in out
    assert "Traceback" not in result.stderr


def test_a_fully_good_run_exits_zero_and_says_so(project_dir: Path) -> None:
    write_project(project_dir, {"app": {"type": "sqlite", "path": str(_app(project_dir))}})

    first = gristmill("ingest", "-p", str(project_dir))
    again = gristmill("ingest", "--json", "-p", str(project_dir))

    assert first.returncode == 0 and again.returncode == 0
    assert json.loads(again.stdout)["counts"] == {"unchanged": 1}


@pytest.fixture
def silent_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_an_unmappable_type_and_a_host_that_never_answers_fail_alone(
    project_dir: Path, mysql_url: str, unique_name: str, silent_port: int
) -> None:
    geo = MySQLHarness(mysql_url, unique_name)
    try:
        geo.execute("CREATE TABLE shapes (id INT PRIMARY KEY, flag TINYINT(1))")
        geo.execute("INSERT INTO shapes VALUES (1, 5)")
        write_project(
            project_dir,
            {
                "geo": geo.source_config(),
                "far": {
                    "type": "postgres",
                    "url": f"postgresql://postgres@127.0.0.1:{silent_port}/test?connect_timeout=2",
                    "tables": {"t": {}},
                },
                "app": {"type": "sqlite", "path": str(_app(project_dir))},
            },
        )
        started = time.monotonic()

        result = gristmill("ingest", "--json", "-p", str(project_dir))
    finally:
        geo.close()

    assert time.monotonic() - started < 30
    assert result.returncode == 1, result.stderr
    tables = _by_key(json.loads(result.stdout))
    assert {k: t["outcome"] for k, t in tables.items()} == {
        "geo.shapes": "failed",
        "far.t": "failed",
        "app.users": "synced",
    }
    assert f"127.0.0.1:{silent_port}" in tables["far.t"]["error"]
    assert "Traceback" not in result.stderr

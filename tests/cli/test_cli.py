"""The CLI as a user meets it: commands, exit codes, the error boundary, --json."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.helpers import write_project


def gristmill(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "gristmill", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def _app(root: Path) -> Path:
    path = root / "app.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    db.executemany("INSERT INTO users VALUES (?, ?)", [(i, f"u{i}") for i in range(10)])
    db.commit()
    return path


def test_init_scaffolds_a_project(tmp_path: Path) -> None:
    result = gristmill("init", str(tmp_path / "proj"))

    assert result.returncode == 0, result.stderr
    root = tmp_path / "proj"
    assert (root / "gristmill.toml").is_file()
    assert all((root / d).is_dir() for d in ("transforms", "features", "models"))
    assert ".gristmill/" in (root / ".gitignore").read_text()
    again = gristmill("init", str(root))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_ingest_json_summary(project_dir: Path) -> None:
    write_project(project_dir, {"app": {"type": "sqlite", "path": str(_app(project_dir))}})

    result = gristmill("ingest", "--json", "-p", str(project_dir))

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] and summary["rows"] == 10
    assert summary["tables"][0]["table"] == "users" and summary["tables"][0]["status"] == "ok"


def test_ingest_shows_progress_and_a_summary_table(project_dir: Path) -> None:
    write_project(project_dir, {"app": {"type": "sqlite", "path": str(_app(project_dir))}})

    result = gristmill("ingest", "-p", str(project_dir))

    assert result.returncode == 0, result.stderr
    assert "app.users" in result.stdout and "rows/s" in result.stdout


def test_errors_are_one_clean_line_and_debug_shows_the_traceback(project_dir: Path) -> None:
    write_project(project_dir, {"app": {"type": "sqlite", "path": str(_app(project_dir))}})

    result = gristmill("ingest", "ap", "-p", str(project_dir))
    debug = gristmill("--debug", "ingest", "ap", "-p", str(project_dir))

    assert result.returncode == 2
    assert "Did you mean 'app'?" in result.stderr and "Traceback" not in result.stderr
    assert "Traceback" in debug.stderr


def test_secrets_from_the_environment_are_never_printed(project_dir: Path) -> None:
    (project_dir / "gristmill.toml").write_text(
        '[sources.app]\ntype = "postgres"\nurl = "${APP_DB_URL}"\n'
    )
    secret_url = "postgresql://postgres:hunter2-secret@127.0.0.1:1/test"

    result = gristmill("ingest", "-p", str(project_dir), env={"APP_DB_URL": secret_url})
    unset = gristmill("ingest", "-p", str(project_dir), env={"APP_DB_URL": ""})

    assert result.returncode == 1
    assert "hunter2-secret" not in result.stdout + result.stderr
    assert "cannot connect" in result.stdout
    assert unset.returncode != 0


def test_missing_env_var_names_the_key(project_dir: Path) -> None:
    (project_dir / "gristmill.toml").write_text(
        '[sources.app]\ntype = "postgres"\nurl = "${GRISTMILL_SURELY_UNSET}"\n'
    )

    result = gristmill("ingest", "-p", str(project_dir))

    assert result.returncode == 2
    assert "sources.app.url" in result.stderr and "GRISTMILL_SURELY_UNSET" in result.stderr


def test_help_is_fast_and_imports_no_heavy_module() -> None:
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from gristmill.cli.main import app; "
            "print(any(m in sys.modules for m in ('duckdb', 'pyarrow', 'adbc_driver_postgresql')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "False"

"""`gristmill profile` from the command line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.cli.test_cli import gristmill
from tests.helpers import write_project


def test_profile_json_html_and_errors(tmp_path: Path) -> None:
    app = tmp_path / "app.sqlite"
    with sqlite3.connect(app) as db:
        db.execute(
            "CREATE TABLE loans (id INTEGER PRIMARY KEY, amount REAL, region TEXT, bad BOOLEAN)"
        )
        db.executemany(
            "INSERT INTO loans VALUES (?, ?, ?, ?)",
            [(i, i * 1.5, ["north", "south", "east"][i % 3], i % 4 == 0) for i in range(400)],
        )
    root = tmp_path / "proj"
    root.mkdir()
    write_project(root, {"app": {"type": "sqlite", "path": str(app)}})
    assert gristmill("ingest", "-p", str(root)).returncode == 0
    result = gristmill("profile", "loans", "--target", "bad", "--json", "-p", str(root))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["rows"] == 400 and data["target_rate"] == 0.25
    region = next(c for c in data["columns"] if c["name"] == "region")
    assert region["distinct"] == 3 and region["target"]["strength"] in ("useless", "weak")
    report = root / "reports" / "raw.loans.html"
    assert "<svg" in report.read_text()
    text = gristmill("profile", "raw.loans", "--html", str(tmp_path / "r.html"), "-p", str(root))
    assert text.returncode == 0 and "candidate keys: id" in text.stdout
    assert (tmp_path / "r.html").exists()
    missing = gristmill("profile", "loan", "-p", str(root))
    assert missing.returncode == 1 and "Did you mean" in missing.stderr

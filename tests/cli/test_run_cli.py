"""`gristmill run`, `graph`, `runs` and `check` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import _app, gristmill
from tests.helpers import write_project


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "transforms").mkdir(parents=True)
    app = _app(tmp_path)
    write_project(root, {"app": {"type": "sqlite", "path": str(app), "tables": {"users": {}}}})
    (root / "transforms" / "named.sql").write_text(
        '-- checks = [{ unique = "id" }, { row_count = { min = 1 } }]\n'
        "SELECT id, upper(name) AS name FROM users"
    )
    (root / "transforms" / "evens.sql").write_text(
        '-- materialized = "view"\n-- checks = [{ expression = "id % 2 = 0", severity = "warn" }]\n'
        "SELECT n.id, n.name AS label FROM named AS n WHERE n.id % 2 = 0"
    )
    return root


def test_run_then_nothing_to_do(tmp_path: Path) -> None:
    root = _project(tmp_path)
    first = gristmill("run", "--json", "-p", str(root))
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["counts"] == {"ok": 3}
    again = gristmill("run", "-p", str(root))
    assert again.returncode == 0 and "2 up to date" in again.stdout

    runs = json.loads(gristmill("runs", "--json", "-p", str(root)).stdout)
    assert [r["command"] for r in runs[:2]] == ["run", "run"]
    steps = json.loads(gristmill("runs", str(runs[1]["id"]), "--json", "-p", str(root)).stdout)
    assert {s["asset"]: s["status"] for s in steps} == {
        "raw.users": "ok",
        "named": "ok",
        "evens": "ok",
    }
    assert gristmill("runs", "-p", str(root)).returncode == 0


def test_graph_formats_and_column_lineage(tmp_path: Path) -> None:
    root = _project(tmp_path)
    tree = gristmill("graph", "-p", str(root))
    assert tree.returncode == 0 and "named" in tree.stdout and "app.users" in tree.stdout
    assert "digraph" in gristmill("graph", "-f", "dot", "-p", str(root)).stdout
    assert "flowchart" in gristmill("graph", "-f", "mermaid", "+evens", "-p", str(root)).stdout
    bad = gristmill("graph", "-f", "svg", "-p", str(root))
    assert bad.returncode == 2 and "Unknown graph format" in bad.stderr
    assert gristmill("run", "-p", str(root)).returncode == 0
    data = json.loads(gristmill("graph", "-f", "json", "--columns", "-p", str(root)).stdout)
    evens = next(a for a in data["assets"] if a["name"] == "evens")
    assert evens["columns"] == {"id": ["analytics.named.id"], "label": ["analytics.named.name"]}
    named = next(a for a in data["assets"] if a["name"] == "named")
    assert named["columns"]["name"] == ["raw.users.name"]


def test_check_reports_failures_with_a_sample(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert gristmill("run", "-p", str(root)).returncode == 0
    (root / "transforms" / "named.sql").write_text(
        '-- checks = [{ accepted_values = { column = "name", values = ["U1"] } }]\n'
        "SELECT id, upper(name) AS name FROM users"
    )
    result = gristmill("check", "named", "--json", "-p", str(root))
    assert result.returncode == 1
    [entry] = json.loads(result.stdout)["assets"]
    [check] = entry["results"]
    assert check["status"] == "fail" and check["failing"] == 9
    assert len(check["sample"]) == 5
    text = gristmill("check", "-p", str(root))
    assert text.returncode == 1 and "accepted_values(name)" in text.stdout
    assert "9 unexpected values" in text.stdout


def test_run_errors_are_clean(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "transforms" / "broken.sql").write_text("SELECT *\nFROM nammed")
    result = gristmill("run", "-p", str(root))
    assert result.returncode == 2
    assert "transforms/broken.sql:2: unknown table 'nammed'. Did you mean 'named'?" in result.stderr
    assert "Traceback" not in result.stderr

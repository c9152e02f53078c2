"""The quickstart project, run command by command as a user would, on each warehouse: the
same project on DuckDB and on PostgreSQL (README: "with the same project"). Ingest, run,
check, diff, profile against the label over time, build the training set, materialize and
verify the online features, train, and serve predictions over HTTP."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gristmill.project import Project
from gristmill.quickstart.project import APP_DB, create_quickstart
from gristmill.quickstart.serving import serving_demo
from tests.cli.test_cli import gristmill

ROWS = 5_000
TABLES = ("users", "accounts", "merchants", "transactions", "kyc_documents", "chargebacks")


def on_postgres(root: Path, url: str, prefix: str) -> None:
    """Point the project at a PostgreSQL warehouse, in schemas of its own."""
    config = (root / "gristmill.toml").read_text()
    warehouse = (
        f'[warehouse]\ntype = "postgres"\nurl = "{url}"\nraw_schema = "{prefix}_raw"\n\n'
        f'[transforms]\nschema = "{prefix}_analytics"\n\n'
    )
    config, replaced = re.subn(r"\[warehouse\]\n.*?\n\n", warehouse, config, flags=re.S)
    assert replaced == 1
    (root / "gristmill.toml").write_text(config)


@pytest.fixture(params=["duckdb", "postgres"])
def project(request: Any, tmp_path: Path, unique_name: str) -> Iterator[Path]:
    root = create_quickstart(tmp_path / "demo", rows=ROWS)
    if request.param == "duckdb":
        yield root
        return
    url = request.getfixturevalue("pg_url")
    on_postgres(root, url, unique_name)
    yield root
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        for schema in (f"{unique_name}_raw", f"{unique_name}_analytics"):
            db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        db.execute(f'DROP SCHEMA IF EXISTS "_gristmill_{unique_name}_raw" CASCADE')


def cli(root: Path, *args: str) -> Any:
    """A command's --json output; the command must succeed."""
    result = gristmill(*args, "--json", "-p", str(root))
    assert result.returncode == 0, f"gristmill {' '.join(args)}:\n{result.stderr}{result.stdout}"
    return json.loads(result.stdout)


def test_the_quickstart_project_runs_on_every_warehouse(project: Path) -> None:
    root = project
    with sqlite3.connect(root / APP_DB) as app:
        source_rows = {t: app.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    with Project.load(root) as opened:
        derived = opened.config.transforms.schema_name

    synced = cli(root, "ingest")
    assert synced["ok"] and {t["table"]: t["rows_read"] for t in synced["tables"]} == source_rows

    built = cli(root, "run")
    statuses = {s["name"]: s["status"] for s in built["steps"]}
    assert built["ok"] and statuses["fraud"] == "ok", built
    for name in ("clean_transactions", "user_daily", "fraud_labels", "merchant_risk"):
        assert statuses[name] == "ok", name
    again = {s["name"]: s["status"] for s in cli(root, "run")["steps"]}
    for name in ("clean_transactions", "user_daily", "merchant_risk", "fraud_training", "fraud"):
        assert again[name] == "up_to_date", name

    assert cli(root, "check")["ok"]

    clean = f"{derived}.clean_transactions"
    compared = cli(
        root, "diff", clean, f"{derived}.fraud_training", "--key", "transaction_id",
        "--columns", "amount,created_at,kind",
    )  # fmt: skip
    assert compared["equal"] and compared["rows_a"] == compared["rows_b"] > 0
    transactions = compared["rows_a"]

    profiled = cli(root, "profile", "fraud_training", "--target", "is_bad", "--time", "created_at")
    assert profiled["rows"] == transactions and 0 < profiled["target_rate"] < 0.1
    assert sum(n for _, n in profiled["time"]["periods"]) == transactions
    for column in profiled["columns"]:
        if column["target"] is not None:
            assert 0.5 <= column["target"]["auc"] <= 1, column["name"]
            assert sum(b["count"] for b in column["target"]["bins"]) == transactions
    assert profiled["columns"][[c["name"] for c in profiled["columns"]].index("amount")]["mean"]

    assert cli(root, "dataset", "build", "fraud_training", "--full-refresh")["ok"]
    assert {m["view"] for m in cli(root, "materialize")} == {"user_velocity", "merchant_velocity"}
    for view in ("user_velocity", "merchant_velocity"):
        verified = cli(root, "features", "verify", view)
        assert verified["ok"] and verified["mismatches"] == [] and verified["events"] > 0

    # The training set rebuilt to the same rows: the version it equals, nothing registered.
    unchanged = cli(root, "train", "fraud")
    assert (unchanged["version"], unchanged["unchanged"]) == (1, True)
    trained = cli(root, "train", "fraud", "--force")
    assert (trained["version"], trained["rows"]) == (2, transactions)
    assert 0.6 < trained["metrics"]["roc_auc"] <= 1

    with Project.load(root) as opened:
        table = opened.warehouse.qualified(derived, "clean_transactions")
        [(user, merchant, new_user)] = opened.warehouse.fetchall(
            f"SELECT user_id, merchant_id, (SELECT max(user_id) + 1 FROM {table}) FROM {table}"
            " WHERE merchant_id IS NOT NULL ORDER BY created_at DESC, transaction_id DESC LIMIT 1"
        )
    _, (normal, risky) = serving_demo(root, user, merchant, new_user)
    assert normal.response["decision"] == "approve"
    assert risky.response["decision"] == "decline"
    assert risky.response["score"] > normal.response["score"]

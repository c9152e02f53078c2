"""The quickstart: its application database is realistic, and the project ingests it."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from gristmill.quickstart.generate import generate_app_db


@pytest.fixture(scope="module")
def app_db(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    path = tmp_path_factory.mktemp("qs") / "app.sqlite"
    generate_app_db(path, transactions=20_000, seed=1)
    return sqlite3.connect(path)


def test_tables_counts_and_declared_types(app_db: sqlite3.Connection) -> None:
    counts = dict(
        (t, app_db.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
        for t in ("users", "accounts", "merchants", "transactions", "kyc_documents", "chargebacks")
    )
    assert counts["transactions"] == 20_000
    assert counts["users"] >= 200 and counts["merchants"] >= 50 and counts["chargebacks"] > 0
    declared = {r[1]: r[2] for r in app_db.execute("PRAGMA table_info(transactions)")}
    assert declared["amount"] == "DECIMAL(12,2)" and declared["created_at"] == "TIMESTAMP"
    assert declared["is_fraud"] == "BOOLEAN"


def test_referential_integrity(app_db: sqlite3.Connection) -> None:
    orphans = app_db.execute(
        "SELECT count(*) FROM transactions t LEFT JOIN accounts a ON a.id = t.account_id"
        " WHERE a.id IS NULL"
    ).fetchone()[0]
    orphan_chargebacks = app_db.execute(
        "SELECT count(*) FROM chargebacks c LEFT JOIN transactions t ON t.id = c.transaction_id"
        " WHERE t.id IS NULL"
    ).fetchone()[0]
    assert orphans == 0 and orphan_chargebacks == 0


def test_fraud_is_rare_and_its_signal_lives_in_behaviour(app_db: sqlite3.Connection) -> None:
    rate = app_db.execute("SELECT avg(is_fraud) FROM transactions").fetchone()[0]
    new_device_rate = app_db.execute(
        "SELECT avg(is_fraud) FROM transactions WHERE device_id LIKE 'dev-x%'"
    ).fetchone()[0]
    assert 0.005 <= rate <= 0.015
    assert new_device_rate > 5 * rate


def test_values_are_well_formed(app_db: sqlite3.Connection) -> None:
    amount, created = app_db.execute(
        "SELECT CAST(amount AS TEXT), created_at FROM transactions LIMIT 1"
    ).fetchone()
    datetime.fromisoformat(created)
    assert Decimal(amount).as_tuple().exponent >= -2
    names = [r[0] for r in app_db.execute("SELECT full_name FROM users")]
    assert any(not n.isascii() for n in names)


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    generate_app_db(
        tmp_path / "a.sqlite", transactions=2_000, seed=7, ends_at=datetime(2026, 10, 31)
    )
    generate_app_db(
        tmp_path / "b.sqlite", transactions=2_000, seed=7, ends_at=datetime(2026, 10, 31)
    )
    a = sqlite3.connect(tmp_path / "a.sqlite").execute("SELECT * FROM transactions").fetchall()
    b = sqlite3.connect(tmp_path / "b.sqlite").execute("SELECT * FROM transactions").fetchall()
    assert a == b


def db_rows(root: Path, sql: str) -> list[tuple[object, ...]]:
    import duckdb

    with duckdb.connect(str(root / ".gristmill" / "warehouse.duckdb"), read_only=True) as db:
        return db.execute(sql).fetchall()


def test_quickstart_command_creates_and_ingests_the_project(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "gristmill", "quickstart", str(root), "--rows", "20000"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    import duckdb

    with duckdb.connect(str(root / ".gristmill" / "warehouse.duckdb"), read_only=True) as db:
        loaded = db.execute("SELECT count(*) FROM raw.transactions").fetchone()[0]
        columns = [r[0] for r in db.execute("DESCRIBE raw.users").fetchall()]
        derived = {
            table: db.execute(f"SELECT count(*) FROM analytics.{table}").fetchone()[0]
            for table in ("clean_transactions", "user_daily", "merchant_risk", "fraud_labels")
        }
        fraud_rates = db.execute(
            "SELECT min(fraud_rate), max(fraud_rate) FROM analytics.merchant_risk"
        ).fetchone()
    assert loaded == 20_000
    assert "phone" not in columns  # PII excluded in the quickstart's gristmill.toml
    assert all(count > 0 for count in derived.values()), derived
    assert 0 <= fraud_rates[0] <= fraud_rates[1] <= 1
    assert "6 ok" in result.stdout and "checks pass" in result.stdout
    printed = " ".join(result.stdout.split())  # the console wraps long lines
    assert "fraud version 1 (champion)" in printed and "the rule catches" in printed
    # Served over HTTP: a normal payment approved, a burst of foreign transfers declined.
    assert "normal: payment of 250 → approve" in printed
    assert "after 8 foreign-IP transfers in 8 minutes: p2p_transfer of 150,000 → decline" in printed
    assert "tx_count_1h = 8" in printed
    # Monitored: the ordinary traffic raises no alert; the drifted burst flags what it drifted.
    assert "after 500 replayed transactions, 0 alerts" in printed
    alerts = [line for line in result.stdout.splitlines() if line.startswith("alert:")]
    assert len(alerts) == 3, alerts
    assert [a.split(" shifted")[0] for a in alerts] == [
        "alert: amount",
        "alert: kind",
        "alert: the scores",
    ]
    assert "shifted from the training set (PSI" not in printed  # said once, as an alert
    assert (root / "reports" / "monitor" / "fraud.html").exists()
    assert (root / "reports" / "models" / "fraud-v1.html").exists()
    assert "online features now of user_id=" in result.stdout
    with sqlite3.connect(root / ".gristmill" / "online.sqlite") as online:
        stored = dict(online.execute("SELECT view, count(DISTINCT key) FROM events GROUP BY view"))
    users = db_rows(root, "SELECT count(DISTINCT user_id) FROM analytics.clean_transactions")
    # Every user, and the new one whose burst of transfers the serving demo pushed.
    assert stored["user_velocity"] == users[0][0] + 1 and stored["merchant_velocity"] > 0
    training = db_rows(
        root, "SELECT count(*), sum(CAST(is_bad AS INTEGER)) FROM analytics.fraud_training"
    )
    assert training[0][0] == derived["clean_transactions"] and training[0][1] > 0
    report = (root / "reports" / "clean_transactions.html").read_text()
    assert (
        report.count("<svg") > 10
        and "is_fraud" in report
        and "http://" not in report
        and "https://" not in report
    )
    rerun = subprocess.run(
        [sys.executable, "-m", "gristmill", "run", "--json", "-p", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    statuses = {s["name"]: s["status"] for s in json.loads(rerun.stdout)["steps"]}
    assert statuses["clean_transactions"] == statuses["user_daily"] == "up_to_date"
    assert statuses["fraud"] == statuses["fraud_training"] == "up_to_date"  # no needless retrain
    again = subprocess.run(
        [sys.executable, "-m", "gristmill", "ingest", "--json", "-p", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr

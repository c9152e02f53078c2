"""mode = "cdc": a PostgreSQL table synced from its logical replication slot, against the
source itself as the reference, on a cluster with wal_level=logical started for the tests."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LogicalPostgres
from tests.helpers import run_ingest, warehouse_rows, write_project

psycopg = pytest.importorskip("psycopg")


class App:
    """The application's database: a table of payments with a TOASTed memo."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.db = psycopg.connect(url, autocommit=True)
        self.db.execute(
            "CREATE TABLE payments (id BIGINT PRIMARY KEY, amount NUMERIC(12,2), memo TEXT,"
            " paid_at TIMESTAMPTZ, flag BOOLEAN, tags INT[])"
        )

    def rows(self) -> list[dict[str, Any]]:
        cur = self.db.execute(
            "SELECT id, amount, memo, paid_at, flag, tags FROM payments ORDER BY id"
        )
        names = [d.name for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def close(self) -> None:
        self.db.close()


@pytest.fixture
def app(logical_postgres: LogicalPostgres) -> Any:
    app = App(logical_postgres.new_database())
    yield app
    app.close()


def project(root: Path, app: App) -> Path:
    table = {"mode": "cdc"}
    return write_project(
        root,
        {"app": {"type": "postgres", "url": app.url, "tables": {"payments": table}}},
        name="p" + uuid.uuid4().hex[:8],
    )


def loaded(tmp_path: Path, app: App) -> Path:
    """A project whose table (one row) is loaded and whose change log is started."""
    app.db.execute("INSERT INTO payments (id, amount) VALUES (1, 1.00)")
    root = project(tmp_path, app)
    assert run_ingest(root).ok
    return root


def same(root: Path, app: App) -> None:
    found = warehouse_rows(root, "payments")
    expected = app.rows()
    assert [r["id"] for r in found] == [r["id"] for r in expected]
    for got, want in zip(found, expected, strict=True):
        assert got["amount"] == want["amount"]
        assert got["memo"] == want["memo"]
        assert got["paid_at"] == want["paid_at"]
        assert got["flag"] == want["flag"]
        assert got["tags"] == want["tags"]


def test_inserts_updates_deletes_and_truncates_reach_the_warehouse(
    tmp_path: Path, app: App
) -> None:
    app.db.execute(
        "INSERT INTO payments SELECT i, i * 1.25, 'memo ' || i, '2025-01-01 10:00+02'::timestamptz"
        " + i * interval '1 minute', i % 2 = 0, ARRAY[i, i + 1] FROM generate_series(1, 100) i"
    )
    root = project(tmp_path, app)
    first = run_ingest(root)
    assert first.ok, first.tables[0].error
    assert first.tables[0].rows == 100
    same(root, app)

    long_memo = uuid.uuid4().hex * 400  # stored out of line (TOAST), compressed poorly
    with app.db.transaction():
        app.db.execute(
            "INSERT INTO payments VALUES (101, 9.99, %s, now(), true, NULL)", [long_memo]
        )
        app.db.execute("UPDATE payments SET amount = amount + 1 WHERE id <= 10")
        app.db.execute("DELETE FROM payments WHERE id BETWEEN 50 AND 59")
    app.db.execute("UPDATE payments SET id = 1000 WHERE id = 100")  # the key itself changes
    second = run_ingest(root)
    assert second.ok, second.tables[0].error
    assert second.tables[0].deleted_rows == 11  # ten deleted, one re-keyed
    same(root, app)

    # An update that leaves the TOASTed memo as it was: the log does not carry it.
    app.db.execute("UPDATE payments SET flag = false WHERE id = 101")
    assert run_ingest(root).ok
    same(root, app)
    assert warehouse_rows(root, "payments")[-2]["memo"] == long_memo

    app.db.execute("TRUNCATE payments")
    app.db.execute("INSERT INTO payments (id, amount) VALUES (7, 1.50)")
    assert run_ingest(root).ok
    same(root, app)


def test_nothing_new_changes_nothing(tmp_path: Path, app: App) -> None:
    root = loaded(tmp_path, app)
    again = run_ingest(root)
    assert again.ok
    assert again.tables[0].outcome == "unchanged"
    assert warehouse_rows(root, "payments")[0]["amount"] == Decimal("1.00")


def cli(root: Path, *args: str) -> Any:
    from typer.testing import CliRunner

    from gristmill.cli.main import app as cli_app

    return CliRunner().invoke(cli_app, [*args, "-p", str(root)])


def test_status_shows_the_slot_and_its_lag_and_drop_slot_removes_it(
    tmp_path: Path, app: App
) -> None:
    import json

    root = loaded(tmp_path, app)
    app.db.execute(
        "INSERT INTO payments (id, memo) SELECT i, repeat('x', 100) FROM generate_series(2, 500) i"
    )
    shown = cli(root, "ingest", "--status", "--json")
    assert shown.exit_code == 0, shown.output
    (report,) = json.loads(shown.output)
    assert report["table"] == "app.payments"
    assert report["slot"].startswith("gm_p") and report["slot"].endswith("_app_payments")
    assert report["exists"] and not report["active"]
    assert report["lag_bytes"] > 10_000
    assert 0 <= report["lag_seconds"] < 60
    slots = app.db.execute("SELECT slot_name FROM pg_replication_slots").fetchall()
    assert (report["slot"],) in slots

    assert run_ingest(root).ok
    (caught_up,) = json.loads(cli(root, "ingest", "--status", "--json").output)
    assert caught_up["lag_seconds"] == 0
    assert caught_up["applied"] == caught_up["confirmed"]

    dropped = cli(root, "ingest", "app.payments", "--drop-slot")
    assert dropped.exit_code == 0, dropped.output
    assert (report["slot"],) not in app.db.execute(
        "SELECT slot_name FROM pg_replication_slots"
    ).fetchall()
    assert not app.db.execute("SELECT 1 FROM pg_publication").fetchall()
    # The next sync starts the log again, from a full load.
    app.db.execute("DELETE FROM payments WHERE id > 250")
    again = run_ingest(root)
    assert again.ok, again.tables[0].error
    same(root, app)


def test_a_new_source_column_is_added_and_an_incompatible_change_stops_clearly(
    tmp_path: Path, app: App
) -> None:
    root = loaded(tmp_path, app)
    app.db.execute("ALTER TABLE payments ADD COLUMN channel TEXT")
    app.db.execute("INSERT INTO payments (id, amount, channel) VALUES (2, 2.00, 'ussd')")
    added = run_ingest(root)
    assert added.ok, added.tables[0].error
    assert "channel" in (added.tables[0].schema_change or "")
    assert [r["channel"] for r in warehouse_rows(root, "payments")] == [None, "ussd"]

    app.db.execute("ALTER TABLE payments ALTER COLUMN channel TYPE INT USING 7")
    app.db.execute("INSERT INTO payments (id, channel) VALUES (3, 8)")
    stopped = run_ingest(root)
    assert not stopped.ok
    assert "channel" in (stopped.tables[0].error or "")
    assert len(warehouse_rows(root, "payments")) == 2  # nothing half-applied


def test_values_keep_their_batch_types(tmp_path: Path, logical_postgres: LogicalPostgres) -> None:
    """Rows through the change log and through a full sync: equal, hostile values too."""
    url = logical_postgres.new_database()

    def synced(folder: str, mode: str) -> Path:
        (tmp_path / folder).mkdir()
        tables = {"t": {"mode": mode}}
        sources = {"app": {"type": "postgres", "url": url, "tables": tables}}
        return write_project(tmp_path / folder, sources, name="p" + uuid.uuid4().hex[:8])

    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "CREATE TABLE t (id INT PRIMARY KEY, d DATE, ts TIMESTAMP, f DOUBLE PRECISION,"
            " n NUMERIC(20, 6), j JSONB, b BYTEA, u UUID, big NUMERIC(38, 0), txt TEXT)"
        )
        cdc = synced("cdc", "cdc")
        first = run_ingest(cdc)
        assert first.ok, first.tables[0].error
        db.execute(
            "INSERT INTO t VALUES (1, '2024-02-29', '2024-01-01 12:34:56.789012', 'NaN', 1.5,"
            " '{\"a\": [1, 2]}', '\\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',"
            " 12345678901234567890123456789012345678, 'é ✓ \"quoted\" \\ back'),"
            " (2, '1999-12-31', NULL, '-Infinity', -0.000001, 'null', '', NULL, NULL, ''),"
            " (3, '2000-01-01', '1970-01-01', 1e308, 0, '[]', NULL, NULL, 0, NULL)"
        )
        changed = run_ingest(cdc)
        assert changed.ok, changed.tables[0].error
        full = synced("full", "full")
        assert run_ingest(full).ok
    # repr: NaN equals itself there.
    assert repr(warehouse_rows(cdc, "t")) == repr(warehouse_rows(full, "t"))


def test_a_server_without_logical_wal_is_refused_naming_the_setting(
    tmp_path: Path, pg_url: str, unique_name: str
) -> None:
    """The shared server runs with wal_level = replica: nothing is created there."""
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute(f'CREATE SCHEMA "{unique_name}"')
        db.execute(f'CREATE TABLE "{unique_name}".payments (id INT PRIMARY KEY)')
        try:
            source = {"type": "postgres", "url": pg_url, "schema": unique_name}
            tables = {"payments": {"mode": "cdc"}}
            root = write_project(tmp_path, {"app": {**source, "tables": tables}}, name=unique_name)
            result = run_ingest(root)
            assert not result.ok
            error = result.tables[0].error or ""
            assert "wal_level = logical" in error and "restart" in error
            slots = db.execute(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name LIKE %s", [f"gm_{unique_name}%"]
            )
            assert not slots.fetchall()
            assert not db.execute(
                "SELECT 1 FROM pg_publication WHERE pubname LIKE %s", [f"gm_{unique_name}%"]
            ).fetchall()
        finally:
            db.execute(f'DROP SCHEMA "{unique_name}" CASCADE')


def test_a_role_without_replication_is_refused_naming_the_grant(
    tmp_path: Path, logical_postgres: LogicalPostgres
) -> None:
    url = logical_postgres.new_database()
    role = "r_" + uuid.uuid4().hex[:8]
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"CREATE ROLE {role} LOGIN")
        db.execute("CREATE TABLE payments (id INT PRIMARY KEY)")
        db.execute(f"ALTER TABLE payments OWNER TO {role}")
    weak = url.replace("postgres@", f"{role}@")
    tables = {"payments": {"mode": "cdc"}}
    root = write_project(tmp_path, {"app": {"type": "postgres", "url": weak, "tables": tables}})
    result = run_ingest(root)
    assert not result.ok
    assert "ALTER ROLE <role> WITH REPLICATION" in (result.tables[0].error or "")


def test_a_slot_another_process_reads_is_refused_and_the_table_kept(
    tmp_path: Path, app: App
) -> None:
    import shutil
    import subprocess

    from tests.conftest import POSTGRES_BIN

    root = loaded(tmp_path, app)
    (slot,) = app.db.execute(
        "SELECT slot_name FROM pg_replication_slots WHERE database = current_database()"
    ).fetchone()
    receiver = shutil.which("pg_recvlogical") or str(POSTGRES_BIN / "pg_recvlogical")
    reader = subprocess.Popen(
        [
            receiver,
            "-d",
            app.url,
            "-S",
            slot,
            "--start",
            "-f",
            "/dev/null",
            "-o",
            "proto_version=1",
            "-o",
            f"publication_names={slot}",
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if app.db.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", [slot]
            ).fetchone()[0]:
                break
            import time

            time.sleep(0.05)
        app.db.execute("INSERT INTO payments (id, amount) VALUES (2, 2.00)")
        result = run_ingest(root)
        assert not result.ok
        assert "in use by another process" in (result.tables[0].error or "")
        assert len(warehouse_rows(root, "payments")) == 1
    finally:
        reader.terminate()
        reader.wait(10)


def test_a_batch_applied_but_never_confirmed_is_passed_over(
    tmp_path: Path, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between the warehouse's commit and the slot's confirmation: the next sync
    reads those transactions again, skips them, and goes on (micro-batches of 10 changes,
    so that they fill a whole read)."""
    from gristmill.ingest.cdc.apply import CdcSync
    from gristmill.ingest.cdc.postgres import PostgresChangeLog

    root = loaded(tmp_path, app)
    for i in range(2, 60):
        app.db.execute("INSERT INTO payments (id, amount) VALUES (%s, 1.00)", [i])
    monkeypatch.setattr(CdcSync, "max_changes", 10)
    confirm = PostgresChangeLog.confirm
    monkeypatch.setattr(PostgresChangeLog, "confirm", lambda self, position: None)
    first = run_ingest(root)
    assert first.ok, first.tables[0].error
    assert 0 < first.tables[0].rows < 58  # stopped: its own batches were never let go of
    monkeypatch.setattr(PostgresChangeLog, "confirm", confirm)
    for i in range(60, 70):
        app.db.execute("INSERT INTO payments (id, amount) VALUES (%s, 2.00)", [i])
    second = run_ingest(root)
    assert second.ok, second.tables[0].error
    same(root, app)


@pytest.mark.parametrize("changes", [9, 10, 11])
def test_micro_batches_at_their_bound(
    tmp_path: Path, app: App, monkeypatch: pytest.MonkeyPatch, changes: int
) -> None:
    """Micro-batches of about 10 changes, for 9, 10 and 11 changes (one transaction
    each, the last a delete): every one applied once, in order."""
    from gristmill.ingest.cdc.apply import CdcSync

    root = loaded(tmp_path, app)
    monkeypatch.setattr(CdcSync, "max_changes", 10)
    for i in range(2, changes + 1):
        app.db.execute("INSERT INTO payments (id, amount) VALUES (%s, %s)", [i, i])
    app.db.execute("DELETE FROM payments WHERE id = 1")
    result = run_ingest(root)
    assert result.ok, result.tables[0].error
    assert result.tables[0].rows == changes - 1 and result.tables[0].deleted_rows == 1
    same(root, app)

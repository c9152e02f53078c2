"""Online features follow a cdc table: each applied batch refreshes the entities it touches,
and the store then holds what a full materialize of the warehouse writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gristmill.features.api import OnlineReader, materialize, push
from gristmill.features.live import verify_live
from gristmill.project import Project
from tests.conftest import LogicalPostgres
from tests.helpers import run_ingest, write_project

psycopg = pytest.importorskip("psycopg")

FEATURES = """
from gristmill.features import FeatureView, aggregate, expression

spender = FeatureView(
    name="spender",
    entity=["user_id"],
    timestamp="happened",
    source="payments",
    ttl="2d",
    features=[
        aggregate("paid", "sum", "amount", windows=["1h", "1d"]),
        aggregate("payments", "count", windows=["1d"]),
        aggregate("shops", "count_distinct", "shop", windows=["1d"]),
        expression("last_amount", "amount"),
    ],
)
"""


def online_values(root: Path, users: list[int], at: datetime) -> list[dict[str, Any]]:
    with Project.load(root) as project:
        reader = OnlineReader(project)
        found = reader.read(["spender"], [{"user_id": u} for u in users], at)
        return [{**f.values, "age": f.age_seconds} for f in found]


def payments_source(cluster: LogicalPostgres) -> tuple[str, Any, datetime]:
    """A new database with 200 payments of five users over the last day: (its URL, an
    autocommit connection, now)."""
    url = cluster.new_database()
    db = psycopg.connect(url, autocommit=True)
    db.execute(
        "CREATE TABLE payments (id INT PRIMARY KEY, user_id INT, amount NUMERIC(10, 2),"
        " shop TEXT, happened TIMESTAMPTZ)"
    )
    now = datetime.now(UTC).replace(microsecond=0)
    db.execute(
        "INSERT INTO payments SELECT i, i %% 5, i * 1.5, 'shop' || (i %% 3),"
        " %s - i * interval '7 minutes' FROM generate_series(1, 200) i",
        [now],
    )
    return url, db, now


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_online_values_follow_inserts_updates_deletes_and_moves(
    tmp_path: Path, logical_postgres: LogicalPostgres, store: str
) -> None:
    url, db, now = payments_source(logical_postgres)
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "spend.py").write_text(FEATURES)
    online: dict[str, Any] = {}
    if store == "redis":
        from tests.conftest import require_server

        require_server("Redis", "127.0.0.1", 6379)
        online = {"type": "redis", "url": "redis://127.0.0.1:6379/0", "prefix": uuid.uuid4().hex}
    root = write_project(
        tmp_path,
        {"app": {"type": "postgres", "url": url, "tables": {"payments": {"mode": "cdc"}}}},
        name="o" + uuid.uuid4().hex[:8],
        **({"online": online} if online else {}),
    )
    assert run_ingest(root).ok
    with Project.load(root) as project:
        materialize(project, ["spender"], full=True)

    with db.transaction():
        db.execute("INSERT INTO payments VALUES (1001, 1, 99.99, 'new', %s)", [now])
        db.execute("UPDATE payments SET amount = 0.01 WHERE id = 5")  # user 0's latest
        db.execute("DELETE FROM payments WHERE user_id = 4")  # every event of user 4
        db.execute("UPDATE payments SET user_id = 7 WHERE id = 2")  # from user 2 to 7
        db.execute("UPDATE payments SET shop = 'moved' WHERE id = 3")
    result = run_ingest(root)
    assert result.ok, result.tables[0].error

    # `features verify --live`: the store as the stream left it equals the batch values now.
    with Project.load(root) as project:
        checked = verify_live(project, "spender", samples=50)
    assert checked.ok, checked.mismatches[:3]
    assert checked.samples >= 6 and checked.unknown_keys >= 1
    from typer.testing import CliRunner

    from gristmill.cli.main import app as cli

    said = CliRunner().invoke(cli, ["features", "verify", "spender", "--live", "-p", str(root)])
    assert said.exit_code == 0, said.output
    assert "0 mismatches" in said.output

    users = [0, 1, 2, 3, 4, 7, 8]
    at = now + timedelta(seconds=1)
    followed = online_values(root, users, at)
    assert followed[4]["payments_1d"] == 0 and followed[4]["last_amount"] is None
    assert followed[5]["payments_1d"] == 1  # user 7's moved payment
    with Project.load(root) as project:
        materialize(project, ["spender"], full=True)
    assert followed == online_values(root, users, at)

    # An event only the online store has (pushed, never in the source): found.
    with Project.load(root) as project:
        push(
            project,
            "spender",
            # A minute back: before the instant verify reads at, whenever in this second it does.
            [
                {
                    "id": 9999,
                    "user_id": 1,
                    "amount": 5,
                    "shop": "x",
                    "happened": now - timedelta(minutes=1),
                }
            ],
        )
        tampered = verify_live(project, "spender", samples=50)
    assert not tampered.ok
    assert {m.entity["user_id"] for m in tampered.mismatches} == {1}
    db.close()


TRANSFORMED_FEATURES = """
from gristmill.features import FeatureView, aggregate, expression

big_spender = FeatureView(
    name="big_spender",
    entity=["customer"],
    timestamp="happened",
    source="clean_payments",
    ttl="2d",
    features=[
        aggregate("paid", "sum", "amount", windows=["1d"]),
        aggregate("payments", "count", windows=["1d"]),
        expression("last_shop", "shop"),
    ],
)
shop_visits = FeatureView(
    name="shop_visits",
    entity=["customer"],
    timestamp="happened",
    source="analytics.visits",
    ttl="2d",
    features=[aggregate("visits", "count", windows=["1d"])],
)
"""
CLEAN_PAYMENTS = """-- materialized = "table"
SELECT id, user_id AS customer, CAST(amount AS DOUBLE) AS amount, upper(shop) AS shop, happened
FROM raw.payments
WHERE amount > 30
"""
VISITS = """-- materialized = "view"
SELECT p.id, p.user_id AS customer, p.happened FROM payments AS p WHERE p.shop <> 'shop0'
"""


def test_views_over_row_level_transforms_follow_changes(
    tmp_path: Path, logical_postgres: LogicalPostgres
) -> None:
    """A view reading a row-level transform of the cdc table (stored as a table, or a
    warehouse view) is refreshed per batch; the stored transform equals a full rebuild."""
    from gristmill.graph.run import run

    url, db, now = payments_source(logical_postgres)
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "spend.py").write_text(TRANSFORMED_FEATURES)
    (tmp_path / "transforms").mkdir()
    (tmp_path / "transforms" / "clean_payments.sql").write_text(CLEAN_PAYMENTS)
    (tmp_path / "transforms" / "visits.sql").write_text(VISITS)
    root = write_project(
        tmp_path,
        {"app": {"type": "postgres", "url": url, "tables": {"payments": {"mode": "cdc"}}}},
        name="t" + uuid.uuid4().hex[:8],
    )
    with Project.load(root) as project:
        assert run(project).ok
        materialize(project, ["big_spender", "shop_visits"], full=True)

    with db.transaction():
        db.execute("INSERT INTO payments VALUES (1001, 1, 99.99, 'new', %s)", [now])
        db.execute("UPDATE payments SET amount = 0.01 WHERE id = 25")  # leaves the filter
        db.execute("UPDATE payments SET amount = 50 WHERE id = 6")  # enters it
        db.execute("DELETE FROM payments WHERE user_id = 4")
        db.execute("UPDATE payments SET user_id = 7 WHERE id = 22")
        db.execute("UPDATE payments SET shop = 'shop0' WHERE id = 31")  # leaves the view
    result = run_ingest(root)
    assert result.ok, result.tables[0].error

    with Project.load(root) as project:
        warehouse = project.warehouse
        kept = warehouse.fetchall("SELECT * FROM analytics.clean_payments ORDER BY id")
        rebuilt = warehouse.fetchall(
            "SELECT id, user_id AS customer, CAST(amount AS DOUBLE) AS amount, upper(shop),"
            " happened FROM raw.payments WHERE amount > 30 ORDER BY id"
        )
        assert kept == rebuilt
        assert {r[0] for r in kept} >= {1001, 22} and not {25, 24} & {r[0] for r in kept}
        for view in ("big_spender", "shop_visits"):
            checked = verify_live(project, view, samples=50)
            assert checked.ok, (view, checked.mismatches[:3])
        reader = OnlineReader(project)
        at = now + timedelta(seconds=1)
        users = [{"customer": u} for u in (0, 1, 2, 3, 4, 7)]
        followed = [f.values for f in reader.read(["big_spender", "shop_visits"], users, at)]
        materialize(project, ["big_spender", "shop_visits"], full=True)
        assert followed == [
            f.values for f in reader.read(["big_spender", "shop_visits"], users, at)
        ]
        assert followed[4]["payments_1d"] == 0 and followed[4]["visits_1d"] == 0
    db.close()


def test_a_view_over_a_transform_that_cannot_run_per_batch_is_named(
    tmp_path: Path, logical_postgres: LogicalPostgres
) -> None:
    url = logical_postgres.new_database()
    db = psycopg.connect(url, autocommit=True)
    db.execute("CREATE TABLE payments (id INT PRIMARY KEY, user_id INT, happened TIMESTAMPTZ)")
    db.execute("INSERT INTO payments VALUES (1, 1, now() - interval '1 hour')")
    (tmp_path / "features").mkdir()
    (tmp_path / "transforms").mkdir()
    view = (
        "from gristmill.features import FeatureView, aggregate\n"
        "v = FeatureView(name='v', entity=['user_id'], timestamp='happened', source='daily',"
        " features=[aggregate('n', 'count', windows=['1d'])])\n"
    )
    (tmp_path / "features" / "v.py").write_text(view)
    (tmp_path / "transforms" / "daily.sql").write_text(
        "SELECT user_id, max(happened) AS happened FROM payments GROUP BY user_id\n"
    )
    root = write_project(
        tmp_path,
        {"app": {"type": "postgres", "url": url, "tables": {"payments": {"mode": "cdc"}}}},
        name="n" + uuid.uuid4().hex[:8],
    )
    failed = run_ingest(root)
    assert not failed.ok
    message = failed.tables[0].error or ""
    assert "transforms/daily.sql" in message and "GROUP BY" in message, message
    assert "row by row" in message

    # A stored transform that drops the table's key cannot follow updates and deletes.
    (tmp_path / "transforms" / "daily.sql").write_text(
        "SELECT user_id, happened FROM payments WHERE user_id > 0\n"
    )
    with Project.load(root) as project:
        from gristmill.graph.run import run

        assert run(project, ["+daily"]).ok
    failed = run_ingest(root)
    message = failed.tables[0].error or ""
    assert not failed.ok and "add id to its SELECT" in message, message
    db.close()

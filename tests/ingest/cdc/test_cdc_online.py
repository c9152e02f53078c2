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


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_online_values_follow_inserts_updates_deletes_and_moves(
    tmp_path: Path, logical_postgres: LogicalPostgres, store: str
) -> None:
    url = logical_postgres.new_database()
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

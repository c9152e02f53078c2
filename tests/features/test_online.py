"""The online path: stores (SQLite, Redis), materialize, reads as of now, pushes, verify."""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gristmill.features.api import get_online_features, materialize, push, verify
from gristmill.graph.run import run
from gristmill.project import Project
from tests.conftest import PG_URL, require_server
from tests.helpers import write_project

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
        aggregate("big", "count", windows=["1d"], filter="amount >= 50"),
        aggregate("avg", "mean", "amount", windows=["1d"]),
        expression("last_amount", "amount"),
    ],
)
"""
START = datetime(2025, 3, 1)


@pytest.fixture(params=["duckdb+sqlite", "duckdb+redis", "postgres+sqlite"])
def project(request: Any, tmp_path: Path, unique_name: str) -> Iterator[Path]:
    """The project over every online store, and over every warehouse."""
    warehouse_name, store = request.param.split("+")
    rng = random.Random(5)
    app = tmp_path / "app.sqlite"
    with sqlite3.connect(app) as db:
        db.execute(
            "CREATE TABLE payments (id INTEGER PRIMARY KEY, user_id INTEGER, amount INTEGER,"
            " shop TEXT, happened TIMESTAMP)"
        )
        db.executemany(
            "INSERT INTO payments VALUES (?, ?, ?, ?, ?)",
            [
                (
                    i,
                    rng.randint(1, 6),
                    rng.choice([None, rng.randint(1, 100)]),
                    rng.choice("abcd"),
                    (START + timedelta(minutes=rng.randint(0, 60 * 24 * 4))).isoformat(" "),
                )
                for i in range(600)
            ],
        )
    root = tmp_path / "proj"
    (root / "features").mkdir(parents=True)
    (root / "features" / "spend.py").write_text(FEATURES)
    online: dict[str, Any] = {"path": str(tmp_path / "online.sqlite")}
    if store == "redis":
        require_server("Redis", "127.0.0.1", 6379)
        online = {"type": "redis", "url": "redis://127.0.0.1:6379/0", "prefix": uuid.uuid4().hex}
    extra: dict[str, Any] = {"online": online}
    if warehouse_name == "postgres":
        require_server("PostgreSQL", "127.0.0.1", 5432)
        extra["warehouse"] = {"type": "postgres", "url": PG_URL, "raw_schema": unique_name}
        extra["transforms"] = {"schema": f"{unique_name}_an"}
    write_project(
        root, {"app": {"type": "sqlite", "path": str(app), "tables": {"payments": {}}}}, **extra
    )
    with Project.load(root) as p:
        assert run(p).ok
    yield root
    if warehouse_name == "postgres":
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as db:
            for schema in (unique_name, f"{unique_name}_an", f"_gristmill_{unique_name}"):
                db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    if store == "redis":
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        for key in client.scan_iter(f"{online['prefix']}:*"):
            client.delete(key)


def test_online_values_equal_the_training_set_values(project: Path) -> None:
    with Project.load(project) as p:
        first = materialize(p)
        assert first[0].full and first[0].entities == 6
        result = verify(p, "spender", samples=300, seed=3)
    assert result.samples == 300 and result.mismatches == []


def test_reads_age_ttl_and_pushes(project: Path) -> None:
    with Project.load(project) as p:
        materialize(p)
        # Pushes are dated by the serving clock: the online store keeps what is recent now.
        later = datetime.now(UTC).replace(tzinfo=None)
        [stale] = get_online_features(p, ["spender"], [{"user_id": 1}], at=later)
        assert stale.values["payments_1d"] == 0 and stale.values["last_amount"] is None
        assert stale.age_seconds["spender"] > 2 * 86400
        push(
            p,
            "spender",
            [
                {"user_id": 1, "amount": 70, "shop": "z", "happened": later - timedelta(minutes=5)},
                {"user_id": 1, "amount": 30, "shop": "y", "happened": later - timedelta(minutes=1)},
            ],
        )
        [fresh] = get_online_features(
            p,
            ["spender.paid_1h", "spender.big_1d", "spender.last_amount"],
            [{"user_id": 1}],
            at=later,
        )
        assert fresh.values == {"paid_1h": 100, "big_1d": 1, "last_amount": 30}
        assert fresh.age_seconds["spender"] == pytest.approx(60)
        [unknown] = get_online_features(p, ["spender.payments_1d"], [{"user_id": 999}], at=later)
        assert unknown.values == {"payments_1d": 0} and unknown.age_seconds["spender"] is None


def test_materialize_rewrites_only_entities_with_new_events(project: Path) -> None:
    with Project.load(project) as p:
        assert "spender" not in {s.name for s in run(p).steps}  # not online: no step
        materialize(p)
        assert materialize(p)[0].entities == 0
        assert {s.name: s.status for s in run(p).steps}["spender"] == "ok"  # its version
        assert {s.name: s.status for s in run(p).steps}["spender"] == "up_to_date"
    app = project.parent / "app.sqlite"
    with sqlite3.connect(app) as db:
        db.execute(
            "INSERT INTO payments VALUES (10000, 3, 5, 'a', ?)",
            [(START + timedelta(days=5)).isoformat(" ")],
        )
    with Project.load(project) as p:
        # The run syncs the new payment and refreshes the online store after it.
        steps = {s.name: s for s in run(p).steps}
        assert (steps["spender"].status, steps["spender"].rows) == ("ok", 1)
        assert steps["spender"].mode == "online, changed entities"
        assert materialize(p)[0].entities == 0
        [user] = get_online_features(
            p, ["spender.last_amount"], [{"user_id": 3}], at=START + timedelta(days=5, hours=1)
        )
        assert user.values["last_amount"] == 5


def test_materialize_and_get_from_the_command_line(project: Path) -> None:
    from tests.cli.test_cli import gristmill

    built = gristmill("materialize", "--json", "-p", str(project))
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)[0]["entities"] == 6
    got = gristmill(
        "features", "get", "spender.payments_1d", "user_id=2", "--json", "-p", str(project)
    )
    assert got.returncode == 0, got.stderr
    read = json.loads(got.stdout)
    assert read["entity"] == {"user_id": 2} and set(read["values"]) == {"payments_1d"}
    assert read["age_seconds"]["spender"] > 0
    wrong = gristmill("features", "get", "spender", "user_id", "-p", str(project))
    assert wrong.returncode != 0 and "name=value" in wrong.stderr + wrong.stdout

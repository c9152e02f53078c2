"""[streams] on a real Redis: events into the warehouse table and the online store, each
applied once however often delivered, malformed messages to dead letters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from gristmill.features.api import OnlineReader, materialize
from gristmill.ingest.cdc.follow import Follower
from gristmill.project import Project
from tests.conftest import require_server
from tests.helpers import write_project

redis = pytest.importorskip("redis")

FEATURES = """
from gristmill.features import FeatureView, aggregate, expression

spender = FeatureView(
    name="spender",
    entity=["user_id"],
    timestamp="happened",
    source="payment_events",
    features=[
        aggregate("paid", "sum", "amount", windows=["1h", "1d"]),
        aggregate("payments", "count", windows=["1d"]),
        expression("last_amount", "amount"),
    ],
)
"""
COLUMNS = {
    "event_id": "text",
    "user_id": "bigint",
    "amount": "decimal(10,2)",
    "happened": "timestamp",
}


@pytest.fixture
def client() -> Iterator[Any]:
    require_server("Redis", "127.0.0.1", 6379)
    yield redis.Redis.from_url("redis://127.0.0.1:6379/0")


@pytest.fixture
def stream_key(client: Any) -> Iterator[str]:
    key = "gm-test-" + uuid.uuid4().hex[:10]
    yield key
    client.delete(key)


def project(root: Path, stream_key: str, **extra: Any) -> Path:
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "features" / "spend.py").write_text(FEATURES)
    stream = {
        "type": "redis",
        "url": "redis://127.0.0.1:6379/0",
        "stream": stream_key,
        "table": "payment_events",
        "feature_views": ["spender"],
        "event_id": "event_id",
        "columns": COLUMNS,
        **extra,
    }
    stream = {k: v for k, v in stream.items() if v is not None}
    return write_project(root, {}, streams={"payments": stream}, name="r" + uuid.uuid4().hex[:6])


def event(i: int, now: datetime) -> dict[str, str]:
    happened = now - timedelta(minutes=i % 300)
    return {
        "event_id": f"e{i}",
        "user_id": str(i % 17),
        "amount": f"{i % 50}.{i % 100:02d}",
        "happened": happened.replace(tzinfo=None).isoformat(),
    }


def follow_until(root: Path, done: Any, seconds: float = 30) -> list[Any]:
    follower = Follower(root, [], 0.05)
    thread = threading.Thread(target=follower.run)
    thread.start()
    try:
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        follower.stop.set()
        thread.join(30)
    assert done(), "the stream did not apply every message in time"
    return [s.to_dict() for s in follower.streams]


def warehouse(root: Path, sql: str) -> list[tuple[Any, ...]]:
    """A query of the warehouse (in this process, beside the stream's own openings)."""
    from gristmill.errors import GristmillError

    try:
        with Project.load(root) as p:
            return p.warehouse.fetchall(sql)
    except (GristmillError, duckdb.Error):
        return []


def online(root: Path, users: list[int], at: datetime) -> list[dict[str, Any]]:
    with Project.load(root) as p:
        return [
            f.values for f in OnlineReader(p).read(["spender"], [{"user_id": u} for u in users], at)
        ]


def test_events_reach_the_table_and_the_store_once_and_bad_ones_are_dead_letters(
    tmp_path: Path, client: Any, stream_key: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    root = project(tmp_path, stream_key)
    for i in range(300):
        client.xadd(stream_key, event(i, now))
    for i in (5, 6, 7):  # delivered twice by the producer
        client.xadd(stream_key, event(i, now))
    bad = [
        {**event(1000, now), "amount": "abc"},
        {k: v for k, v in event(1001, now).items() if k != "user_id"},
        {**event(1002, now), "colour": "red"},
        {
            **event(1003, now),
            "happened": (now + timedelta(days=3)).replace(tzinfo=None).isoformat(),
        },
        {**event(1004, now), "amount": "123456789.00"},
        {**event(1005, now), "user_id": b"\xff\xfe"},
    ]
    for fields in bad:
        client.xadd(stream_key, fields)
    # A consumer that read a batch and died before acknowledging it: delivered again.
    from gristmill.config import StreamConfig
    from gristmill.streams.redis import RedisStreamBroker

    with Project.load(root) as p:
        config: StreamConfig = p.config.streams["payments"]
        lost = RedisStreamBroker("payments", config.model_copy(update={"batch": 50}), p.config.name)
        assert len(lost.read(0)) == 50
        lost.close()

    def applied() -> bool:
        return warehouse(root, "SELECT count(*) FROM raw.payment_events") == [(300,)] and len(
            warehouse(root, "SELECT * FROM _gristmill.dead_letters")
        ) == len(bad)

    (totals,) = follow_until(root, applied)
    reasons = dict(
        warehouse(root, "SELECT message_id, reason FROM _gristmill.dead_letters ORDER BY 1")
    )
    assert totals["messages"] == 309 and totals["applied"] == 300 and totals["dead_letters"] == 6, (
        reasons
    )
    reasons = dict(
        warehouse(root, "SELECT message_id, reason FROM _gristmill.dead_letters ORDER BY 1")
    )
    said = " | ".join(reasons.values())
    for fragment in (
        "amount",
        "user_id: missing",
        "colour",
        "clock skew",
        "integer digits",
        "UTF-8",
    ):
        assert fragment in said
    ids = [r[0] for r in warehouse(root, "SELECT event_id FROM raw.payment_events")]
    assert len(ids) == len(set(ids)) == 300

    # The online values are those a full materialize of the table writes.
    users = [*range(17), 99]
    at = now + timedelta(seconds=1)
    streamed = online(root, users, at)
    with Project.load(root) as p:
        materialize(p, ["spender"], full=True)
    assert streamed == online(root, users, at)
    assert client.xpending(stream_key, "gristmill")["pending"] == 0


def test_json_events_without_a_table_feed_the_online_store(
    tmp_path: Path, client: Any, stream_key: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    root = project(tmp_path, stream_key, table=None, format="json")
    for i in range(40):
        payload = {**event(i, now), "user_id": i % 3, "amount": i + 0.5}
        client.xadd(stream_key, {"data": json.dumps(payload)})
    client.xadd(stream_key, {"data": "{not json"})
    client.xadd(stream_key, {"data": json.dumps({**event(1, now), "user_id": 1})})  # again

    def applied() -> bool:
        try:
            group = client.xinfo_groups(stream_key)[0]
        except (redis.ResponseError, IndexError):
            return False  # the group is not made yet
        return bool(group["pending"] == 0 and group["lag"] == 0)

    (totals,) = follow_until(root, applied)
    assert totals["applied"] == 40 and totals["dead_letters"] == 1
    values = online(root, [0, 1, 2], now + timedelta(seconds=1))
    assert [v["payments_1d"] for v in values] == [14, 13, 13]


@pytest.mark.slow
def test_killed_streams_apply_every_event_once(
    tmp_path: Path, client: Any, stream_key: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    root = project(tmp_path, stream_key, batch=500)
    gristmill = str(Path(sys.executable).with_name("gristmill"))
    total = 0
    for round_ in range(6):
        pipe = client.pipeline(transaction=False)
        for i in range(total, total + 4000):
            pipe.xadd(stream_key, event(i, now))
        pipe.execute()
        total += 4000
        process = subprocess.Popen(
            [gristmill, "stream", "-p", str(root), "--poll-seconds", "0.05", "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TZ": "Pacific/Auckland"},
        )
        time.sleep(0.8 + 0.3 * round_)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def applied() -> bool:
        return warehouse(
            root, "SELECT count(*), count(DISTINCT event_id) FROM raw.payment_events"
        ) == [(total, total)]

    follow_until(root, applied, seconds=60)
    users = list(range(17))
    at = now + timedelta(seconds=1)
    streamed = online(root, users, at)
    with Project.load(root) as p:
        materialize(p, ["spender"], full=True)
    assert streamed == online(root, users, at)

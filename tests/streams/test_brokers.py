"""[streams] over every broker (Redis Streams, NATS JetStream), one suite: events into the
warehouse table and the online store, each applied once however often delivered, malformed
messages to dead letters."""

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
from gristmill.project import Project
from gristmill.streams.follow import Follower
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


class Producer:
    """A broker's stream, and how an application adds events to it."""

    kind: str
    url: str
    stream: str

    def add(self, fields: dict[str, Any]) -> None:
        """One event, its fields as message fields (NATS: headers)."""
        raise NotImplementedError

    def add_json(self, payload: str) -> None:
        """One event as JSON (Redis: in the `data` field; NATS: the payload)."""
        raise NotImplementedError

    def add_many(self, events: list[dict[str, str]]) -> None:
        for fields in events:
            self.add(fields)

    def settled(self) -> bool:
        """Whether every message was delivered to gristmill's consumer and acknowledged."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class RedisProducer(Producer):
    kind = "redis"
    url = "redis://127.0.0.1:6379/0"

    def __init__(self) -> None:
        require_server("Redis", "127.0.0.1", 6379)
        self.client = redis.Redis.from_url(self.url)
        self.stream = "gm-test-" + uuid.uuid4().hex[:10]

    def add(self, fields: dict[str, Any]) -> None:
        self.client.xadd(self.stream, fields)

    def add_json(self, payload: str) -> None:
        self.client.xadd(self.stream, {"data": payload})

    def add_many(self, events: list[dict[str, str]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for fields in events:
            pipe.xadd(self.stream, fields)
        pipe.execute()

    def settled(self) -> bool:
        try:
            group = self.client.xinfo_groups(self.stream)[0]
        except (redis.ResponseError, IndexError):
            return False  # the group is not made yet
        return bool(group["pending"] == 0 and group["lag"] == 0)

    def close(self) -> None:
        self.client.delete(self.stream)
        self.client.close()


class NatsProducer(Producer):
    kind = "nats"
    url = "nats://127.0.0.1:4222"

    def __init__(self) -> None:
        import asyncio

        pytest.importorskip("nats", reason="the nats extra is not installed")
        require_server("NATS", "127.0.0.1", 4222)
        self.name = "GM" + uuid.uuid4().hex[:10].upper()
        self.stream = f"gmtest.{self.name.lower()}"
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._open())

    async def _open(self) -> None:
        import nats

        self.nc = await nats.connect(self.url)
        self.js = self.nc.jetstream()
        await self.js.add_stream(name=self.name, subjects=[self.stream])

    def add(self, fields: dict[str, Any]) -> None:
        headers = {k: v if isinstance(v, str) else v.decode("latin-1") for k, v in fields.items()}
        self.loop.run_until_complete(self.js.publish(self.stream, b"", headers=headers))

    def add_json(self, payload: str) -> None:
        self.loop.run_until_complete(self.js.publish(self.stream, payload.encode()))

    def add_many(self, events: list[dict[str, str]]) -> None:
        async def publish() -> None:
            for fields in events:
                await self.js.publish(self.stream, b"", headers=fields)

        self.loop.run_until_complete(publish())

    def settled(self) -> bool:
        async def info() -> Any:
            return await self.js.consumer_info(self.name, "gristmill")

        try:
            found = self.loop.run_until_complete(info())
        except Exception:
            return False
        return bool(found.num_pending == 0 and found.num_ack_pending == 0)

    def close(self) -> None:
        self.loop.run_until_complete(self.js.delete_stream(self.name))
        self.loop.run_until_complete(self.nc.close())
        self.loop.close()


@pytest.fixture(params=["redis", "nats"])
def producer(request: Any) -> Iterator[Producer]:
    made = RedisProducer() if request.param == "redis" else NatsProducer()
    yield made
    made.close()


def project(root: Path, producer: Producer, **extra: Any) -> Path:
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "features" / "spend.py").write_text(FEATURES)
    stream = {
        "type": producer.kind,
        "url": producer.url,
        "stream": producer.stream,
        "ack_wait": "2s",
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
    tmp_path: Path, producer: Producer
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    root = project(tmp_path, producer)
    producer.add_many([event(i, now) for i in range(300)])
    producer.add_many([event(i, now) for i in (5, 6, 7)])  # sent twice by the application
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
        producer.add(fields)
    # A consumer that read a batch and died before acknowledging it: delivered again.
    from gristmill import backends

    with Project.load(root) as p:
        config = p.config.streams["payments"].model_copy(update={"batch": 50})
        lost = backends.resolve("broker", producer.kind)("payments", config, p.config.name)
        assert len(lost.read(1)) == 50
        lost.close()

    def applied() -> bool:
        return (
            warehouse(root, "SELECT count(*) FROM raw.payment_events") == [(300,)]
            and len(warehouse(root, "SELECT * FROM _gristmill.dead_letters")) == len(bad)
            and producer.settled()
        )

    (totals,) = follow_until(root, applied)
    reasons = dict(warehouse(root, "SELECT message_id, reason FROM _gristmill.dead_letters"))
    assert totals["applied"] == 300 and totals["dead_letters"] == 6, reasons
    said = " | ".join(reasons.values())
    # NATS headers are text: bytes that are not UTF-8 cannot reach it as such.
    undecodable = "UTF-8" if producer.kind == "redis" else "user_id: expected an integer"
    for fragment in (
        "amount",
        "user_id: missing",
        "colour",
        "clock skew",
        "integer digits",
        undecodable,
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


def test_a_batch_delivered_again_after_its_commit_is_applied_once(
    tmp_path: Path, producer: Producer
) -> None:
    """Killed between the commit and the acknowledgement: the batch comes again, and
    neither its events nor its dead letters are recorded twice."""
    from gristmill.streams.consume import StreamConsumer

    now = datetime.now(UTC).replace(microsecond=0)
    root = project(tmp_path, producer)
    producer.add_many([event(i, now) for i in range(5)])
    producer.add({**event(99, now), "amount": "abc"})
    with Project.load(root) as p:
        config, name = p.config.streams["payments"], p.config.name
    consumer = StreamConsumer(root, "payments", config, consumer=name)

    def killed(ids: list[str]) -> None:
        raise RuntimeError("killed before the acknowledgement")

    consumer.broker.ack = killed  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        while True:
            consumer.poll(lambda: Project.load(root), block_seconds=1)
    consumer.close()
    assert warehouse(root, "SELECT count(*) FROM _gristmill.dead_letters") == [(1,)]

    follow_until(root, producer.settled)
    assert warehouse(root, "SELECT count(*) FROM raw.payment_events") == [(5,)]
    assert warehouse(root, "SELECT count(*) FROM _gristmill.dead_letters") == [(1,)]


def test_json_events_without_a_table_feed_the_online_store(
    tmp_path: Path, producer: Producer
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    root = project(tmp_path, producer, table=None, format="json")
    for i in range(40):
        producer.add_json(json.dumps({**event(i, now), "user_id": i % 3, "amount": i + 0.5}))
    producer.add_json("{not json")
    producer.add_json(json.dumps({**event(1, now), "user_id": 1, "amount": 1.5}))  # again

    (totals,) = follow_until(root, producer.settled)
    assert totals["applied"] == 40 and totals["dead_letters"] == 1
    values = online(root, [0, 1, 2], now + timedelta(seconds=1))
    assert [v["payments_1d"] for v in values] == [14, 13, 13]


TRANSFORMED_FEATURES = """
from gristmill.features import FeatureView, aggregate

cents = FeatureView(
    name="cents",
    entity=["customer"],
    timestamp="happened",
    source="clean_payments",
    features=[
        aggregate("cents", "sum", "cents", windows=["1d"]),
        aggregate("codes", "sum", "code_number", windows=["1d"]),
        aggregate("payments", "count", windows=["1d"]),
    ],
)
"""
CLEAN_PAYMENTS = """-- materialized = "table"
SELECT event_id, user_id AS customer, CAST(amount * 100 AS BIGINT) AS cents,
       CAST(code AS INTEGER) AS code_number, happened
FROM raw.payment_events
WHERE amount > 10
"""


def test_views_over_a_row_level_transform_of_the_stream(tmp_path: Path, producer: Producer) -> None:
    """The transform's SELECT runs on each batch: its stored table equals a full rebuild,
    the view's online values equal a full materialize, and an event it fails on is a dead
    letter naming it."""
    from gristmill.features.live import verify_live
    from gristmill.graph.run import run

    now = datetime.now(UTC).replace(microsecond=0)
    root = project(tmp_path, producer, columns={**COLUMNS, "code": "text"}, feature_views=["cents"])
    (root / "features" / "spend.py").write_text(TRANSFORMED_FEATURES)
    (root / "transforms").mkdir()
    (root / "transforms" / "clean_payments.sql").write_text(CLEAN_PAYMENTS)

    def coded(i: int) -> dict[str, str]:
        return {**event(i, now), "code": "x7" if i % 40 == 3 else str(i % 9)}

    def settled(events: int, dead: int) -> Any:
        return lambda: (
            warehouse(root, "SELECT count(*) FROM raw.payment_events") == [(events,)]
            and len(warehouse(root, "SELECT * FROM _gristmill.dead_letters")) == dead
            and producer.settled()
        )

    producer.add_many([coded(i) for i in range(100)])
    # 3, 43, 83 have a code no integer cast takes; 3's amount leaves it out of the WHERE.
    follow_until(root, settled(98, 2))
    with Project.load(root) as p:
        assert run(p, ["clean_payments"]).ok  # built once the stream made its input
        materialize(p, ["cents"], full=True)
    producer.add_many([coded(i) for i in range(100, 400)])
    producer.add_many([coded(i) for i in (101, 150, 399)])  # delivered twice
    follow_until(root, settled(392, 8))

    kept = warehouse(root, "SELECT * FROM analytics.clean_payments ORDER BY event_id")
    rebuilt = warehouse(
        root,
        "SELECT event_id, user_id AS customer, CAST(amount * 100 AS BIGINT),"
        " CAST(code AS INTEGER), happened FROM raw.payment_events WHERE amount > 10"
        " ORDER BY event_id",
    )
    assert kept == rebuilt and len(kept) > 100
    reasons = [r[0] for r in warehouse(root, "SELECT reason FROM _gristmill.dead_letters")]
    assert all("transform 'clean_payments' fails on it" in r and "x7" in r for r in reasons)

    with Project.load(root) as p:
        checked = verify_live(p, "cents", samples=40)
        assert checked.ok, checked.mismatches[:3]
        users = [{"customer": u} for u in range(17)]
        at = now + timedelta(seconds=1)
        streamed = [f.values for f in OnlineReader(p).read(["cents"], users, at)]
        materialize(p, ["cents"], full=True)
        assert streamed == [f.values for f in OnlineReader(p).read(["cents"], users, at)]
    assert sum(v["payments_1d"] for v in streamed) == len(kept)


@pytest.mark.slow
def test_killed_streams_apply_every_event_once(tmp_path: Path, producer: Producer) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    root = project(tmp_path, producer, batch=500)
    gristmill = str(Path(sys.executable).with_name("gristmill"))
    total = 0
    for round_ in range(4):
        producer.add_many([event(i, now) for i in range(total, total + 4000)])
        total += 4000
        process = subprocess.Popen(
            [gristmill, "stream", "-p", str(root), "--poll-seconds", "0.05", "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TZ": "Pacific/Auckland"},
        )
        time.sleep(0.8 + 0.4 * round_)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def applied() -> bool:
        counted = "SELECT count(*), count(DISTINCT event_id) FROM raw.payment_events"
        return warehouse(root, counted) == [(total, total)] and producer.settled()

    follow_until(root, applied, seconds=90)
    users = list(range(17))
    at = now + timedelta(seconds=1)
    streamed = online(root, users, at)
    with Project.load(root) as p:
        materialize(p, ["spender"], full=True)
    assert streamed == online(root, users, at)


@pytest.mark.parametrize("kind", ["redis", "nats"])
def test_a_stalled_broker_fails_within_its_deadline(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that accepts connections and never answers: a clear error in bounded time,
    not a process held forever."""
    import socket

    from gristmill import backends
    from gristmill.config import StreamConfig
    from gristmill.errors import ConnectionFailedError

    if kind == "nats":
        pytest.importorskip("nats", reason="the nats extra is not installed")
    module = __import__(f"gristmill.streams.{kind}", fromlist=["CALL_SECONDS"])
    monkeypatch.setattr(module, "CALL_SECONDS", 1.0)
    monkeypatch.setattr(module, "CONNECT_SECONDS", 1.0)
    with socket.socket() as stalled:
        stalled.bind(("127.0.0.1", 0))
        stalled.listen()
        port = stalled.getsockname()[1]
        config = StreamConfig(
            type=kind,
            url=f"{kind}://127.0.0.1:{port}" + ("/0" if kind == "redis" else ""),
            stream="s",
            table="t",
            event_id="e",
            columns={"e": "text"},
        )
        started = time.monotonic()
        with pytest.raises(ConnectionFailedError, match=str(port)):
            backends.resolve("broker", kind)("s", config, "c")
    assert time.monotonic() - started < 15

"""Benchmark: events from a Redis stream or a NATS JetStream subject into the online store,
against a bare client loop reading and acknowledging the same stream (the limit), in one run.

    .venv/bin/python benchmarks/streams.py [--broker redis|nats] [--events 200000]
        [--online sqlite|redis] [--table]

`--events` events (five fields as text: id, user of 100,000, amount, shop, time within the
last day; NATS: as headers) are added to a new stream first. The bare loop reads them in
batches of 10,000 (Redis: XREADGROUP, then one XACK a batch; NATS: a pull consumer's fetch,
then an ack a message, as gristmill does), doing nothing else. gristmill then
reads them with its own group, checks each against the stream's columns, computes the
view's event rows (two sums, a count, a distinct count) and writes them to the online
store, acknowledging after; with `--table`, it also appends them to a DuckDB warehouse
table (deduplicated by event id). Both run in this process, on one core. Goal (issue 19):
at least 30,000 events/s.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORK = Path(__file__).parent / ".work" / "streams"
URL = "redis://127.0.0.1:6379/0"
FEATURES = """
from gristmill.features import FeatureView, aggregate

spender = FeatureView(
    name="spender",
    entity=["user_id"],
    timestamp="happened",
    source="payment_events",
    features=[
        aggregate("paid", "sum", "amount", windows=["1h", "1d"]),
        aggregate("payments", "count", windows=["1d"]),
        aggregate("shops", "count_distinct", "shop", windows=["1d"]),
    ],
)
"""


def produce(client: object, key: str, events: int) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    pipe = client.pipeline(transaction=False)  # type: ignore[attr-defined]
    for i in range(events):
        pipe.xadd(key, event_fields(i, now))
        if i % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()


def bare(client: object, key: str, events: int) -> float:
    client.xgroup_create(key, "bare", id="0")  # type: ignore[attr-defined]
    started = time.perf_counter()
    done = 0
    while done < events:
        found = client.xreadgroup("bare", "c", {key: ">"}, count=10_000)  # type: ignore[attr-defined]
        entries = found[0][1] if found else []
        if not entries:
            break
        client.xack(key, "bare", *[i for i, _ in entries])  # type: ignore[attr-defined]
        done += len(entries)
    return time.perf_counter() - started


def event_fields(i: int, now: datetime) -> dict[str, str]:
    return {
        "event_id": f"e{i}",
        "user_id": str(i % 100_000),
        "amount": f"{i % 5000}.{i % 100:02d}",
        "shop": f"s{i % 300}",
        "happened": (now - timedelta(seconds=i % 86_000)).isoformat(),
    }


class Nats:
    """A JetStream stream of its own, filled and read by a bare pull consumer."""

    def __init__(self) -> None:
        import asyncio

        import nats

        self.name = "GMBENCH" + uuid.uuid4().hex[:8].upper()
        self.subject = f"gmbench.{self.name.lower()}"
        self.loop = asyncio.new_event_loop()

        async def connect() -> None:
            self.nc = await nats.connect("nats://127.0.0.1:4222")
            self.js = self.nc.jetstream()
            await self.js.add_stream(name=self.name, subjects=[self.subject])

        self.loop.run_until_complete(connect())

    def produce(self, events: int) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)

        async def publish() -> None:
            for start in range(0, events, 1000):
                acks = [
                    await self.js.publish_async(self.subject, b"", headers=event_fields(i, now))
                    for i in range(start, min(start + 1000, events))
                ]
                for ack in acks:
                    await ack

        self.loop.run_until_complete(publish())

    def bare(self, events: int) -> float:
        from nats.js.api import ConsumerConfig

        async def read() -> None:
            config = ConsumerConfig(max_ack_pending=20_000)
            sub = await self.js.pull_subscribe(self.subject, durable="bare", config=config)
            done = 0
            while done < events:
                messages = await sub.fetch(10_000, timeout=5)
                for message in messages:
                    await message.ack()
                done += len(messages)

        started = time.perf_counter()
        self.loop.run_until_complete(read())
        return time.perf_counter() - started

    def close(self) -> None:
        self.loop.run_until_complete(self.js.delete_stream(self.name))
        self.loop.run_until_complete(self.nc.close())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", choices=["redis", "nats"], default="redis")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--online", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    import redis
    import tomli_w

    from gristmill.streams.follow import Follower

    client = redis.Redis.from_url(URL)
    key = "gm-bench-" + uuid.uuid4().hex[:8]
    prefix = uuid.uuid4().hex
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "features").mkdir(parents=True)
    (WORK / "features" / "spend.py").write_text(FEATURES)
    nats = Nats() if args.broker == "nats" else None
    stream = {
        "type": args.broker,
        "url": "nats://127.0.0.1:4222" if nats else URL,
        "stream": nats.subject if nats else key,
        "feature_views": ["spender"],
        "event_id": "event_id",
        "columns": {
            "event_id": "text",
            "user_id": "bigint",
            "amount": "decimal(10,2)",
            "shop": "text",
            "happened": "timestamp",
        },
    }
    if args.table:
        stream["table"] = "payment_events"
    config: dict[str, object] = {"name": "bench", "streams": {"payments": stream}}
    if args.online == "redis":
        config["online"] = {"type": "redis", "url": URL, "prefix": prefix}
    (WORK / "gristmill.toml").write_text(tomli_w.dumps(config))
    try:
        if nats is not None:
            nats.produce(args.events)
            limit = nats.bare(args.events)
        else:
            produce(client, key, args.events)
            limit = bare(client, key, args.events)
        follower = Follower(WORK, [], 0.01)
        started = time.perf_counter()
        follower.on_progress = lambda followed: (
            follower.stop.set() if followed[0].messages >= args.events else None  # type: ignore[union-attr]
        )
        follower.run()
        seconds = time.perf_counter() - started
        totals = follower.streams[0].to_dict()
    finally:
        if nats is not None:
            nats.close()
        client.delete(key)
        if args.online == "redis":
            for name in client.scan_iter(f"{prefix}:*"):
                client.delete(name)
    print(
        f"{args.events:,} events from {args.broker}; online store {args.online}; table: {args.table}"
    )
    print(f"gristmill totals: {totals}")
    print()
    print("| reader | seconds | events/s |")
    print("|---|---:|---:|")
    print(
        f"| bare {args.broker} read + ack loop (the limit) | {limit:.2f} | {args.events / limit:,.0f} |"
    )
    print(f"| gristmill stream | {seconds:.2f} | {args.events / seconds:,.0f} |")


if __name__ == "__main__":
    main()

"""Benchmark: events from a Redis stream into the online store, against a bare client
loop reading and acknowledging the same stream (the limit), in one run.

    .venv/bin/python benchmarks/streams.py [--events 200000] [--online sqlite|redis] [--table]

`--events` events (five fields as text: id, user of 100,000, amount, shop, time within the
last day) are added to a new stream first. The bare loop reads them with XREADGROUP in
batches of 10,000 and acknowledges each batch (XACK), doing nothing else. gristmill then
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
        pipe.xadd(
            key,
            {
                "event_id": f"e{i}",
                "user_id": str(i % 100_000),
                "amount": f"{i % 5000}.{i % 100:02d}",
                "shop": f"s{i % 300}",
                "happened": (now - timedelta(seconds=i % 86_000)).isoformat(),
            },
        )
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--online", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    import redis
    import tomli_w

    from gristmill.ingest.cdc.follow import Follower

    client = redis.Redis.from_url(URL)
    key = "gm-bench-" + uuid.uuid4().hex[:8]
    prefix = uuid.uuid4().hex
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "features").mkdir(parents=True)
    (WORK / "features" / "spend.py").write_text(FEATURES)
    stream = {
        "url": URL,
        "stream": key,
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
        client.delete(key)
        if args.online == "redis":
            for name in client.scan_iter(f"{prefix}:*"):
                client.delete(name)
    print(f"{args.events:,} events; online store {args.online}; table: {args.table}")
    print(f"gristmill totals: {totals}")
    print()
    print("| reader | seconds | events/s |")
    print("|---|---:|---:|")
    print(f"| bare XREADGROUP + XACK loop (the limit) | {limit:.2f} | {args.events / limit:,.0f} |")
    print(f"| gristmill stream | {seconds:.2f} | {args.events / seconds:,.0f} |")


if __name__ == "__main__":
    main()

"""Benchmark: reading 20 online features of one entity (SQLite and Redis online stores),
and pushing events into the real-time path.

    .venv/bin/python benchmarks/online_features.py [--events N] [--entities N]

Targets (issue 5): p99 of a read under 1 ms on SQLite and under 2 ms on a local Redis,
measured in-process over 10,000 reads; at least 20,000 pushed events per second per core.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

WORK = Path(__file__).parent / ".work" / "online"
FEATURES = """
from gristmill.features import FeatureView, aggregate, expression

user_activity = FeatureView(
    name="user_activity",
    entity=["user_id"],
    timestamp="happened",
    source="raw.events",
    ttl="30d",
    features=[
        aggregate("tx", "count", windows=["10m", "1h", "24h", "7d"]),
        aggregate("amount", "sum", "amount", windows=["1h", "24h", "7d"]),
        aggregate("amount_mean", "mean", "amount", windows=["24h", "7d"]),
        aggregate("amount_max", "max", "amount", windows=["24h", "7d"]),
        aggregate("amount_min", "min", "amount", windows=["24h"]),
        aggregate("shops", "count_distinct", "shop", windows=["24h", "7d"]),
        aggregate("declined", "count", windows=["1h", "24h"], filter="status = 'declined'"),
        aggregate("foreign", "count", windows=["24h", "7d"], filter="foreign_ip"),
        expression("last_amount", "amount"),
        expression("last_shop", "shop"),
    ],
)
"""
NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
"""The events end now: materialize keeps what is within the longest window or ttl of now."""


def prepare(events: int, entities: int) -> Path:
    import duckdb

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "features").mkdir(parents=True)
    (WORK / ".gristmill").mkdir()
    (WORK / "features" / "activity.py").write_text(FEATURES)
    (WORK / "gristmill.toml").write_text('name = "online-bench"\n')
    with duckdb.connect(str(WORK / ".gristmill" / "warehouse.duckdb")) as db:
        db.execute("CREATE SCHEMA raw")
        db.execute(
            f"CREATE TABLE raw.events AS SELECT (range * 7919) % {entities} AS user_id,"
            f" TIMESTAMP '{NOW - timedelta(days=30)}' + to_microseconds(CAST(range AS BIGINT)"
            f" * {int(30 * 86400 * 1e6 / events)}) AS happened,"
            " CAST((range * 31) % 10000 AS DOUBLE) / 100 AS amount,"
            " 'shop_' || (range % 500) AS shop,"
            " ['ok', 'ok', 'ok', 'declined'][1 + range % 4] AS status,"
            " range % 13 = 0 AS foreign_ip"
            f" FROM range({events})"
        )
    return WORK


def configure(online: str) -> None:
    text = 'name = "online-bench"\n'
    if online == "redis":
        text += f'[online]\ntype = "redis"\nurl = "redis://127.0.0.1:6379/0"\nprefix = "{uuid.uuid4().hex}"\n'
    else:
        text += '[online]\ntype = "sqlite"\npath = ".gristmill/online.sqlite"\n'
    (WORK / "gristmill.toml").write_text(text)


def reads(project, entities: int, count: int) -> list[float]:  # type: ignore[no-untyped-def]
    from gristmill.features.api import OnlineReader

    reader = OnlineReader(project)
    rng = random.Random(1)
    timings = []
    for _ in range(count):
        key = [{"user_id": rng.randrange(entities)}]
        started = time.perf_counter()
        [result] = reader.read(["user_activity"], key, at=NOW)
        timings.append(time.perf_counter() - started)
        assert len(result.values) == 20
    return timings


def pushes(project, entities: int, total: int, batch: int) -> float:  # type: ignore[no-untyped-def]
    """Events per second pushed to users that already have a month of history. One batch
    first, untimed: the first Arrow table built from Python rows imports pandas. The events
    are dated in the last hours before NOW, in time order: the serving clock refuses
    events dated later than now plus [online] clock_skew."""
    from gristmill.features.api import Pusher

    rng = random.Random(2)
    events = [
        {
            "user_id": rng.randrange(entities),
            "happened": NOW - timedelta(seconds=total - i),
            "amount": float(rng.randrange(10_000)) / 100,
            "shop": f"shop_{rng.randrange(500)}",
            "status": rng.choice(["ok", "declined"]),
            "foreign_ip": rng.random() < 0.1,
        }
        for i in range(total)
    ]
    pusher = Pusher(project)
    warm_up, events = events[:batch], events[batch:]
    pusher.push("user_activity", warm_up)
    started = time.perf_counter()
    for i in range(0, len(events), batch):
        pusher.push("user_activity", events[i : i + batch])
    rate = len(events) / (time.perf_counter() - started)
    pusher.close()
    return rate


def main() -> None:
    from gristmill.features.api import materialize
    from gristmill.project import Project

    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--entities", type=int, default=50_000)
    args = parser.parse_args()
    prepare(args.events, args.entities)
    lines = [
        "| online store | materialize (s) | read p50 (ms) | read p99 (ms) | push (events/s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for online in ("sqlite", "redis"):
        configure(online)
        with Project.load(WORK) as project:
            started = time.perf_counter()
            materialize(project, full=True)
            built = time.perf_counter() - started
            reads(project, args.entities, 500)  # warm-up
            timings = sorted(reads(project, args.entities, 10_000))
            p50 = statistics.median(timings) * 1000
            p99 = timings[int(len(timings) * 0.99)] * 1000
            rate = pushes(project, args.entities, 51_000, 1_000)
            if online == "redis":
                project.online.clear("user_activity")
        lines.append(f"| {online} | {built:.1f} | {p50:.3f} | {p99:.3f} | {rate:,.0f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

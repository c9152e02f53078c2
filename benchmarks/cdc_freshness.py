"""Benchmark: freshness of online features fed by change data capture. How long from a
commit in PostgreSQL until the feature it changes is visible in the online store, under a
steady load of changes, with `gristmill stream` following the table.

    .venv/bin/python benchmarks/cdc_freshness.py [--rate 2000] [--seconds 30] [--online sqlite|redis]

A PostgreSQL cluster with wal_level=logical is started for the run. The table (100,000
payments) is loaded and its feature view materialized; then `gristmill stream
--poll-seconds 0.1` runs while a writer commits `--rate` changes a second (transactions of
20 rows: 70% inserts, 30% updates), and every 50 ms a probe: a payment of a user no other
row has, whose commit time is noted. A reader asks the online store for the pending probe
users every 10 ms; a probe's freshness is the time from its commit until its user's
`payments_1d` is 1. Goal (issue 19): p99 under 1 s at 2,000 changes/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.logical_postgres import start_logical_postgres  # noqa: E402

WORK = Path(__file__).parent / ".work" / "cdc_freshness"
GRISTMILL = str(ROOT / ".venv" / "bin" / "gristmill")
FEATURES = """
from gristmill.features import FeatureView, aggregate

spender = FeatureView(
    name="spender",
    entity=["user_id"],
    timestamp="happened",
    source="payments",
    features=[
        aggregate("paid", "sum", "amount", windows=["1h", "1d"]),
        aggregate("payments", "count", windows=["1d"]),
    ],
)
"""
PROBE_USERS = 10_000_000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--online", choices=["sqlite", "redis"], default="sqlite")
    args = parser.parse_args()
    import psycopg
    import tomli_w
    from tests.helpers import run_ingest

    from gristmill.features.api import OnlineReader, materialize
    from gristmill.project import Project

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "features").mkdir(parents=True)
    (WORK / "features" / "spend.py").write_text(FEATURES)
    with start_logical_postgres(shared_buffers="512MB") as cluster:
        url = cluster.url()
        db = psycopg.connect(url, autocommit=True)
        db.execute(
            "CREATE TABLE payments (id BIGINT PRIMARY KEY, user_id BIGINT, amount NUMERIC(10, 2),"
            " happened TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        db.execute(
            "INSERT INTO payments SELECT i, i % 50000, i % 1000, now() - i * interval '1 s'"
            " FROM generate_series(1, 100000) i"
        )
        online: dict[str, str] = {}
        if args.online == "redis":
            online = {
                "type": "redis",
                "url": "redis://127.0.0.1:6379/0",
                "prefix": uuid.uuid4().hex,
            }
        config = {
            "name": "fresh",
            "sources": {
                "app": {"type": "postgres", "url": url, "tables": {"payments": {"mode": "cdc"}}}
            },
            **({"online": online} if online else {}),
        }
        (WORK / "gristmill.toml").write_text(tomli_w.dumps(config))
        assert run_ingest(WORK).ok
        with Project.load(WORK) as project:
            materialize(project, ["spender"], full=True)

        stream = subprocess.Popen(
            [GRISTMILL, "stream", "-p", str(WORK), "--poll-seconds", "0.1", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        time.sleep(2)
        committed: dict[int, float] = {}
        seen: dict[int, float] = {}
        stop = threading.Event()
        lock = threading.Lock()

        def write() -> None:
            writer = psycopg.connect(url, autocommit=True)
            per_tx, next_id, probe = 20, 200_001, PROBE_USERS
            interval = per_tx / args.rate
            started = time.monotonic()
            sent = 0
            last_probe = 0.0
            while not stop.is_set():
                target = started + sent * interval
                delay = target - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                with writer.transaction():
                    inserts = per_tx * 7 // 10
                    writer.execute(
                        "INSERT INTO payments (id, user_id, amount) SELECT i, i %% 50000, 1"
                        " FROM generate_series(%s::bigint, %s::bigint) i",
                        [next_id, next_id + inserts - 1],
                    )
                    writer.execute(
                        "UPDATE payments SET amount = amount + 1 WHERE id BETWEEN %s AND %s",
                        [next_id % 100000 + 1, next_id % 100000 + per_tx - inserts],
                    )
                next_id += inserts
                sent += 1
                if time.monotonic() - last_probe >= 0.05:
                    probe += 1
                    writer.execute(
                        "INSERT INTO payments (id, user_id, amount) VALUES (%s, %s, 5)",
                        [next_id, probe],
                    )
                    with lock:
                        committed[probe] = time.monotonic()
                    next_id += 1
                    last_probe = time.monotonic()
            writer.close()

        def read() -> None:
            with Project.load(WORK) as project:
                reader = OnlineReader(project)
                while not stop.is_set() or len(seen) < len(committed):
                    with lock:
                        pending = [u for u in committed if u not in seen]
                    if pending:
                        found = reader.read(["spender"], [{"user_id": u} for u in pending])
                        now = time.monotonic()
                        for user, features in zip(pending, found, strict=True):
                            if features.values.get("payments_1d") == 1:
                                seen[user] = now
                    if stop.is_set() and time.monotonic() > stopped_at + 30:
                        break
                    time.sleep(0.01)

        stopped_at = float("inf")
        threads = [threading.Thread(target=write), threading.Thread(target=read)]
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        stop.set()
        stopped_at = time.monotonic()
        for thread in threads:
            thread.join()
        stream.send_signal(signal.SIGTERM)
        out, _ = stream.communicate(timeout=60)
        db.close()
    latencies = sorted(seen[u] - committed[u] for u in seen)
    missing = len(committed) - len(seen)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    print(f"online store: {args.online}; load: {args.rate:,} changes/s for {args.seconds:g} s")
    print(f"stream totals: {out.strip()}")
    print()
    print("| probes | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | never seen |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {len(committed)} | {pct(0.5):.0f} | {pct(0.9):.0f} | {pct(0.99):.0f} |"
        f" {latencies[-1] * 1000:.0f} | {missing} |"
    )
    os._exit(0)


if __name__ == "__main__":
    main()

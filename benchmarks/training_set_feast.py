"""Benchmark: gristmill's point-in-time training set beside Feast's local offline store
(the `file` store, dask and pandas), on the data of `training_set.py`.

    .venv/bin/python benchmarks/training_set_feast.py [--sizes EVENTS:SPINE[:USERS],...]

Smaller sizes keep the target's shape: 100 events and 10 spine rows per user (users =
events / 100 unless given), so that each spine row has as much history to join as at
10M events.

Feast's offline store does not compute sliding windows: it joins, for each entity row, the
latest precomputed feature row at or before the entity's time, within the view's ttl. So
Feast is given a head start: the 30 windowed values are computed per event by DuckDB
beforehand (untimed) and written to Parquet, and only `get_historical_features(...).to_df()`
is timed. Feast runs in a virtualenv of its own (benchmarks/.work/feast-venv, made here when
missing), in a child process of that venv, stopped when it passes a memory or time limit.

What Feast's rows hold differs from gristmill's: its join takes feature rows at or before
the spine time (an event at exactly the spine time counts; gristmill's windows end strictly
before it), each value is the window as of that event rather than as of the spine time,
and a spine row whose user has events but none within the ttl is left out of the result.
`compare` counts these.

Target (issue 5): gristmill at least 20x faster than Feast's local offline store.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from measure import measure
from training_set import FEATURES, WORK, prepare

FEAST = "feast==0.67.0"
VENV = Path(__file__).parent / ".work" / "feast-venv"
FEAST_PYTHON = VENV / "bin" / "python"
FEAST_WORK = Path(__file__).parent / ".work" / "training-feast"
WINDOWS = {"1h": "1 HOUR", "24h": "24 HOURS", "7d": "7 DAYS"}
# The ten aggregates of training_set.FEATURES, as DuckDB window aggregates.
AGGREGATES = {
    "tx": "count(*)",
    "amount": "sum(amount)",
    "amount_mean": "avg(amount)",
    "amount_max": "max(amount)",
    "amount_min": "min(amount)",
    "shops": "count(DISTINCT shop)",
    "declined": "count(*) FILTER (WHERE status = 'declined')",
    "foreign": "count(*) FILTER (WHERE foreign_ip)",
    "big": "count(*) FILTER (WHERE amount > 80)",
    "fees": "sum(fee)",
}
INTEGER_FEATURES = {"tx", "shops", "declined", "foreign", "big"}
FEATURE_YAML = """project: training_bench
registry: registry.db
provider: local
offline_store:
  type: file
online_store:
  type: sqlite
  path: online.db
entity_key_serialization_version: 3
"""


def feature_names() -> list[tuple[str, str]]:
    """(feature column, aggregate name) of the 30 features, as gristmill names them."""
    return [(f"{name}_{window}", name) for name in AGGREGATES for window in WINDOWS]


def ensure_feast() -> str:
    """Feast's virtualenv, made and installed when missing; returns Feast's version."""
    stamp = VENV / ".installed"
    if not stamp.exists() or stamp.read_text() != FEAST:
        print(f"installing {FEAST} into {VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        pip = [str(FEAST_PYTHON), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, FEAST], check=True)
        stamp.write_text(FEAST)
    version = subprocess.run(
        [str(FEAST_PYTHON), "-c", "import feast; print(feast.__version__)"],
        check=True,
        capture_output=True,
        text=True,
    )
    return version.stdout.strip()


def export_for_feast(repo: Path) -> None:
    """The head start (untimed): each event's 30 windowed values, over (happened - window,
    happened] as a streaming pipeline would write them after the event, and the spine as
    Feast's entity dataframe; timestamps as UTC instants, as Feast wants them."""
    import duckdb

    windows = ",\n".join(
        f"w_{window} AS (PARTITION BY user_id ORDER BY happened"
        f" RANGE BETWEEN INTERVAL {interval} PRECEDING AND CURRENT ROW)"
        for window, interval in WINDOWS.items()
    )
    columns = ",\n".join(
        f"{AGGREGATES[name]} OVER w_{column.rsplit('_', 1)[1]} AS {column}"
        for column, name in feature_names()
    )
    repo.mkdir(parents=True)
    with duckdb.connect(str(WORK / ".gristmill" / "warehouse.duckdb"), read_only=True) as db:
        db.execute("SET TimeZone = 'UTC'")
        db.execute(
            f"COPY (SELECT user_id, happened::TIMESTAMPTZ AS happened,\n{columns}\n"
            f"FROM raw.events WINDOW {windows}) TO '{repo / 'features.parquet'}' (FORMAT parquet)"
        )
        db.execute(
            "COPY (SELECT user_id, decided_at::TIMESTAMPTZ AS event_timestamp, label"
            f" FROM raw.decisions) TO '{repo / 'entities.parquet'}' (FORMAT parquet)"
        )
    (repo / "feature_store.yaml").write_text(FEATURE_YAML)


def watchdog(memory_mb: float, seconds: float) -> None:
    """Stops this process (status 0, a JSON line saying why) past `memory_mb` of resident
    memory or `seconds` of wall time."""
    started = time.monotonic()
    while True:
        time.sleep(0.1)
        with open("/proc/self/status") as status:
            rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        elapsed = time.monotonic() - started
        reason = ""
        if rss / 1024 > memory_mb:
            reason = f"memory: resident set passed {memory_mb:.0f} MB at {elapsed:.0f} s"
        elif elapsed > seconds:
            reason = f"time: still running after {seconds:.0f} s"
        if reason:
            print(json.dumps({"finished": False, "reason": reason}), flush=True)
            os._exit(0)


def feast_child(repo: Path, memory_mb: float, seconds: float) -> None:
    """Runs in Feast's virtualenv: registers the view, then times the point-in-time join of
    the entity dataframe with the precomputed features."""
    from datetime import timedelta

    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    threading.Thread(target=watchdog, args=(memory_mb, seconds), daemon=True).start()
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    view = FeatureView(
        name="activity",
        entities=[user],
        ttl=timedelta(days=7),
        schema=[
            Field(name=column, dtype=Int64 if name in INTEGER_FEATURES else Float64)
            for column, name in feature_names()
        ],
        source=FileSource(path=str(repo / "features.parquet"), timestamp_field="happened"),
        online=False,
    )
    store = FeatureStore(repo_path=str(repo))
    store.apply([user, view])
    entities = pd.read_parquet(repo / "entities.parquet")
    started = time.perf_counter()
    frame = store.get_historical_features(
        entity_df=entities,
        features=[f"activity:{column}" for column, _ in feature_names()],
    ).to_df()
    elapsed = time.perf_counter() - started
    print(json.dumps({"finished": True, "seconds": elapsed, "rows": len(frame)}), flush=True)
    frame.to_parquet(repo / "result.parquet")


def compare(repo: Path) -> dict[str, int]:
    """What Feast's rows say beside gristmill's (untimed): spine rows with an event of the
    same user at exactly the spine time (Feast's join takes it, gristmill's does not), spine
    rows with an event in the 7 days before (gristmill's tx_7d > 0), and spine rows whose
    counts over 1h, 24h and 7d agree (a spine row Feast left out counting as 0)."""
    import duckdb

    with duckdb.connect(str(WORK / ".gristmill" / "warehouse.duckdb"), read_only=True) as db:
        db.execute("SET TimeZone = 'UTC'")
        at_spine_time = db.execute(
            "SELECT count(*) FROM raw.decisions AS d WHERE EXISTS (SELECT 1 FROM raw.events"
            " AS e WHERE e.user_id = d.user_id AND e.happened = d.decided_at)"
        ).fetchone()
        same = db.execute(
            "SELECT count(*) FILTER (WHERE g.tx_7d > 0),"
            " count(*) FILTER (WHERE coalesce(f.tx_1h, 0) = g.tx_1h),"
            " count(*) FILTER (WHERE coalesce(f.tx_24h, 0) = g.tx_24h),"
            " count(*) FILTER (WHERE coalesce(f.tx_7d, 0) = g.tx_7d)"
            f" FROM analytics.training AS g LEFT JOIN '{repo / 'result.parquet'}' AS f"
            " ON f.user_id = g.user_id AND f.event_timestamp = g.decided_at::TIMESTAMPTZ"
        ).fetchone()
    assert at_spine_time is not None and same is not None
    return {
        "events at spine time": at_spine_time[0],
        "spine rows with events in 7d": same[0],
        "tx_1h equal": same[1],
        "tx_24h equal": same[2],
        "tx_7d equal": same[3],
    }


def run(events: int, spine: int, users: int, memory_mb: float, seconds: float) -> dict[str, Any]:
    print(f"creating {events:,} events and {spine:,} spine rows ...", flush=True)
    prepare(events, spine, users)
    repo = FEAST_WORK / f"{events}-{spine}-{users}"
    shutil.rmtree(repo, ignore_errors=True)
    started = time.perf_counter()
    export_for_feast(repo)
    head_start = time.perf_counter() - started
    print(f"  Feast's head start (DuckDB, untimed): {head_start:.1f} s", flush=True)
    gristmill = [
        *(str(Path(sys.executable).parent / "gristmill"), "dataset", "build", "training"),
        *("--json", "-p", str(WORK)),
    ]
    g_wall, g_peak, output = measure(gristmill, WORK / "stdout.json")
    g_own = float(json.loads(output)["seconds"])
    print(f"  gristmill: {g_wall:.1f} s (own {g_own:.1f} s), {g_peak:.0f} MB", flush=True)
    child = [
        *(str(FEAST_PYTHON), __file__, "--feast-child", str(repo)),
        *("--memory-mb", str(memory_mb), "--seconds", str(seconds)),
    ]
    f_wall, f_peak, output = measure(child, repo / "stdout.json")
    feast = json.loads(output.strip().splitlines()[-1])
    figures: dict[str, Any] = {
        "events": events,
        "spine": spine,
        "users": users,
        "head start": head_start,
        "gristmill wall": g_wall,
        "gristmill own": g_own,
        "gristmill peak MB": g_peak,
        "feast process wall": f_wall,
        "feast peak MB": f_peak,
        **feast,
    }
    if feast["finished"]:
        figures["ratio"] = feast["seconds"] / g_wall
        figures.update(compare(repo))
        print(
            f"  feast: {feast['seconds']:.1f} s (process {f_wall:.1f} s), {f_peak:.0f} MB,"
            f" {figures['ratio']:.1f}x gristmill's wall time",
            flush=True,
        )
    else:
        print(f"  feast did not finish ({feast['reason']}), peak {f_peak:.0f} MB", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--sizes", default="250000:25000,500000:50000,1000000:100000,10000000:1000000"
    )
    parser.add_argument("--memory-mb", type=float, default=16_000)
    parser.add_argument("--seconds", type=float, default=900)
    parser.add_argument("--feast-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.feast_child:
        feast_child(args.feast_child, args.memory_mb, args.seconds)
        return
    assert all(f'aggregate("{name}"' in FEATURES for name in AGGREGATES)
    version = ensure_feast()
    print(f"Feast {version}", flush=True)
    rows = []
    for size in args.sizes.split(","):
        events, spine, *users = (int(n) for n in size.split(":"))
        rows.append(
            run(events, spine, users[0] if users else events // 100, args.memory_mb, args.seconds)
        )
    print(f"\n| size | gristmill s | MB | Feast {version} s | MB | Feast rows | ratio |")
    for r in rows:
        size = f"{r['events']:,} events, {r['spine']:,} spine rows, {r['users']:,} users"
        feast = f"{r['seconds']:.1f}" if r["finished"] else f"did not finish: {r['reason']}"
        found = f"{r['rows']:,}" if r["finished"] else ""
        ratio = f"{r['ratio']:.1f}x" if r["finished"] else ""
        print(
            f"| {size} | {r['gristmill wall']:.1f} | {r['gristmill peak MB']:.0f} | {feast}"
            f" | {r['feast peak MB']:.0f} | {found} | {ratio} |"
        )
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

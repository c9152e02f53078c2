"""Benchmark: a point-in-time training set of 10 windowed features over 3 windows, from
10 million events and 1 million spine rows, built by `gristmill dataset build`.

    .venv/bin/python benchmarks/training_set.py [--events N] [--spine N]

Target (issue 5): under 60 s on 2 cores with memory under 4 GB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from measure import measure

WORK = Path(__file__).parent / ".work" / "training"
WINDOWS = '["1h", "24h", "7d"]'
FEATURES = f"""
from gristmill.features import Dataset, FeatureView, aggregate

activity = FeatureView(
    name="activity",
    entity=["user_id"],
    timestamp="happened",
    source="raw.events",
    features=[
        aggregate("tx", "count", windows={WINDOWS}),
        aggregate("amount", "sum", "amount", windows={WINDOWS}),
        aggregate("amount_mean", "mean", "amount", windows={WINDOWS}),
        aggregate("amount_max", "max", "amount", windows={WINDOWS}),
        aggregate("amount_min", "min", "amount", windows={WINDOWS}),
        aggregate("shops", "count_distinct", "shop", windows={WINDOWS}),
        aggregate("declined", "count", windows={WINDOWS}, filter="status = 'declined'"),
        aggregate("foreign", "count", windows={WINDOWS}, filter="foreign_ip"),
        aggregate("big", "count", windows={WINDOWS}, filter="amount > 80"),
        aggregate("fees", "sum", "fee", windows={WINDOWS}),
    ],
)

training = Dataset(
    name="training",
    spine="SELECT user_id, decided_at, label FROM raw.decisions",
    timestamp="decided_at",
    features=["activity"],
)
"""


def prepare(events: int, spine: int, users: int) -> None:
    import duckdb

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "features").mkdir(parents=True)
    (WORK / ".gristmill").mkdir()
    (WORK / "features" / "activity.py").write_text(FEATURES)
    (WORK / "gristmill.toml").write_text('name = "training-bench"\n')
    seconds = 90 * 86400
    with duckdb.connect(str(WORK / ".gristmill" / "warehouse.duckdb")) as db:
        db.execute("CREATE SCHEMA raw")
        db.execute(
            f"CREATE TABLE raw.events AS SELECT (range * 7919) % {users} AS user_id,"
            f" TIMESTAMP '2026-01-01' + to_seconds((range * 104729) % {seconds}) AS happened,"
            " CAST((range * 31) % 10000 AS DOUBLE) / 100 AS amount,"
            " CAST((range * 17) % 300 AS DOUBLE) / 100 AS fee,"
            " 'shop_' || (range % 2000) AS shop,"
            " ['ok', 'ok', 'ok', 'declined'][1 + range % 4] AS status,"
            f" range % 13 = 0 AS foreign_ip FROM range({events})"
        )
        db.execute(
            f"CREATE TABLE raw.decisions AS SELECT (range * 104723) % {users} AS user_id,"
            f" TIMESTAMP '2026-01-01' + to_seconds((range * 7907) % {seconds}) AS decided_at,"
            f" range % 50 = 0 AS label FROM range({spine})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--spine", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    print(f"creating {args.events:,} events and {args.spine:,} spine rows ...", flush=True)
    prepare(args.events, args.spine, args.users)
    cmd = [
        str(Path(sys.executable).parent / "gristmill"),
        "dataset",
        "build",
        "training",
        "--json",
        "-p",
        str(WORK),
    ]
    seconds, peak, output = measure(cmd, WORK / "stdout.json")
    steps = json.loads(output)["steps"]
    rows = next(s["rows"] for s in steps if s["name"] == "training")
    print(
        f"| training set: {args.events:,} events, {args.spine:,} spine rows, 30 features |"
        f" {seconds:.1f} s | {peak:.0f} MB | {rows:,} rows |"
    )


if __name__ == "__main__":
    main()

"""Benchmark: a point-in-time training set of 10 windowed features over 3 windows, from
10 million events and 1 million spine rows, built by `gristmill dataset build`.

    .venv/bin/python benchmarks/training_set.py [--events N] [--spine N] [--warehouse postgres]

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


# The events and spine rows, generated from the row number alone (`range` in DuckDB,
# `generate_series` in PostgreSQL), so that both warehouses hold the same data.
EVENTS_SQL = (
    "SELECT (n * 7919) % {users} AS user_id,"
    " TIMESTAMP '2026-01-01' + (n * 104729) % {seconds} * INTERVAL '1 second' AS happened,"
    " CAST((n * 31) % 10000 AS DOUBLE PRECISION) / 100 AS amount,"
    " CAST((n * 17) % 300 AS DOUBLE PRECISION) / 100 AS fee,"
    " 'shop_' || (n % 2000) AS shop,"
    " CASE WHEN n % 4 = 3 THEN 'declined' ELSE 'ok' END AS status,"
    " n % 13 = 0 AS foreign_ip FROM {numbers}"
)
SPINE_SQL = (
    "SELECT (n * 104723) % {users} AS user_id,"
    " TIMESTAMP '2026-01-01' + (n * 7907) % {seconds} * INTERVAL '1 second' AS decided_at,"
    " n % 50 = 0 AS label FROM {numbers}"
)


def prepare(events: int, spine: int, users: int, warehouse: str = "duckdb") -> None:
    """The project in WORK, its events and spine in a DuckDB file or in PostgreSQL's
    gristmill_bench database (schema raw)."""
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "features").mkdir(parents=True)
    (WORK / ".gristmill").mkdir()
    (WORK / "features" / "activity.py").write_text(FEATURES)
    toml = 'name = "training-bench"\n'
    seconds = 90 * 86400
    if warehouse == "postgres":
        from bench_table import DATABASE, PG, connect, ensure_database

        ensure_database()
        toml += f'\n[warehouse]\ntype = "postgres"\nurl = "{PG}/{DATABASE}"\n'
        with connect() as db:
            db.execute("DROP SCHEMA IF EXISTS raw CASCADE")
            db.execute("DROP SCHEMA IF EXISTS analytics CASCADE")
            db.execute("CREATE SCHEMA raw")
            for table, sql, rows in (
                ("events", EVENTS_SQL, events),
                ("decisions", SPINE_SQL, spine),
            ):
                numbers = f"generate_series(0, {rows - 1}::bigint) AS g(n)"
                body = sql.format(users=users, seconds=seconds, numbers=numbers)
                db.execute(f"CREATE TABLE raw.{table} AS {body}")
                db.execute(f"VACUUM ANALYZE raw.{table}")
    else:
        import duckdb

        with duckdb.connect(str(WORK / ".gristmill" / "warehouse.duckdb")) as db:
            db.execute("CREATE SCHEMA raw")
            for table, sql, rows in (
                ("events", EVENTS_SQL, events),
                ("decisions", SPINE_SQL, spine),
            ):
                numbers = f"(SELECT range AS n FROM range({rows}))"
                db.execute(
                    f"CREATE TABLE raw.{table} AS {sql.format(users=users, seconds=seconds, numbers=numbers)}"
                )
    (WORK / "gristmill.toml").write_text(toml)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--spine", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--warehouse", choices=["duckdb", "postgres"], default="duckdb")
    args = parser.parse_args()
    print(f"creating {args.events:,} events and {args.spine:,} spine rows ...", flush=True)
    prepare(args.events, args.spine, args.users, args.warehouse)
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
        f"| training set on {args.warehouse}: {args.events:,} events, {args.spine:,} spine rows,"
        " 30 features |"
        f" {seconds:.1f} s | {peak:.0f} MB | {rows:,} rows |"
    )


if __name__ == "__main__":
    main()

"""Benchmark: a point-in-time training set of 10 windowed features over 3 windows, from
10 million events and 1 million spine rows, built by `gristmill dataset build`.

    .venv/bin/python benchmarks/training_set.py [--events N] [--spine N] [--warehouse postgres]
        [--hand [--rounds N]]

Target (issue 5): under 60 s on 2 cores with memory under 4 GB.

With `--hand` (DuckDB only), the query gristmill runs and a hand-written DuckDB query
(`HAND_SQL`) are then timed alone, each as `CREATE TEMP TABLE` in a process of its own
with the warehouse's settings, taking turns for `--rounds` rounds; and the hand query's
table is checked equal to the one `gristmill dataset build` made, on every row and column.
Target (issue 18): gristmill's query within 1.15x of the hand-written one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import duckdb
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


# The same training set, written by hand for this data: the events joined with the spine
# rows of their user in the week before (by week buckets, as gristmill's join), each window
# a FILTER, and a distinct count as the events whose shop comes next at or after the spine
# row's time (or never): each shop seen in the window once.
_WINDOWS = {"1h": "INTERVAL 1 HOUR", "24h": "INTERVAL 24 HOUR", "7d": None}
_AGGREGATES = {  # {f}: the column's FILTER clause
    "tx": ("count(e.ts) {f}", None),
    "amount": ("sum(e.amount) {f}", None),
    "amount_mean": ("CAST(sum(e.amount) {f} AS DOUBLE) / count(e.amount) {f}", None),
    "amount_max": ("max(e.amount) {f}", None),
    "amount_min": ("min(e.amount) {f}", None),
    "shops": ("count(e.ts) {f}", "e.shop IS NOT NULL AND coalesce(e.next_shop >= s.ts, TRUE)"),
    "declined": ("count(e.ts) {f}", "e.declined"),
    "foreign": ("count(e.ts) {f}", "e.foreign_ip"),
    "big": ("count(e.ts) {f}", "e.big"),
    "fees": ("sum(e.fee) {f}", None),
}


def _hand_column(name: str, window: str) -> str:
    aggregate, keep = _AGGREGATES[name]
    within = _WINDOWS[window] and f"e.ts >= s.ts - {_WINDOWS[window]}"
    conditions = [c for c in (keep, within) if c]
    where = f"FILTER (WHERE {' AND '.join(conditions)})" if conditions else ""
    return f"{aggregate.format(f=where)} AS {name}_{window}"


HAND_SQL = (
    "WITH spine AS (SELECT row_number() OVER () AS rn, user_id, decided_at, label"
    " FROM raw.decisions),"
    " ev AS (SELECT user_id, happened AS ts, epoch_us(happened) // 604800000000 AS b, amount,"
    " fee, shop, status = 'declined' AS declined, foreign_ip, amount > 80 AS big,"
    " lead(happened) OVER (PARTITION BY user_id, shop ORDER BY happened) AS next_shop"
    " FROM raw.events),"
    " agg AS (SELECT s.rn, "
    + ", ".join(_hand_column(n, w) for n in _AGGREGATES for w in _WINDOWS)
    + " FROM (SELECT rn, user_id, decided_at AS ts, epoch_us(decided_at) // 604800000000 AS b"
    " FROM spine) AS s CROSS JOIN (VALUES (0), (1)) AS o(back)"
    " LEFT JOIN ev AS e ON e.user_id = s.user_id AND e.b = s.b - o.back"
    " AND e.ts >= s.ts - INTERVAL 7 DAY AND e.ts < s.ts GROUP BY s.rn)"
    " SELECT spine.* EXCLUDE (rn), agg.* EXCLUDE (rn) FROM spine LEFT JOIN agg USING (rn)"
    " ORDER BY spine.rn"
)


def _connect() -> duckdb.DuckDBPyConnection:
    """The warehouse file, as gristmill's DuckDB warehouse opens it."""
    from gristmill.config import WarehouseConfig

    limit = WarehouseConfig().memory_limit
    db = duckdb.connect(
        str(WORK / ".gristmill" / "warehouse.duckdb"), config={"memory_limit": limit}
    )
    db.execute("SET TimeZone = 'UTC'")
    return db


def time_query(path: Path) -> None:
    """(In a child process.) Wall and CPU seconds (all threads) to run the query in `path`
    as CREATE TEMP TABLE. CPU seconds are steadier than wall seconds on a machine whose
    cores other work shares."""
    db = _connect()
    wall, cpu = time.perf_counter(), time.process_time()
    db.execute(f"CREATE TEMP TABLE timed AS {path.read_text()}")
    print(json.dumps([time.perf_counter() - wall, time.process_time() - cpu]))


def gristmill_sql() -> str:
    """The query `gristmill dataset build training` runs."""
    from gristmill.graph.load import load_graph
    from gristmill.project import Project

    project = Project.load(WORK)
    try:
        transform = load_graph(project).graph["training"].transform
        assert transform is not None
        return transform.sql
    finally:
        project.close()


def check_equal() -> None:
    """The hand query's rows against the table gristmill built: the same columns and
    types, the same rows in the same order, integers equal and doubles within 1e-12
    relative (a sum of doubles depends on the order its rows arrive in)."""
    db = _connect()
    db.execute(f"CREATE TEMP TABLE hand AS {HAND_SQL}")
    ours = db.execute("DESCRIBE analytics.training").fetchall()
    theirs = db.execute("DESCRIBE hand").fetchall()
    if [c[:2] for c in ours] != [c[:2] for c in theirs]:
        raise SystemExit(f"columns differ:\n{ours}\n{theirs}")
    checks, bits = [], []
    for name, kind, *_ in ours:
        a, b = f'a."{name}"', f'b."{name}"'
        if kind in ("DOUBLE", "FLOAT"):
            far = f"abs({a} - {b}) > 1e-12 * greatest(abs({a}), abs({b}))"
            bits.append(f"count(*) FILTER (WHERE {a} <> {b})")
        else:
            far = f"{a} <> {b}"
        checks.append(f"count(*) FILTER (WHERE ({a} IS NULL) <> ({b} IS NULL) OR {far})")
    counts = db.execute(
        "SELECT (SELECT count(*) FROM analytics.training), (SELECT count(*) FROM hand),"
        f" {', '.join(checks + bits)} FROM analytics.training AS a POSITIONAL JOIN hand AS b"
    ).fetchone()
    rows, differing, inexact = counts[:2], counts[2 : 2 + len(checks)], counts[2 + len(checks) :]
    if rows[0] != rows[1] or any(differing):
        names = [c[0] for c in ours]
        raise SystemExit(f"rows {rows}; differing {dict(zip(names, differing, strict=True))}")
    print(
        f"equal: {rows[0]:,} rows x {len(ours)} columns; {sum(inexact):,} doubles differ"
        " in their last bits (within 1e-12 relative)"
    )


def compare_with_hand(rounds: int) -> None:
    queries = {"gristmill": gristmill_sql(), "hand": HAND_SQL}
    wall: dict[str, list[float]] = {name: [] for name in queries}
    cpu: dict[str, list[float]] = {name: [] for name in queries}
    for name, sql in queries.items():
        (WORK / f"{name}.sql").write_text(sql)
    for round_ in range(rounds):
        names = list(queries) if round_ % 2 == 0 else list(reversed(queries))
        for name in names:
            cmd = [sys.executable, __file__, "--time-query", str(WORK / f"{name}.sql")]
            _, peak, output = measure(cmd, WORK / "stdout.json")
            seconds, cpu_seconds = json.loads(output)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
            print(f"  {name}: {seconds:.2f} s, {cpu_seconds:.2f} CPU-s, {peak:.0f} MB", flush=True)
    check_equal()
    for unit, times in (("s", wall), ("CPU-s", cpu)):
        ours, hand = (statistics.median(times[n]) for n in queries)
        print(
            f"| the query alone, median of {rounds} | gristmill {ours:.2f} {unit}"
            f" | hand-written {hand:.2f} {unit} | {ours / hand:.2f}x |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--spine", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--warehouse", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument("--hand", action="store_true", help="compare with HAND_SQL (DuckDB)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--time-query", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_query:
        time_query(args.time_query)
        return
    if args.hand and args.warehouse != "duckdb":
        parser.error("--hand compares DuckDB queries: use it with --warehouse duckdb")
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
    if args.hand:
        compare_with_hand(args.rounds)


if __name__ == "__main__":
    main()

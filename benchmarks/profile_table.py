"""Benchmark: `gristmill profile` of a 10-million-row, 20-column table, and of a
1-million-row sample of it side by side with ydata-profiling (minimal=True).

    .venv/bin/python benchmarks/profile_table.py [--rows N] [--sample N]

Each contender runs in its own subprocess, so its peak memory (max RSS) is its own. On the
sample, the two profiles must agree on counts, missing values, means and distinct counts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from measure import measure

WORK = Path(__file__).parent / ".work" / "profile"
SAMPLE_PARQUET = WORK / "sample.parquet"

COLUMNS = """
    range AS id,
    (range * 7919) % 100000 AS user_id,
    CAST(((range * 31) % 100000) / 100.0 AS DECIMAL(12,2)) AS amount,
    CASE WHEN range % 13 = 0 THEN NULL ELSE ((range * 17) % 1000) / 7.0 END AS score,
    CAST((range % 97) AS INTEGER) AS bucket,
    CASE WHEN range % 11 = 0 THEN NULL ELSE 18 + (range * 13) % 60 END AS age,
    ((range * 2654435761) % 1000003) / 1000003.0 AS ratio,
    -50 + (range * 7) % 101 AS delta,
    'merchant_' || ((range * 3) % 5000) AS merchant,
    ['ok', 'pending', 'failed', 'reversed'][1 + range % 4] AS status,
    ['KE', 'UG', 'TZ', 'RW', 'NG', 'GH', 'ZA'][1 + (range * 5) % 7] AS country,
    CASE WHEN range % 5 = 0 THEN NULL ELSE 'dev-' || (range % 200000) END AS device,
    md5(CAST(range AS VARCHAR)) AS token,
    TIMESTAMP '2024-01-01' + to_seconds(range * 3) AS created_at,
    TIMESTAMP '2024-01-01' + to_seconds(range * 3 + (range % 86400)) AS updated_at,
    DATE '1950-01-01' + CAST(range % 20000 AS INTEGER) AS birth_date,
    range % 97 = 0 AS is_fraud,
    range % 2 = 0 AS is_active,
    CASE WHEN range % 3 = 0 THEN NULL ELSE (range % 1000) * 1.5 END AS balance,
    (range % 17) * 0.25 AS fee
"""


def prepare(rows: int, sample: int) -> None:
    import duckdb

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / ".gristmill").mkdir(parents=True)
    (WORK / "gristmill.toml").write_text('name = "profile-bench"\n')
    with duckdb.connect(str(WORK / ".gristmill" / "warehouse.duckdb")) as db:
        db.execute("CREATE SCHEMA raw")
        db.execute(f"CREATE TABLE raw.events AS SELECT {COLUMNS} FROM range({rows})")
        db.execute(
            f"CREATE TABLE raw.events_sample AS SELECT * FROM raw.events"
            f" USING SAMPLE reservoir({sample} ROWS) REPEATABLE (1)"
        )
        db.execute(f"COPY raw.events_sample TO '{SAMPLE_PARQUET}' (FORMAT parquet)")


def run_ydata() -> None:
    """The peer, in its own process: ydata-profiling's minimal report of the sample."""
    import pandas as pd
    from ydata_profiling import ProfileReport

    frame = pd.read_parquet(SAMPLE_PARQUET)
    started = time.perf_counter()
    report = ProfileReport(frame, minimal=True, progress_bar=False)
    description = report.get_description()
    report.to_file(WORK / "ydata.html")
    seconds = time.perf_counter() - started
    variables = {
        name: {
            "count": int(v["count"]),
            "missing": int(v["n_missing"]),
            "distinct": int(v["n_distinct"]),
            "mean": float(v["mean"]) if "mean" in v and v["mean"] is not None else None,
        }
        for name, v in description.variables.items()
    }
    print(json.dumps({"seconds": seconds, "variables": variables}))


def measured(cmd: list[str]) -> tuple[float, float, dict]:  # type: ignore[type-arg]
    """Wall seconds, peak RSS (MB) and JSON output of one command."""
    seconds, peak, output = measure(cmd, WORK / "stdout.json")
    return seconds, peak, json.loads(output)


def gristmill(table: str) -> list[str]:
    binary = str(Path(sys.executable).parent / "gristmill")
    return [
        binary,
        "profile",
        table,
        "--json",
        "--html",
        str(WORK / f"{table}.html"),
        "-p",
        str(WORK),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--sample", type=int, default=1_000_000)
    parser.add_argument("--ydata", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ydata:
        run_ydata()
        return
    print(f"creating raw.events: {args.rows:,} rows x 20 columns ...", flush=True)
    prepare(args.rows, args.sample)
    print("gristmill profile (full table) ...", flush=True)
    full_wall, full_rss, full = measured(gristmill("events"))
    print("gristmill profile (sample) ...", flush=True)
    sample_wall, sample_rss, ours = measured(gristmill("events_sample"))
    print("ydata-profiling minimal (sample) ...", flush=True)
    ydata_wall, ydata_rss, theirs = measured([sys.executable, __file__, "--ydata"])

    mismatches, no_peer_mean = [], []
    for column in ours["columns"]:
        peer = theirs["variables"][column["name"]]
        mine = {
            "count": column["count"],
            "missing": column["missing"],
            "distinct": column["distinct"],
            "mean": column["mean"],
        }
        for key, value in mine.items():
            other = peer[key]
            if key == "mean" and other is None and value is not None:
                no_peer_mean.append(column["name"])  # pandas holds decimals as objects
                continue
            if key == "mean" and value is not None and other is not None:
                same = abs(value - other) <= 1e-9 * max(1.0, abs(other))
            else:
                same = value == other or (key == "mean" and value is None)
            if not same:
                mismatches.append(f"{column['name']}.{key}: gristmill {value}, ydata {other}")
    ratio = ydata_wall / sample_wall
    lines = [
        "| profile | wall seconds | peak RSS (MB) |",
        "|---|---:|---:|",
        f"| **gristmill profile**, {args.rows:,} rows x 20 columns | **{full_wall:.1f}** |"
        f" {full_rss:.0f} |",
        f"| gristmill profile, {args.sample:,}-row sample | {sample_wall:.1f} | {sample_rss:.0f} |",
        f"| ydata-profiling minimal=True, the same sample | {ydata_wall:.1f} | {ydata_rss:.0f} |",
        "",
        f"On the sample gristmill is {ratio:.1f}x faster (process start included for both);"
        f" ydata's own time {theirs['seconds']:.1f} s, gristmill's {ours['seconds']:.1f} s.",
        "Counts, missing values, means and distinct counts of the 20 columns: "
        + ("all equal" if not mismatches else f"{len(mismatches)} differ: {mismatches}")
        + (
            f" (ydata computes no mean for the decimal columns {', '.join(no_peer_mean)})."
            if no_peer_mean
            else "."
        ),
        f"Targets: full profile under 60 s ({full_wall:.1f} s) and 2 GB ({full_rss:.0f} MB);"
        f" at least 10x faster than ydata ({ratio:.1f}x).",
    ]
    print("\n".join(lines))
    assert full["rows"] == args.rows


if __name__ == "__main__":
    main()

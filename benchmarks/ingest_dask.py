"""Benchmark: a 10-million-row PostgreSQL table synced into DuckDB with engine local and
engine dask (a LocalCluster of 2 worker processes started by the command), in one run.

    .venv/bin/python benchmarks/ingest_dask.py [--rows N] [--reuse-table]

The table is ingest_postgres.py's `bench_tx` (merge on updated_at). Each engine syncs it
in full (a first load, on Dask split into ranges of the cursor), then incrementally after
1% of its rows changed (100,000 rows: too few to split, so read on the driver on both
engines). Each sync runs in its own subprocess: wall seconds include the interpreter's
start and, for Dask, the LocalCluster's; "own seconds" are the sync's, from --json.
Results print as a Markdown table for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("GRISTMILL_BENCH_TABLE", "bench_tx")

import ingest_postgres
from bench_table import source_project
from measure import measure

WORK = Path(__file__).parent / ".work"
SETTINGS = 'mode = "merge"\ncursor = "updated_at"'
DASK = '\n[execution]\nengine = "dask"\nworkers = 2\nmemory_limit = "4GB"\n'


def project(engine: str) -> Path:
    root = source_project(WORK / f"gristmill_{engine}", "bench_tx", SETTINGS)
    if engine == "dask":
        with (root / "gristmill.toml").open("a") as handle:
            handle.write(DASK)
    return root


def sync(root: Path) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) of the driver, and the sync's own seconds."""
    cmd = [str(Path(sys.executable).parent / "gristmill"), "ingest", "--json", "-p", str(root)]
    seconds, peak, output = measure(cmd, WORK / "stdout.json")
    return seconds, peak, json.loads(output)["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--reuse-table", action="store_true", help="keep an existing table")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    ingest_postgres.prepare(args.rows, args.reuse_table)
    roots = {engine: project(engine) for engine in ("local", "dask")}
    results: dict[str, dict[str, tuple[float, float, float]]] = {}
    for step in ("full sync", "incremental, 1% changed"):
        if step != "full sync":
            ingest_postgres.change_one_percent(args.rows, "scattered")
        for engine, root in roots.items():
            print(f"{step}: {engine} ...", flush=True)
            results.setdefault(step, {})[engine] = sync(root)
    print(f"\n| bench_tx, {args.rows:,} rows | engine | seconds | sync's own seconds |", end="")
    print(" driver peak RSS (MB) | dask / local |")
    print("|---|---|---:|---:|---:|---:|")
    for step, by_engine in results.items():
        base = by_engine["local"][0]
        for engine, (seconds, rss, own) in by_engine.items():
            ratio = f"{seconds / base:.2f}x" if engine == "dask" else ""
            print(f"| {step} | {engine} | {seconds:.2f} | {own:.2f} | {rss:.0f} | {ratio} |")
    print(flush=True)


if __name__ == "__main__":
    main()

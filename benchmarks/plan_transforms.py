"""Benchmark: planning a project of 500 SQL transforms when there is no work to do.

    .venv/bin/python benchmarks/plan_transforms.py [--transforms 500]

The project reads one warehouse table (raw.events, 10k rows) through 500 SQL
transforms in a layered graph (each reads one to three earlier ones, with CTEs and
joins; four in five are tables, one in five a view that nothing reads). The script builds them all once, then
times, with nothing left to do:

- `plan()` in-process (load the graph, decide every step: the number to meet, < 1 s);
- `gristmill run --dry-run` and `gristmill run` as commands (process start included);
- a cold plan, with the catalog's cache of parsed SQL emptied (every file parsed).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).parent / ".work" / "plan"
GRISTMILL = [sys.executable, "-m", "gristmill"]


def is_view(i: int) -> bool:
    """One transform in five is a view that nothing reads: DuckDB expands a view in every
    query that reads it, so long chains of views are slow to query, whatever the tool."""
    return i % 5 == 4


def make_project(count: int) -> Path:
    import duckdb

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "transforms").mkdir(parents=True)
    (WORK / ".gristmill").mkdir()
    (WORK / "gristmill.toml").write_text('name = "plan-bench"\n')
    with duckdb.connect(str(WORK / ".gristmill" / "warehouse.duckdb")) as db:
        db.execute("CREATE SCHEMA raw")
        db.execute(
            "CREATE TABLE raw.events AS SELECT range AS id, range % 1000 AS user_id,"
            " (range % 97) * 1.5 AS amount FROM range(10000)"
        )
    rng = random.Random(0)
    for i in range(count):
        name = f"t{i:03d}"
        if i < 10:
            sql = (
                "WITH recent AS (SELECT * FROM raw.events WHERE amount > 1)\n"
                f"SELECT id, user_id, amount * {i + 1} AS amount FROM recent"
            )
        else:
            tables = [j for j in range(max(0, i - 40), i) if not is_view(j)]
            parents = rng.sample(tables, k=min(len(tables), rng.randint(1, 3)))
            first = f"t{parents[0]:03d}"
            joins = "".join(
                f"\nLEFT JOIN t{p:03d} AS j{n} ON j{n}.id = base.id"
                for n, p in enumerate(parents[1:])
            )
            sql = (
                f"WITH base AS (SELECT id, user_id, amount FROM {first})\n"
                f"SELECT base.id, base.user_id, base.amount FROM base{joins}"
                "\nWHERE base.amount >= 0"
            )
        header = '-- materialized = "view"\n' if is_view(i) else ""
        (WORK / "transforms" / f"{name}.sql").write_text(header + sql + "\n")
    return WORK


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started


def in_process_plan(root: Path) -> tuple[float, int]:
    from gristmill.graph.run import plan
    from gristmill.project import Project

    started = time.perf_counter()
    with Project.load(root) as project:
        steps = plan(project)
    seconds = time.perf_counter() - started
    todo = sum(s.action != "up_to_date" for s in steps)
    return seconds, todo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transforms", type=int, default=500)
    args = parser.parse_args()
    root = make_project(args.transforms)
    build = timed([*GRISTMILL, "run", "-p", str(root)])
    # Warm-up: imports compiled, files in the page cache.
    in_process_plan(root)
    plans = [in_process_plan(root) for _ in range(5)]
    assert all(todo == 0 for _, todo in plans), plans
    plan_best = min(s for s, _ in plans)
    dry_run = min(timed([*GRISTMILL, "run", "--dry-run", "-p", str(root)]) for _ in range(3))
    noop_run = min(timed([*GRISTMILL, "run", "-p", str(root)]) for _ in range(3))
    with sqlite3.connect(root / ".gristmill" / "catalog.sqlite") as catalog:
        catalog.execute("DELETE FROM sql_references")
    cold, _ = in_process_plan(root)
    startup = min(timed([*GRISTMILL, "--version"]) for _ in range(3))
    rows = [
        (f"first `gristmill run` (builds all {args.transforms})", build),
        ("**plan, in-process, nothing to do** (target < 1 s)", plan_best),
        ("plan, in-process, cold (every SQL file parsed by sqlglot)", cold),
        ("`gristmill run --dry-run` (command, process start included)", dry_run),
        ("`gristmill run` with nothing to do (command)", noop_run),
        ("`gristmill --version` (process start alone)", startup),
    ]
    print(f"\n| {args.transforms} SQL transforms | seconds |\n|---|---:|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.3f} |")
    if plan_best >= 1.0:
        raise SystemExit(f"planning took {plan_best:.3f} s, over the 1 s target")


if __name__ == "__main__":
    main()

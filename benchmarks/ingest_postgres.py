"""Benchmark: full and incremental syncs of 10-million-row PostgreSQL tables into DuckDB,
against the physical limit (COPY to /dev/null), connectorx and dlt, in one run.

    make bench            # or: .venv/bin/python benchmarks/ingest_postgres.py [--rows N]
                          #     [--table bench_tx|bench_tokens]

`bench_tx` is synced in full, then three times incrementally after 1% of its rows
changed; `bench_tokens` (a unique 32-character text, an unconstrained numeric) in full.
Each contender runs in its own subprocess, so its peak memory (max RSS) is its own, and
its wall seconds run until the process has exited: for gristmill, until the DuckDB
warehouse has closed (and checkpointed). Results are printed as Markdown tables to paste
into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from bench_table import (
    DATABASE,
    PG,
    connect,
    create_table,
    create_tokens_table,
    ensure_database,
    source_project,
)
from measure import measure

TABLES = {"bench_tx": create_table, "bench_tokens": create_tokens_table}
TABLE = os.environ.get("GRISTMILL_BENCH_TABLE", "bench_tx")
"""The table this process measures (a contender's child process is told by its parent)."""
WORK = Path(__file__).parent / ".work"


def prepare(rows: int, reuse: bool) -> None:
    """Create the table afresh: the incremental runs update rows, and the dead tuples they
    leave would slow the next run's reads."""
    ensure_database()
    with connect() as db:
        exists = db.execute("SELECT to_regclass(%s)", [TABLE]).fetchone()[0]
        if reuse and exists and db.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] == rows:
            return
        TABLES[TABLE](db, TABLE, rows)
        db.execute(f"CREATE INDEX ON {TABLE} (updated_at)")
        db.execute(f"VACUUM ANALYZE {TABLE}")


# -- contenders: each runs in a child process ---------------------------------------------
def run_copy() -> None:
    with connect() as db:
        db.execute(f"COPY {TABLE} TO '/dev/null' (FORMAT binary)")


def run_connectorx() -> None:
    import connectorx as cx
    import duckdb

    table = cx.read_sql(
        f"{PG}/{DATABASE}",
        f"SELECT * FROM {TABLE}",
        partition_on="id",
        partition_num=2,
        return_type="arrow",
    )
    path = WORK / "connectorx.duckdb"
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as db:
        db.register("src", table)
        db.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM src")


def run_dlt() -> None:
    import dlt
    from dlt.sources.sql_database import sql_table

    shutil.rmtree(WORK / "dlt", ignore_errors=True)
    os.environ["DLT_DATA_DIR"] = str(WORK / "dlt" / "data")
    os.environ["DLT_PROJECT_DIR"] = str(WORK / "dlt")
    source = sql_table(
        credentials=f"postgresql://postgres@127.0.0.1:5432/{DATABASE}",
        table=TABLE,
        backend="connectorx",
        chunk_size=100_000,
    )
    pipeline = dlt.pipeline(
        pipeline_name="bench",
        destination=dlt.destinations.duckdb(str(WORK / "dlt.duckdb")),
        dataset_name="raw",
        pipelines_dir=str(WORK / "dlt" / "pipelines"),
    )
    pipeline.run(source, write_disposition="replace")


def _gristmill_project() -> Path:
    return source_project(WORK / "gristmill", TABLE, 'mode = "merge"\ncursor = "updated_at"')


CONTENDERS = {
    "copy": run_copy,
    "connectorx": run_connectorx,
    "dlt": run_dlt,
}


def contender(name: str) -> tuple[float, float, float | None]:
    """Wall seconds, peak RSS (MB) and, for gristmill, the sync's own seconds (without
    the interpreter's start-up), of one contender run in a child process."""
    if name == "gristmill":
        cmd = [
            str(Path(sys.executable).parent / "gristmill"),
            "ingest",
            "--json",
            "-p",
            str(WORK / "gristmill"),
        ]
    else:
        cmd = [sys.executable, __file__, "--contender", name]
    seconds, peak, output = measure(cmd, WORK / "stdout.json")
    own = json.loads(output)["seconds"] if name == "gristmill" else None
    return seconds, peak, own


CHANGES = {
    "newest": "the newest 1% of rows changed",
    "scattered": "1% of rows changed, spread over the keys",
    "spread": "1% of rows changed, spread over the keys and the pages",
}
"""The incremental cases, in the order they run. Every new row version of the first two
lands at the table's end, as it does in a freshly loaded table (no page has room). The
third case's land beside the rows they replace, in the room the second case's old
versions left on every page once vacuumed, as in a table past its first updates: the
server then reads one page per changed row."""


def change_one_percent(rows: int, case: str) -> None:
    """Update 1% of the rows, as `case` of CHANGES says."""
    residue = int(time.time()) % 50
    where, value = {
        "newest": ("id > %s", rows - rows // 100),
        "scattered": ("id %% 100 = %s", residue),
        "spread": ("id %% 100 = %s", residue + 50),
    }[case]
    with connect() as db:
        db.execute(
            f"UPDATE {TABLE} SET amount = amount + 1, updated_at = clock_timestamp() WHERE {where}",
            [value],
        )
        db.execute(f"VACUUM ANALYZE {TABLE}")


def measure_table(rows: int, reuse: bool, skip: list[str]) -> None:
    """Every contender on TABLE, then (bench_tx) the incremental cases; prints the table."""
    prepare(rows, reuse)
    results: dict[str, tuple[float, float, float | None]] = {}
    for name in ("copy", "connectorx", "dlt"):
        if name not in skip:
            print(f"{TABLE}: {name} ...", flush=True)
            results[name] = contender(name)
    _gristmill_project()
    print(f"{TABLE}: gristmill full ...", flush=True)
    results["gristmill full sync"] = contender("gristmill")
    if TABLE == "bench_tx":
        for case, label in CHANGES.items():
            change_one_percent(rows, case)
            print(f"{TABLE}: gristmill incremental ({label}) ...", flush=True)
            results[f"gristmill incremental, {label}"] = contender("gristmill")
    print(f"\n| {TABLE}, {rows:,} rows | seconds | sync's own seconds | peak RSS (MB) | vs COPY |")
    print("|---|---:|---:|---:|---:|")
    base = results.get("copy", (0.0, 0.0, None))[0]
    for name, (seconds, rss, own) in results.items():
        ratio = f"{seconds / base:.2f}x" if base else ""
        own_text = f"{own:.2f}" if own is not None else ""
        print(f"| {name} | {seconds:.2f} | {own_text} | {rss:.0f} | {ratio} |")
    print(flush=True)


def main() -> None:
    global TABLE
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--table", choices=sorted(TABLES), help="one table (default: both)")
    parser.add_argument("--contender", choices=sorted(CONTENDERS))
    parser.add_argument("--skip", nargs="*", default=[], help="contenders to leave out")
    parser.add_argument("--reuse-table", action="store_true", help="keep an existing table")
    args = parser.parse_args()
    if args.contender:
        CONTENDERS[args.contender]()
        return
    WORK.mkdir(exist_ok=True)
    for table in [args.table] if args.table else list(TABLES):
        TABLE = os.environ["GRISTMILL_BENCH_TABLE"] = table
        measure_table(args.rows, args.reuse_table, args.skip)


if __name__ == "__main__":
    main()

"""Benchmark: applying PostgreSQL changes to DuckDB from the change log (mode = "cdc"),
against the physical limit of `pg_recvlogical` decoding the same changes to /dev/null,
and against a polling incremental sync (mode = "merge" by an `updated_at` cursor) of the
same changes, in one run.

    .venv/bin/python benchmarks/cdc.py [--rows 1000000] [--changes 1000000]

A PostgreSQL cluster with wal_level=logical is started for the run (tests/logical_postgres.py).
The table (`--rows` rows) is loaded by both projects first; then `--changes` changes are
made in transactions of 1,000 rows: 60% inserts, 40% updates (each update sets
`updated_at = clock_timestamp()`, so the polling sync sees it; no deletes, which polling
does not see). Then, each timed on its own: `pg_recvlogical` from a slot created before
the changes to the WAL position after them; `gristmill ingest` of the cdc project; of the
merge project. Both warehouse tables are then compared with the source, row by row.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from measure import measure  # noqa: E402
from tests.logical_postgres import POSTGRES_BIN, start_logical_postgres  # noqa: E402

WORK = Path(__file__).parent / ".work" / "cdc"
GRISTMILL = str(ROOT / ".venv" / "bin" / "gristmill")
TABLE = (
    "CREATE TABLE events (id BIGINT PRIMARY KEY, user_id INT NOT NULL, amount NUMERIC(12, 2),"
    " kind TEXT, updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())"
)


def project(folder: Path, url: str, table: dict[str, str]) -> Path:
    import tomli_w

    folder.mkdir(parents=True)
    sources = {"app": {"type": "postgres", "url": url, "tables": {"events": table}}}
    (folder / "gristmill.toml").write_text(
        tomli_w.dumps({"name": f"bench_{folder.name}", "sources": sources})
    )
    return folder


def change(db: object, rows: int, changes: int) -> None:
    """60% inserts, 40% updates of existing rows, 1,000 rows per transaction."""
    inserts = changes * 6 // 10
    done, next_id, step = 0, rows + 1, 0
    while done < changes:
        with db.transaction():  # type: ignore[attr-defined]
            if done < inserts:
                db.execute(  # type: ignore[attr-defined]
                    "INSERT INTO events (id, user_id, amount, kind) SELECT i, i %% 100000,"
                    " (i %% 10000) / 100.0, 'p2p' FROM generate_series(%s, %s) i",
                    [next_id, next_id + 999],
                )
                next_id += 1000
            else:
                low = (step * 7919) % (rows - 1000) + 1
                db.execute(  # type: ignore[attr-defined]
                    "UPDATE events SET amount = amount + 1, updated_at = clock_timestamp()"
                    " WHERE id BETWEEN %s AND %s",
                    [low, low + 999],
                )
                step += 1
        done += 1000


def same(db: object, folder: Path) -> int:
    """Rows of the warehouse table that differ from the source (either way)."""
    import duckdb

    source = db.execute(  # type: ignore[attr-defined]
        "SELECT id, user_id, amount::text, kind FROM events ORDER BY id"
    ).fetchall()
    with duckdb.connect(str(folder / ".gristmill" / "warehouse.duckdb"), read_only=True) as wh:
        found = wh.execute(
            "SELECT id, user_id, amount::VARCHAR, kind FROM raw.events ORDER BY id"
        ).fetchall()
    return len(set(source) ^ set(found))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=1_000_000)
    args = parser.parse_args()
    import psycopg

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    with start_logical_postgres(shared_buffers="1GB", max_wal_size="8GB") as cluster:
        url = cluster.url()
        db = psycopg.connect(url, autocommit=True)
        db.execute(TABLE)
        db.execute(
            "INSERT INTO events (id, user_id, amount, kind) SELECT i, i %% 100000,"
            " (i %% 10000) / 100.0, 'card' FROM generate_series(1, %s) i",
            [args.rows],
        )
        db.execute("VACUUM ANALYZE events")
        cdc = project(WORK / "cdc", url, {"mode": "cdc"})
        merge = project(WORK / "merge", url, {"mode": "merge", "cursor": "updated_at"})
        for folder in (cdc, merge):
            seconds, _, _ = measure([GRISTMILL, "ingest", "-p", str(folder)], WORK / "out.txt")
            print(f"initial load of {args.rows:,} rows, {folder.name}: {seconds:.1f} s", flush=True)
        db.execute("CREATE PUBLICATION bench_recv FOR TABLE events")
        db.execute("SELECT pg_create_logical_replication_slot('bench_recv', 'pgoutput')")

        started = time.perf_counter()
        change(db, args.rows, args.changes)
        print(f"{args.changes:,} changes made in {time.perf_counter() - started:.1f} s", flush=True)
        end = db.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
        wal = db.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint"
            " FROM pg_replication_slots WHERE slot_name = 'bench_recv'"
        ).fetchone()[0]
        receiver = shutil.which("pg_recvlogical") or str(POSTGRES_BIN / "pg_recvlogical")
        started = time.perf_counter()
        subprocess.run(
            [
                receiver,
                "-d",
                url,
                "-S",
                "bench_recv",
                "--start",
                "--endpos",
                end,
                "-f",
                "/dev/null",
                "-o",
                "proto_version=1",
                "-o",
                "publication_names=bench_recv",
                "--no-loop",
            ],
            check=True,
        )
        limit = time.perf_counter() - started
        rows = [("pg_recvlogical to /dev/null (the limit)", limit, None, None)]
        for name, folder in (
            ("gristmill ingest, mode = cdc", cdc),
            ("gristmill ingest, mode = merge (polling)", merge),
        ):
            seconds, peak, _ = measure([GRISTMILL, "ingest", "-p", str(folder)], WORK / "out.txt")
            rows.append((name, seconds, peak, same(db, folder)))
        db.close()
    print()
    print(f"{args.changes:,} changes ({wal / 1e6:,.0f} MB of WAL) to a table of {args.rows:,} rows")
    print()
    print("| contender | seconds | changes/s | peak RSS (MB) | rows differing from the source |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, peak, differing in rows:
        rate = args.changes / seconds
        peak_text = f"{peak:,.0f}" if peak is not None else "-"
        diff_text = f"{differing:,}" if differing is not None else "-"
        print(f"| {name} | {seconds:.2f} | {rate:,.0f} | {peak_text} | {diff_text} |")


if __name__ == "__main__":
    main()

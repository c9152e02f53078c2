"""Benchmark: `gristmill diff` of a 10-million-row PostgreSQL table against its copy in
DuckDB, after 10 rows changed, 5 deleted and 5 inserted on the PostgreSQL side.

    .venv/bin/python benchmarks/diff_postgres.py [--rows N]

The reference is the full gristmill ingest of the same table into DuckDB (timed here, in
the same run): the diff must find exactly the 20 keys, move under 1% of the rows out of
the databases, and take less time than that ingest. Figures go to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from bench_table import (
    DATABASE,
    ROW_FROM_KEY,
    connect,
    create_table,
    ensure_database,
    source_project,
)

TABLE = "diff_tx"
WORK = Path(__file__).parent / ".work" / "diff"
README = Path(__file__).parent / "README.md"
SECTION = "## Diff: 10M rows, Postgres vs DuckDB (issue 3)"
NOTE = [
    "",
    "Where the time goes: the first level scans both tables once, computing per segment the",
    "row count and a sum of integer row codes (values as integers, text through",
    "PostgreSQL's `hashtext`, which DuckDB computes with the same function over each",
    "distinct value); PostgreSQL spends ~1.2 µs a row on it, in parallel workers, DuckDB a",
    "fraction of that. The md5 of a row's text, which the first version summed, cost",
    "PostgreSQL 15 ~3 µs a row (22 s for this diff). Later levels are index range scans",
    "and the row fetch moves a few thousand rows.",
    "",
    "The COPY row gives the machine's speed in the run (the same COPY of the 10M-row",
    "`bench_tx` took 3.97 s on 2026-11-25, see the ingest section); the diff and its",
    "reference ran in the same run.",
]


def changes(rows: int) -> tuple[list[int], list[int], list[int]]:
    """Keys changed, deleted and inserted: at both ends of the key range and spread between."""
    spread = [1 + (rows - 1) * i // 9 for i in range(10)]  # 1 ... rows
    changed = spread
    deleted = [2, rows // 3 + 2, rows // 2 + 2, rows - 7, rows - 1]
    inserted = [0, rows + 1, rows + 2, rows + 1000, rows * 2]
    return changed, deleted, inserted


def prepare(rows: int) -> None:
    """The table as generated: created if missing, else the rows a previous run changed
    restored (cheaper than 10M inserts)."""
    ensure_database()
    changed, deleted, inserted = changes(rows)
    with connect() as db:
        exists = db.execute("SELECT to_regclass(%s)", [TABLE]).fetchone()[0]
        if (
            exists
            and db.execute(f"SELECT max(id) FROM {TABLE} WHERE id <= %s", [rows]).fetchone()[0]
            == rows
        ):
            keys = sorted({*changed, *deleted, *inserted})
            db.execute(f"DELETE FROM {TABLE} WHERE id = ANY(%s)", [keys])
            db.execute(
                f"INSERT INTO {TABLE} SELECT {ROW_FROM_KEY} FROM unnest(%s::bigint[]) g"
                " WHERE g BETWEEN 1 AND %s",
                [keys, rows],
            )
            if db.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] == rows:
                return
        create_table(db, TABLE, rows)
        db.execute(f"VACUUM ANALYZE {TABLE}")


def change(rows: int) -> None:
    changed, deleted, inserted = changes(rows)
    with connect() as db:
        db.execute(f"UPDATE {TABLE} SET amount = amount + 1 WHERE id = ANY(%s)", [changed])
        db.execute(f"DELETE FROM {TABLE} WHERE id = ANY(%s)", [deleted])
        db.execute(
            f"INSERT INTO {TABLE} SELECT g, 1, 1.00, 'new', now(), now(), 'ok', false"
            " FROM unnest(%s::bigint[]) g",
            [inserted],
        )
        db.execute(f"ANALYZE {TABLE}")


def project() -> Path:
    return source_project(WORK, TABLE, 'mode = "full"')


def gristmill(*args: str) -> tuple[float, dict]:  # type: ignore[type-arg]
    """Wall seconds and the JSON output of one gristmill command (exit 0 or 1)."""
    cmd = [str(Path(sys.executable).parent / "gristmill"), *args, "--json", "-p", str(WORK)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return seconds, json.loads(done.stdout)


def update_readme(rows: int, lines: list[str]) -> None:
    body = "\n".join(
        [
            SECTION,
            "",
            "Command:",
            "",
            "    .venv/bin/python benchmarks/diff_postgres.py      # also run by make bench",
            "",
            f"Table `{TABLE}` in the local PostgreSQL (database `{DATABASE}`, created by the",
            f"script): {rows:,} rows, the 8 columns of `bench_tx`. It is ingested into DuckDB with",
            "`gristmill ingest` (full mode, 2 streams; its time is the reference), then 10 rows",
            "are changed, 5 deleted and 5 inserted on the PostgreSQL side, at both ends of the key",
            "range and spread between, and `gristmill diff app.diff_tx diff_tx --key id` runs.",
            f"Run on {date.today().isoformat()} on this 2-core machine.",
            "",
            *lines,
            "",
        ]
    )
    text = README.read_text()
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + body + ("\n" + text[end + 1 :] if end != -1 else "")
    README.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--no-readme", action="store_true", help="do not update README.md")
    args = parser.parse_args()
    rows = args.rows
    prepare(rows)
    project()
    with connect() as db:  # how fast the server can send the table today, for scale
        started = time.perf_counter()
        db.execute(f"COPY {TABLE} TO '/dev/null' (FORMAT binary)")
        copy_wall = time.perf_counter() - started
    print("gristmill ingest (full) ...", flush=True)
    ingest_wall, ingest = gristmill("ingest")
    assert ingest["ok"] and ingest["rows"] == rows, ingest
    change(rows)
    print("gristmill diff ...", flush=True)
    diff_wall, result = gristmill("diff", f"app.{TABLE}", TABLE, "--key", "id")
    changed, deleted, inserted = changes(rows)
    stats = result["stats"]
    found_changed = sorted(c["key"] for c in result["changed"])
    assert found_changed == sorted(changed), found_changed
    assert all(list(c["columns"]) == ["amount"] for c in result["changed"]), result["changed"]
    assert result["missing_in_a"] == sorted(deleted), result["missing_in_a"]
    assert result["missing_in_b"] == sorted(inserted), result["missing_in_b"]
    moved = stats["rows_moved"] / rows
    lines = [
        f"| {rows:,} rows | wall seconds | own seconds | rows moved | queries |",
        "|---|---:|---:|---:|---:|",
        f"| PostgreSQL `COPY {TABLE} TO '/dev/null' (FORMAT binary)` (for scale) | {copy_wall:.2f}"
        " | | | |",
        f"| gristmill ingest, full sync (the reference) | {ingest_wall:.2f} | {ingest['seconds']:.2f}"
        f" | {rows:,} | |",
        f"| **gristmill diff**, 20 differences found | **{diff_wall:.2f}** | {stats['seconds']:.2f}"
        f" | {stats['rows_moved']:,} ({moved:.3%}) | {stats['queries']} |",
        "",
        f"The diff took {stats['levels']} levels and compared {stats['segments']:,} segment"
        f" checksums; it found exactly the 10 changed, 5 deleted and 5 inserted keys.",
        f"Targets: rows moved under 1% ({moved:.3%}): {'met' if moved < 0.01 else 'NOT met'};"
        f" diff faster than the full ingest ({diff_wall:.2f} s vs {ingest_wall:.2f} s):"
        f" {'met' if diff_wall < ingest_wall else 'NOT met'}.",
    ]
    print("\n".join(lines))
    lines += NOTE
    if not args.no_readme:
        update_readme(rows, lines)
    assert moved < 0.01, "rows moved must stay under 1%"
    assert diff_wall < ingest_wall, "the diff must be faster than the full ingest"


if __name__ == "__main__":
    main()

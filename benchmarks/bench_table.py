"""The benchmarks' PostgreSQL tables, generated in the server from the key alone:
`bench_tx`, 8 columns (bigint key, int, numeric(12,2), text, timestamptz x2, text,
boolean), and `bench_tokens`, 6 columns (bigint key, a unique 32-character text, an
unconstrained numeric, text, timestamptz x2), whose rows are wider: ADBC reads them in
batches of about 156,000 rows, more than DuckDB's 122,880-row row groups."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

PG = os.environ.get("GRISTMILL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DATABASE = "gristmill_bench"
ROW_FROM_KEY = (
    "g, ((g * 7919) %% 100000)::int, ((g * 31) %% 100000) / 100.0, 'merchant_' || (g %% 5000),"
    " timestamptz '2024-01-01' + g * interval '1 second',"
    " timestamptz '2024-01-01' + g * interval '1 second',"
    " (array['ok','pending','failed'])[1 + g %% 3], g %% 97 = 0"
)
"""The select list of the row whose key is `g` (in a psycopg query: % doubled)."""


def connect(database: str = DATABASE) -> Any:
    import psycopg

    return psycopg.connect(f"{PG}/{database}", autocommit=True)


def ensure_database() -> None:
    with connect("postgres") as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            admin.execute(f"CREATE DATABASE {DATABASE}")


def create_table(db: Any, table: str, rows: int) -> None:
    """(Re)create `table` with keys 1..rows."""
    print(f"creating {table} with {rows:,} rows ...", flush=True)
    db.execute(f"DROP TABLE IF EXISTS {table}")
    db.execute(
        f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, user_id INT NOT NULL,"
        " amount NUMERIC(12,2), merchant TEXT, created_at TIMESTAMPTZ,"
        " updated_at TIMESTAMPTZ NOT NULL, status TEXT, is_flagged BOOLEAN)"
    )
    db.execute(
        f"INSERT INTO {table} SELECT {ROW_FROM_KEY} FROM generate_series(1, %s::bigint) g", [rows]
    )


def create_tokens_table(db: Any, table: str, rows: int) -> None:
    """(Re)create `table` (bench_tokens' columns) with keys 1..rows."""
    print(f"creating {table} with {rows:,} rows ...", flush=True)
    db.execute(f"DROP TABLE IF EXISTS {table}")
    db.execute(
        f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, token TEXT NOT NULL UNIQUE,"
        " balance NUMERIC, channel TEXT, created_at TIMESTAMPTZ,"
        " updated_at TIMESTAMPTZ NOT NULL)"
    )
    db.execute(
        f"INSERT INTO {table} SELECT g, md5(g::text), ((g * 7919) %% 1000003) / 8.0,"
        " (array['mobile_app','ussd','agent_cash_in'])[1 + g %% 3],"
        " timestamptz '2024-01-01' + g * interval '1 second',"
        " timestamptz '2024-01-01' + g * interval '1 second'"
        " FROM generate_series(1, %s::bigint) g",
        [rows],
    )


def source_project(root: Path, table: str, settings: str) -> Path:
    """A fresh gristmill project in `root` syncing `table` of the benchmark database with
    2 parallel streams and the table `settings` (TOML lines)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "gristmill.toml").write_text(
        f'[sources.app]\ntype = "postgres"\nurl = "{PG}/{DATABASE}"\n\n'
        f"[sources.app.tables.{table}]\n{settings}\nparallel = 2\n"
    )
    return root

"""SQLite catalog: the embedded default, one WAL-mode file under `.gristmill/`."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gristmill.catalog.base import (
    AssetVersion,
    Catalog,
    FiringRecord,
    StepRecord,
    TableSyncRecord,
)
from gristmill.config import CatalogConfig

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS table_syncs (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    source TEXT NOT NULL,
    source_table TEXT NOT NULL,
    target TEXT NOT NULL,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    rows INTEGER NOT NULL,
    seconds REAL NOT NULL,
    error TEXT,
    details TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS schema_history (
    source TEXT NOT NULL,
    source_table TEXT NOT NULL,
    version INTEGER NOT NULL,
    columns TEXT NOT NULL,
    change TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (source, source_table, version)
);
CREATE TABLE IF NOT EXISTS steps (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    asset TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    rows INTEGER NOT NULL,
    error TEXT,
    details TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS asset_versions (
    name TEXT PRIMARY KEY,
    definition_hash TEXT NOT NULL,
    data_version TEXT NOT NULL,
    relation TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    built_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS check_results (
    run_id INTEGER,
    asset TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    failing INTEGER NOT NULL,
    message TEXT NOT NULL,
    result TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sql_references (
    sql_hash TEXT PRIMARY KEY,
    found TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS schedule_firings (
    schedule TEXT NOT NULL,
    fired_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    run_id INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS schedule_firings_by_name ON schedule_firings (schedule, fired_at);
CREATE TABLE IF NOT EXISTS sync_state (
    source TEXT NOT NULL,
    source_table TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, source_table)
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SQLiteCatalog(Catalog):
    def __init__(self, config: CatalogConfig, root: Path) -> None:
        path = Path(config.path)
        self.path = path if path.is_absolute() else root / path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        # In WAL mode this keeps the catalog consistent after a crash while sparing an
        # fsync per record; the warehouse, not the catalog, holds what must be durable.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._lock:
            cursor = self._db.execute(sql, params)
            return int(cursor.lastrowid or 0)

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._db.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def start_run(self, command: str) -> int:
        return self._write(
            "INSERT INTO runs (command, started_at, status) VALUES (?, ?, 'running')",
            (command, _now()),
        )

    def finish_run(self, run_id: int, status: str) -> None:
        self._write(
            "UPDATE runs SET finished_at = ?, status = ? WHERE id = ?", (_now(), status, run_id)
        )

    def record_sync(self, run_id: int, record: TableSyncRecord) -> None:
        self._write(
            "INSERT INTO table_syncs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                record.source,
                record.table,
                record.target,
                record.mode,
                record.status,
                record.rows,
                record.seconds,
                record.error,
                json.dumps(record.details, default=str),
                _now(),
            ),
        )

    def record_schema(
        self, source: str, table: str, schema: list[dict[str, Any]], change: str
    ) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (version,) = self._db.execute(
                    "SELECT coalesce(max(version), 0) + 1 FROM schema_history"
                    " WHERE source = ? AND source_table = ?",
                    (source, table),
                ).fetchone()
                self._db.execute(
                    "INSERT INTO schema_history VALUES (?, ?, ?, ?, ?, ?)",
                    (source, table, version, json.dumps(schema), change, _now()),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def mirror_state(self, source: str, table: str, state: dict[str, Any]) -> None:
        self._write(
            "INSERT INTO sync_state VALUES (?, ?, ?, ?) ON CONFLICT (source, source_table)"
            " DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            (source, table, json.dumps(state, default=str), _now()),
        )

    def mirrored_states(self) -> dict[tuple[str, str], dict[str, Any]]:
        rows = self._read("SELECT source, source_table, state FROM sync_state")
        return {(r["source"], r["source_table"]): json.loads(r["state"]) for r in rows}

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._read("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))

    def syncs(self, run_id: int) -> list[dict[str, Any]]:
        return self._read("SELECT * FROM table_syncs WHERE run_id = ? ORDER BY rowid", (run_id,))

    def schema_history(self, source: str, table: str) -> list[dict[str, Any]]:
        return self._read(
            "SELECT * FROM schema_history WHERE source = ? AND source_table = ? ORDER BY version",
            (source, table),
        )

    def record_step(self, run_id: int, step: StepRecord) -> None:
        self._write(
            "INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                step.asset,
                step.kind,
                step.status,
                step.started_at,
                step.finished_at,
                step.rows,
                step.error,
                json.dumps(step.details, default=str),
            ),
        )

    def steps(self, run_id: int) -> list[dict[str, Any]]:
        return self._read("SELECT * FROM steps WHERE run_id = ? ORDER BY rowid", (run_id,))

    def asset_versions(self) -> dict[str, AssetVersion]:
        return {
            row["name"]: AssetVersion(**row) for row in self._read("SELECT * FROM asset_versions")
        }

    def record_asset_version(self, version: AssetVersion) -> None:
        self._write(
            "INSERT OR REPLACE INTO asset_versions VALUES (?, ?, ?, ?, ?, ?)",
            (
                version.name,
                version.definition_hash,
                version.data_version,
                version.relation,
                version.run_id,
                version.built_at,
            ),
        )

    def record_checks(self, run_id: int | None, asset: str, results: list[dict[str, Any]]) -> None:
        now = _now()
        with self._lock:
            self._db.executemany(
                "INSERT INTO check_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        asset,
                        r["check"]["name"],
                        r["check"]["kind"],
                        r["check"]["severity"],
                        r["status"],
                        r["failing"],
                        r["message"],
                        json.dumps(r, default=str),
                        now,
                    )
                    for r in results
                ],
            )

    def check_results(self, asset: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        where, params = ("WHERE asset = ?", (asset,)) if asset else ("", ())
        return self._read(
            f"SELECT * FROM check_results {where} ORDER BY rowid DESC LIMIT ?", (*params, limit)
        )

    def cached_references(self, hashes: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for row in self._read(
                f"SELECT sql_hash, found FROM sql_references WHERE sql_hash IN ({marks})",
                tuple(chunk),
            ):
                found[row["sql_hash"]] = json.loads(row["found"])
        return found

    def cache_references(self, found: dict[str, Any]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO sql_references VALUES (?, ?)",
                [(h, json.dumps(v)) for h, v in found.items()],
            )

    def record_firing(self, firing: FiringRecord) -> None:
        self._write(
            "INSERT INTO schedule_firings VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                firing.schedule,
                firing.fired_at,
                firing.finished_at,
                firing.status,
                firing.attempts,
                firing.run_id,
                firing.error,
            ),
        )

    def last_fired(self, schedule: str) -> str | None:
        [row] = self._read(
            "SELECT max(fired_at) AS fired_at FROM schedule_firings WHERE schedule = ?",
            (schedule,),
        )
        return None if row["fired_at"] is None else str(row["fired_at"])

    def firings(self, schedule: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        where, params = ("WHERE schedule = ?", (schedule,)) if schedule else ("", ())
        return self._read(
            f"SELECT * FROM schedule_firings {where} ORDER BY rowid DESC LIMIT ?",
            (*params, limit),
        )

    def close(self) -> None:
        self._db.close()

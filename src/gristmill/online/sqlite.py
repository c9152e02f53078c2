"""SQLite: the embedded online store, one WAL-mode file under `.gristmill/`."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from gristmill.config import OnlineConfig
from gristmill.online.base import OnlineStore


class SQLiteOnlineStore(OnlineStore):
    NAME = "sqlite"

    def __init__(self, config: OnlineConfig, root: Path) -> None:
        path = Path(config.path)
        self.path = path if path.is_absolute() else root / path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS records (view TEXT NOT NULL, key TEXT NOT NULL,"
            " record BLOB NOT NULL, PRIMARY KEY (view, key)) WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS meta (view TEXT NOT NULL, name TEXT NOT NULL,"
            " value TEXT NOT NULL, PRIMARY KEY (view, name))"
        )
        self._lock = threading.Lock()

    def read(self, view: str, keys: Sequence[str]) -> list[bytes | None]:
        if len(keys) == 1:
            with self._lock:
                row = self._db.execute(
                    "SELECT record FROM records WHERE view = ? AND key = ?", (view, keys[0])
                ).fetchone()
            return [row[0] if row else None]
        found: dict[str, bytes] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ", ".join("?" * len(chunk))
                for key, record in self._db.execute(
                    f"SELECT key, record FROM records WHERE view = ? AND key IN ({marks})",
                    (view, *chunk),
                ):
                    found[key] = record
        return [found.get(key) for key in keys]

    def write(self, view: str, records: Mapping[str, bytes]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO records VALUES (?, ?, ?)",
                    [(view, key, record) for key, record in records.items()],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get_meta(self, view: str, name: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM meta WHERE view = ? AND name = ?", (view, name)
            ).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, view: str, name: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?, ?)", (view, name, value))

    def clear(self, view: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM records WHERE view = ?", (view,))
            self._db.execute("DELETE FROM meta WHERE view = ?", (view,))

    def close(self) -> None:
        self._db.close()

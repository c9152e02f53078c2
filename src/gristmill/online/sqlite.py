"""SQLite: the embedded online store, one WAL-mode file under `.gristmill/`. Events are
rows clustered by (view, key, time), so an entity's events are one range scan."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from gristmill.config import OnlineConfig
from gristmill.online.base import Events, OnlineStore


class SQLiteOnlineStore(OnlineStore):
    NAME = "sqlite"

    def __init__(self, config: OnlineConfig, root: Path) -> None:
        path = Path(config.path)
        self.path = path if path.is_absolute() else root / path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # A push touches one page per entity, scattered: a cache that holds the hot part
        # of the file, and checkpoints (which fsync) every 64 MB of log, not every 4 MB.
        self._db.execute("PRAGMA cache_size=-131072")
        self._db.execute("PRAGMA wal_autocheckpoint=16384")
        # The event's bytes are part of the key: they are unique per entity (a nonce).
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS events (view TEXT NOT NULL, key TEXT NOT NULL,"
            " time INTEGER NOT NULL, event BLOB NOT NULL,"
            " PRIMARY KEY (view, key, time, event)) WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS meta (view TEXT NOT NULL, name TEXT NOT NULL,"
            " value TEXT NOT NULL, PRIMARY KEY (view, name))"
        )
        self._lock = threading.Lock()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def read(self, view: str, keys: Sequence[str]) -> list[list[bytes]]:
        if len(keys) == 1:
            with self._lock:
                rows = self._db.execute(
                    "SELECT event FROM events WHERE view = ? AND key = ? ORDER BY time",
                    (view, keys[0]),
                ).fetchall()
            return [[row[0] for row in rows]]
        found: dict[str, list[bytes]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ", ".join("?" * len(chunk))
                for key, event in self._db.execute(
                    f"SELECT key, event FROM events WHERE view = ? AND key IN ({marks})"
                    " ORDER BY key, time",
                    (view, *chunk),
                ):
                    found.setdefault(key, []).append(event)
        return [found.get(key, []) for key in keys]

    def write(
        self,
        view: str,
        events: Mapping[str, Events],
        forget_before: Mapping[str, int],
        replace: bool = False,
    ) -> None:
        with self._transaction() as db:
            if replace:
                db.executemany(
                    "DELETE FROM events WHERE view = ? AND key = ?", [(view, k) for k in events]
                )
            db.executemany(
                "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?)",
                [(view, key, t, e) for key, evs in events.items() for t, e in evs],
            )
            db.executemany(
                "DELETE FROM events WHERE view = ? AND key = ? AND time < ?",
                [(view, key, cut) for key, cut in forget_before.items()],
            )

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
        with self._transaction() as db:
            db.execute("DELETE FROM events WHERE view = ?", (view,))
            db.execute("DELETE FROM meta WHERE view = ?", (view,))

    def close(self) -> None:
        self._db.close()

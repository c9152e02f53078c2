"""SQLite: the embedded online store, one WAL-mode file under `.gristmill/`. Events are
rows clustered by (view, key, time), so an entity's events are one range scan.

Every call has the deadline of [online] timeout: waiting for another thread of this
process, or for another process that holds the file's write lock (SQLite's busy
timeout), past it the call fails with OnlineStoreUnavailableError."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from gristmill.config import OnlineConfig
from gristmill.errors import BackendError, OnlineStoreUnavailableError
from gristmill.online.base import Events, OnlineStore, deadline_seconds

_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)

# One statement for any number of keys: they come as one JSON array, so no chunking (and
# no limit on bound parameters). As an IN list, SQLite walks them in order through the
# primary key, so the ORDER BY costs no sort (a join on json_each sorted the whole answer,
# a third of a large read).
_READ = (
    "SELECT key, event FROM events WHERE view = ? AND key IN (SELECT value FROM json_each(?))"
    " ORDER BY key, time, event"
)
_READ_ONE = "SELECT key, event FROM events WHERE view = ? AND key = ? ORDER BY time, event"
"""A served prediction's read: one key, without the JSON array (half the time)."""


class SQLiteOnlineStore(OnlineStore):
    NAME = "sqlite"

    def __init__(self, config: OnlineConfig, root: Path) -> None:
        path = Path(config.path)
        self.path = path if path.is_absolute() else root / path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = deadline_seconds(config)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=self.timeout, check_same_thread=False, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise self._failure("open", exc) from None
        try:
            self._create()
        except BaseException:
            self._db.close()
            raise

    def _create(self) -> None:
        with self._using("open") as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # A push touches one page per entity, scattered: a cache that holds the hot
            # part of the file, and checkpoints (which fsync) every 64 MB of log, not 4 MB.
            db.execute("PRAGMA cache_size=-131072")
            db.execute("PRAGMA wal_autocheckpoint=16384")
            # The event's bytes are part of the key: they are unique per entity (a nonce).
            db.execute(
                "CREATE TABLE IF NOT EXISTS events (view TEXT NOT NULL, key TEXT NOT NULL,"
                " time INTEGER NOT NULL, event BLOB NOT NULL,"
                " PRIMARY KEY (view, key, time, event)) WITHOUT ROWID"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS meta (view TEXT NOT NULL, name TEXT NOT NULL,"
                " value TEXT NOT NULL, PRIMARY KEY (view, name))"
            )

    def _unavailable(self, what: str, cause: str) -> OnlineStoreUnavailableError:
        return OnlineStoreUnavailableError(
            f"The SQLite online store {self.path} could not {what} (its deadline:"
            f" {self.timeout:g} s, [online] timeout): {cause}. Check for another"
            " process holding the file's write lock (a long materialize or push), or raise"
            " [online] timeout."
        )

    def _failure(self, what: str, exc: sqlite3.Error) -> Exception:
        if isinstance(exc, sqlite3.OperationalError) and (
            (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _BUSY
        ):
            return self._unavailable(what, str(exc))
        return BackendError(f"The SQLite online store {self.path} failed to {what}: {exc}")

    @contextmanager
    def _using(self, what: str) -> Iterator[sqlite3.Connection]:
        """The connection, held by this thread alone, with SQLite's errors translated."""
        if not self._lock.acquire(timeout=self.timeout):
            raise self._unavailable(what, "another thread's call did not finish")
        try:
            yield self._db
        except sqlite3.Error as exc:
            raise self._failure(what, exc) from None
        finally:
            self._lock.release()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._using("write") as db:
            # IMMEDIATE: the write lock is waited for here, within the busy timeout; a
            # deferred one reads first, and fails at once if another writer commits since.
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def read(self, view: str, keys: Sequence[str]) -> list[list[bytes]]:
        with self._using("read") as db:
            return _read(db, view, keys)

    def read_views_now(
        self, lookups: Sequence[tuple[str, Sequence[str]]]
    ) -> list[list[list[bytes]]] | None:
        # A WAL reader never waits for a writer, so only this process's lock could make
        # it wait: when another thread holds it (a push), the read goes to a thread.
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return [_read(self._db, view, keys) for view, keys in lookups]
        except sqlite3.Error as exc:
            raise self._failure("read", exc) from None
        finally:
            self._lock.release()

    def write(
        self,
        view: str,
        events: Mapping[str, Events],
        forget_before: Mapping[str, int],
        replace: bool = False,
    ) -> None:
        _refuse_nul(events)
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
        with self._using("read") as db:
            row = db.execute(
                "SELECT value FROM meta WHERE view = ? AND name = ?", (view, name)
            ).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, view: str, name: str, value: str) -> None:
        with self._using("write") as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?, ?)", (view, name, value))

    def clear(self, view: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM events WHERE view = ?", (view,))
            db.execute("DELETE FROM meta WHERE view = ?", (view,))

    def close(self) -> None:
        self._db.close()


def _refuse_nul(keys: Iterable[str]) -> None:
    """SQLite's JSON functions end a string at a NUL character, so such a key would be
    read as another (shorter) key. The features module's keys are JSON text, which
    escapes NUL; a raw one is a caller's bug."""
    for key in keys:
        if "\x00" in key:
            raise BackendError(
                f"The SQLite online store cannot hold the key {key!r}: it contains a NUL"
                " character. Encode entity keys with gristmill.features.online.entity_key."
            )


def _read(db: sqlite3.Connection, view: str, keys: Sequence[str]) -> list[list[bytes]]:
    distinct = list(dict.fromkeys(keys))
    _refuse_nul(distinct)
    found: dict[str, list[bytes]] = {}
    if len(distinct) == 1:
        rows = db.execute(_READ_ONE, (view, distinct[0]))
    else:
        rows = db.execute(_READ, (view, json.dumps(distinct, ensure_ascii=False)))
    for key, event in rows:
        found.setdefault(key, []).append(event)
    return [list(found.get(key, ())) for key in keys]

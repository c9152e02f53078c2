"""Late-committing transactions: a change whose cursor value is set before its
transaction commits (a `now()` default, a trigger, a sequence) must reach the warehouse
however long the transaction stays open across syncs.

PostgreSQL bounds the cursor by its oldest open transaction; MySQL/MariaDB, and integer
cursors anywhere, re-read a `lookback` window. Both are checked against the source
itself, with real concurrent connections, over random interleavings of changes, open
transactions and syncs.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill.ingest import IngestSummary, ingest
from gristmill.project import Project
from tests.conftest import MYSQL_URL, PG_URL, require_server
from tests.helpers import run_ingest, warehouse_rows, write_project
from tests.ingest.harness import MySQLHarness, PostgresHarness, SourceHarness

WRITERS = 3


class Writer(ABC):
    """A connection of the application's, which may hold a transaction open."""

    open = False

    @abstractmethod
    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one statement (inside the open transaction, if any); the rows it touched."""

    def begin(self) -> None:
        self.execute("BEGIN")
        self.open = True

    def end(self, commit: bool) -> None:
        self.execute("COMMIT" if commit else "ROLLBACK")
        self.open = False

    @abstractmethod
    def close(self) -> None: ...


class PostgresWriter(Writer):
    def __init__(self, schema: str) -> None:
        import psycopg

        self.db = psycopg.connect(PG_URL, autocommit=True)
        self.db.execute(f'SET search_path TO "{schema}"')

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return self.db.execute(sql, params).rowcount

    def close(self) -> None:
        self.db.close()


class MySQLWriter(Writer):
    def __init__(self, database: str) -> None:
        import pymysql

        self.db = pymysql.connect(
            host="127.0.0.1",
            user="root",
            database=database,
            autocommit=True,
            init_command="SET time_zone = '+00:00'",
        )
        # Row locks only (no gap locks), and a wait that fails fast rather than hangs.
        self.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        self.execute("SET SESSION innodb_lock_wait_timeout = 5")

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        with self.db.cursor() as cursor:
            return int(cursor.execute(sql, params or None))

    def close(self) -> None:
        self.db.close()


@dataclass
class App:
    """A source table `items` and the application's connections to it."""

    kind: str
    harness: SourceHarness
    writers: list[Writer]
    integer_cursor: bool = False

    def create(self) -> None:
        h = self.harness
        if self.kind == "postgres":
            cursor = (
                "seq BIGINT NOT NULL DEFAULT nextval('items_seq')"
                if self.integer_cursor
                else "updated_at TIMESTAMPTZ NOT NULL DEFAULT now()"
            )
            h.execute("DROP TABLE IF EXISTS items")
            h.execute("DROP SEQUENCE IF EXISTS items_seq")
            h.execute("CREATE SEQUENCE items_seq")
            h.execute(
                f"CREATE TABLE items (id BIGINT PRIMARY KEY, v INT NOT NULL, {cursor},"
                " deleted_at TIMESTAMPTZ)"
            )
        else:
            h.execute("DROP TABLE IF EXISTS items")
            h.execute(
                "CREATE TABLE items (id BIGINT PRIMARY KEY, v INT NOT NULL,"
                " updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),"
                " deleted_at DATETIME(6) NULL)"
            )

    @property
    def cursor(self) -> str:
        return "seq" if self.integer_cursor else "updated_at"

    @property
    def _touch(self) -> str:
        if self.kind == "postgres":
            return "seq = nextval('items_seq')" if self.integer_cursor else "updated_at = now()"
        return "updated_at = CURRENT_TIMESTAMP(6)"

    @property
    def _now(self) -> str:
        return "now()" if self.kind == "postgres" else "CURRENT_TIMESTAMP(6)"

    def insert(self, writer: int, key: int) -> None:
        self.writers[writer].execute("INSERT INTO items (id, v) VALUES (%s, 0)", (key,))

    def update(self, writer: int, key: int) -> None:
        self.writers[writer].execute(
            f"UPDATE items SET v = v + 1, {self._touch} WHERE id = %s", (key,)
        )

    def soft_delete(self, writer: int, key: int) -> None:
        self.writers[writer].execute(
            f"UPDATE items SET deleted_at = {self._now}, {self._touch} WHERE id = %s", (key,)
        )

    def live_rows(self) -> list[tuple[Any, ...]]:
        """What a full refresh would load: the committed rows not soft-deleted."""
        sql = f"SELECT id, v, {self.cursor} FROM items WHERE deleted_at IS NULL ORDER BY id"
        h = self.harness
        if isinstance(h, PostgresHarness):
            rows = h.db.execute(sql).fetchall()
        else:
            assert isinstance(h, MySQLHarness)
            with h.db.cursor() as cursor:
                cursor.execute(sql)
                rows = list(cursor.fetchall())
        return [_comparable(row) for row in rows]

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
        self.harness.close()


def _comparable(row: Any) -> tuple[Any, ...]:
    values = tuple(row)
    cursor = values[2]
    if hasattr(cursor, "tzinfo") and cursor.tzinfo is not None:
        from datetime import UTC

        cursor = cursor.astimezone(UTC).replace(tzinfo=None)
    return (*values[:2], cursor)


def _open_app(kind: str, name: str, integer_cursor: bool = False) -> App:
    if kind == "postgres":
        require_server("PostgreSQL", "127.0.0.1", 5432)
        pg = PostgresHarness(PG_URL, name)
        return App(kind, pg, [PostgresWriter(name) for _ in range(WRITERS)], integer_cursor)
    require_server("MariaDB/MySQL", "127.0.0.1", 3306)
    my = MySQLHarness(MYSQL_URL, name)
    return App(kind, my, [MySQLWriter(name) for _ in range(WRITERS)], integer_cursor)


def _write_config(app: App, root: Path, mode: str, lookback: Any = None) -> None:
    table: dict[str, Any] = {"mode": mode, "cursor": app.cursor}
    if mode == "merge":
        table["soft_delete_column"] = "deleted_at"
    if lookback is not None:
        table["lookback"] = lookback
    write_project(root, {"app": {**app.harness.source_config(), "tables": {"items": table}}})


def _warehouse(root: Path, cursor: str) -> list[tuple[Any, ...]]:
    return [_comparable((r["id"], r["v"], r[cursor])) for r in warehouse_rows(root, "items")]


@pytest.fixture(params=["postgres", "mysql"])
def app(request: Any, unique_name: str) -> Iterator[App]:
    application = _open_app(request.param, unique_name)
    application.create()
    yield application
    application.close()


# -- a transaction held open across a sync ------------------------------------------------
@pytest.mark.parametrize("mode", ["merge", "append"])
def test_a_transaction_open_across_a_sync_arrives_with_the_next(
    app: App, project_dir: Path, mode: str
) -> None:
    # PostgreSQL needs nothing set: its cursor stops at the oldest open transaction.
    _write_config(app, project_dir, mode, lookback=None if app.kind == "postgres" else "10m")
    app.insert(0, 1)
    assert run_ingest(project_dir).ok
    late = app.writers[1]
    late.begin()
    app.insert(1, 2)  # its cursor value is set now, before the row is committed
    if mode == "merge":
        app.update(1, 1)
    time.sleep(0.01)
    app.insert(0, 3)  # committed at once, with a greater cursor value

    before = run_ingest(project_dir)
    late.end(commit=True)
    after = run_ingest(project_dir)

    assert before.ok and after.ok, (before.to_dict(), after.to_dict())
    assert [r[0] for r in _warehouse(project_dir, app.cursor)] == [1, 2, 3]
    assert _warehouse(project_dir, app.cursor) == app.live_rows()
    assert after.tables[0].rows == (2 if mode == "merge" else 1)


@pytest.mark.parametrize("cursor", ["TIMESTAMP DEFAULT now()", "TIMESTAMPTZ DEFAULT now()"])
def test_postgres_waits_for_open_transactions_in_any_local_time_zone(
    pg_url: str, unique_name: str, project_dir: Path, monkeypatch: pytest.MonkeyPatch, cursor: str
) -> None:
    # gristmill's own zone is far from the server's: only the server's clock counts.
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    pg = PostgresHarness(pg_url, unique_name)
    late = PostgresWriter(unique_name)
    try:
        pg.execute(f"CREATE TABLE items (id BIGINT PRIMARY KEY, at {cursor} NOT NULL)")
        write_project(
            project_dir,
            {
                "app": {
                    **pg.source_config(),
                    "tables": {"items": {"mode": "append", "cursor": "at"}},
                }
            },
        )
        late.begin()
        late.execute("INSERT INTO items (id) VALUES (1)")
        time.sleep(0.01)
        pg.execute("INSERT INTO items (id) VALUES (2)")
        first = run_ingest(project_dir)
        late.end(commit=True)
        second = run_ingest(project_dir)

        assert first.ok and second.ok, (first.to_dict(), second.to_dict())
        assert [r["id"] for r in warehouse_rows(project_dir, "items")] == [1, 2]
        assert (first.tables[0].rows, second.tables[0].rows) == (1, 1)
    finally:
        late.close()
        pg.close()
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("hidden", "standby", "says"),
    [(2, False, "2 session(s) of other roles"), (0, True, "it is a standby")],
)
def test_postgres_says_when_it_cannot_see_every_open_transaction(
    pg_url: str,
    unique_name: str,
    project_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    hidden: int,
    standby: bool,
    says: str,
) -> None:
    from gristmill.ingest.sources import postgres

    # What pg_stat_activity shows a role without pg_read_all_stats, or a standby.
    monkeypatch.setattr(
        postgres,
        "OPEN_TRANSACTIONS_SQL",
        f"SELECT 0::bigint, 0::bigint, {hidden}::bigint, {standby}",
    )
    pg = PostgresHarness(pg_url, unique_name)
    try:
        pg.execute("CREATE TABLE items (id BIGINT PRIMARY KEY, at TIMESTAMPTZ DEFAULT now())")
        pg.execute("INSERT INTO items (id) VALUES (1)")
        write_project(
            project_dir,
            {
                "app": {
                    **pg.source_config(),
                    "tables": {"items": {"mode": "append", "cursor": "at"}},
                }
            },
        )
        with caplog.at_level("WARNING", logger="gristmill.ingest.sources.postgres"):
            assert run_ingest(project_dir).ok
    finally:
        pg.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "Source 'app'" in warnings[0] and says in warnings[0]
    assert "lookback" in warnings[0]


# -- the property: incremental syncs end equal to a full refresh ----------------------------
OPS = (
    "begin",
    "begin",
    "insert",
    "insert",
    "update",
    "delete",
    "commit",
    "rollback",
    "sync",
    "sync",
)
"""Writer 0 never opens a transaction: its changes commit at once, and move the greatest
cursor value past those of the transactions the other writers hold open."""


@dataclass
class Interleaving:
    """Replays drawn steps, keeping them runnable: a writer touches only rows no other
    open transaction has touched (else it would wait for that one forever). The project
    stays open from sync to sync, as a scheduler's process would keep it."""

    app: App
    project: Project
    mode: str
    next_key: int = 1
    keys: list[int] = field(default_factory=list)
    touched: dict[int, set[int]] = field(default_factory=dict)

    def free_key(self, writer: int, pick: int) -> int | None:
        taken = set().union(*(keys for w, keys in self.touched.items() if w != writer))
        free = [k for k in self.keys if k not in taken]
        return free[pick % len(free)] if free else None

    def step(self, op: str, writer: int, pick: int) -> None:
        app, w = self.app, self.app.writers[writer]
        if op == "begin" and not w.open and writer > 0:
            w.begin()
            self.touched[writer] = set()
        elif op in ("commit", "rollback") and w.open:
            w.end(commit=op == "commit")
            del self.touched[writer]
        elif op == "sync":
            self.sync()
        elif op == "insert":
            key, self.next_key = self.next_key, self.next_key + 1
            app.insert(writer, key)
            self.keys.append(key)
            self.touched.get(writer, set()).add(key)
        elif op in ("update", "delete") and self.mode == "merge":
            key = self.free_key(writer, pick)
            if key is not None:
                (app.update if op == "update" else app.soft_delete)(writer, key)
                self.touched.get(writer, set()).add(key)

    def sync(self) -> IngestSummary:
        summary = ingest(self.project)
        assert summary.ok, summary.to_dict()
        # Nothing commits during the sync: the warehouse holds exactly what is committed,
        # whatever is still open.
        loaded = self.project.warehouse.query_arrow(
            f"SELECT id, v, {self.app.cursor} FROM raw.items ORDER BY id"
        ).to_pylist()
        assert [_comparable(r.values()) for r in loaded] == self.app.live_rows()
        return summary

    def finish(self, commits: list[bool]) -> None:
        for writer, commit in zip(range(WRITERS), commits, strict=True):
            if self.app.writers[writer].open:
                self.app.writers[writer].end(commit)
        self.touched.clear()
        self.sync()
        # And a sync that finds nothing new changes nothing.
        again = self.sync().tables[0]
        assert again.rows == 0 and again.deleted_rows == 0


steps = st.lists(
    st.tuples(st.sampled_from(OPS), st.integers(0, WRITERS - 1), st.integers(0, 1_000)),
    min_size=6,
    max_size=30,
)
endings = st.lists(st.booleans(), min_size=WRITERS, max_size=WRITERS)


def _check_interleaving(
    app: App, mode: str, lookback: Any, drawn: list[tuple[str, int, int]], commits: list[bool]
) -> None:
    root = Path(tempfile.mkdtemp(prefix="gm-late-"))
    try:
        app.create()
        _write_config(app, root, mode, lookback)
        with Project.load(root) as project:
            run = Interleaving(app, project, mode)
            for op, writer, pick in drawn:
                run.step(op, writer, pick)
            run.finish(commits)
    finally:
        for writer in app.writers:
            if writer.open:
                writer.end(commit=False)
        shutil.rmtree(root, ignore_errors=True)


CASES = {
    # PostgreSQL's own bound, with nothing configured.
    "postgres-now-merge": ("postgres", False, "merge", None),
    "postgres-now-append": ("postgres", False, "append", None),
    # A sequence cursor: no time bounds it, a lookback of cursor values does.
    "postgres-sequence-merge": ("postgres", True, "merge", 1_000),
    # MariaDB's CURRENT_TIMESTAMP is the statement's time: a lookback covers the rest.
    "mysql-now-merge": ("mysql", False, "merge", "1h"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_incremental_syncs_over_any_interleaving_equal_a_full_refresh(
    case: str, unique_name: str
) -> None:
    kind, integer_cursor, mode, lookback = CASES[case]
    application = _open_app(kind, unique_name, integer_cursor)

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(drawn=steps, commits=endings)
    def check(drawn: list[tuple[str, int, int]], commits: list[bool]) -> None:
        _check_interleaving(application, mode, lookback, drawn, commits)

    try:
        check()
    finally:
        application.close()

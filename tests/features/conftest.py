"""The warehouse engines training-set tests run their SQL on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import pytest

from gristmill.dialects import Dialect, dialect
from tests.conftest import PG_URL, require_server


class Engine:
    """One warehouse engine the training-set SQL runs on: tables loaded, queries answered."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "duckdb":
            self.dialect: Dialect = dialect("duckdb")
            self.db: Any = duckdb.connect()
            self.mark = "?"
        else:
            import psycopg

            require_server("PostgreSQL", "127.0.0.1", 5432)
            self.dialect = dialect("postgres")
            # Unprepared: tests drop and recreate tables with other column types, which a
            # prepared statement's plan would refuse.
            self.db = psycopg.connect(PG_URL, autocommit=True, prepare_threshold=None)
            self.mark = "%s"

    def load(
        self,
        rows: list[tuple[Any, ...]],
        points: list[tuple[int, datetime]],
        amount_type: str = "INTEGER",
        event_time_type: str = "TIMESTAMP",
    ) -> None:
        """events (user_id, event_at, amount, shop) and spine (user_id, decided_at, label):
        the spine's times are always without time zone."""
        temporary = "TEMP " if self.name == "postgres" else ""
        for table in ("events", "spine"):
            self.db.execute(f"DROP TABLE IF EXISTS {table}")
        self.db.execute(
            f"CREATE {temporary}TABLE events"
            f" (user_id INTEGER, event_at {event_time_type}, amount {amount_type}, shop VARCHAR)"
        )
        self.db.execute(
            f"CREATE {temporary}TABLE spine (user_id INTEGER, decided_at TIMESTAMP, label BOOLEAN)"
        )
        with self.db.cursor() as cursor:
            if rows:
                cursor.executemany(f"INSERT INTO events VALUES ({self.marks(4)})", rows)
            cursor.executemany(
                f"INSERT INTO spine VALUES ({self.marks(3)})",
                [(u, t, u % 2 == 0) for u, t in points],
            )

    def marks(self, count: int) -> str:
        return ", ".join([self.mark] * count)

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self.db.cursor() as cursor:
            cursor.execute(sql)
            return [d[0] for d in cursor.description], cursor.fetchall()


ENGINES: dict[str, Engine] = {}


@pytest.fixture(params=["duckdb", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """One connection per engine for the session (hypothesis runs many examples)."""
    if request.param not in ENGINES:
        ENGINES[request.param] = Engine(request.param)
    return ENGINES[request.param]

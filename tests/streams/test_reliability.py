"""`gristmill stream` killed with SIGKILL again and again while a PostgreSQL table changes
(inserts, updates, deletes, a transaction held open across kills) and a Redis stream
receives events (some malformed): afterwards the warehouse table equals the source, the
stream's table holds every good event once, the dead letters are exactly the malformed
events, and the online values equal a reference computed here from the source's rows and
the events sent.

`make test` runs it small (4 kills, 20,000 changes, 20,000 events); `make reliability`
runs the full size (GRISTMILL_RELIABILITY=full: 20 kills during 200,000 changes and
200,000 events).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gristmill.features.api import OnlineReader, materialize
from gristmill.project import Project
from tests.conftest import LogicalPostgres
from tests.helpers import run_ingest, write_project
from tests.streams.test_brokers import RedisProducer, follow_until, warehouse

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.slow

FULL = os.environ.get("GRISTMILL_RELIABILITY") == "full"
KILLS = 20 if FULL else 4
CHANGES = 200_000 if FULL else 20_000
EVENTS = 200_000 if FULL else 20_000
USERS = 50
MALFORMED_EVERY = 997

FEATURES = """
from gristmill.features import FeatureView, aggregate

ledger_spend = FeatureView(
    name="ledger_spend", entity=["user_id"], timestamp="happened", source="ledger",
    features=[aggregate("total", "sum", "amount", windows=["30d"]),
              aggregate("entries", "count", windows=["30d"])],
)
spender = FeatureView(
    name="spender", entity=["user_id"], timestamp="happened", source="payment_events",
    features=[aggregate("paid", "sum", "amount", windows=["1d"]),
              aggregate("payments", "count", windows=["1d"])],
)
"""


class LedgerWriter(threading.Thread):
    """About `CHANGES` changes to the ledger, spread over `seconds`: each round a
    transaction of inserts, then updates and deletes; one transaction stays open from the
    start until `release` is set."""

    def __init__(self, url: str, seconds: float, release: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.seconds, self.release = url, seconds, release
        self.changes = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._write()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _write(self) -> None:
        db = psycopg.connect(self.url, autocommit=True)
        held = psycopg.connect(self.url)
        held.execute(
            "INSERT INTO ledger SELECT i, i %% %s, 1.25, now() - interval '1 hour'"
            " FROM generate_series(5000001, 5000200) i",
            [USERS],
        )
        per_round = 2000 + 400 + 200
        rounds = -(-CHANGES // per_round)
        next_id = 100_001
        started = time.monotonic()
        for number in range(rounds):
            with db.transaction():
                db.execute(
                    "INSERT INTO ledger SELECT i, i %% %s, (i %% 997) / 4.0,"
                    " now() - (i %% 600) * interval '1 minute' FROM generate_series(%s, %s) i",
                    [USERS, next_id, next_id + 1999],
                )
            db.execute(
                "UPDATE ledger SET amount = amount + 0.5, user_id = (user_id + 1) %% %s"
                " WHERE id IN (SELECT id FROM ledger WHERE id %% 97 = %s LIMIT 400)",
                [USERS, number % 97],
            )
            db.execute(
                "DELETE FROM ledger WHERE id IN"
                " (SELECT id FROM ledger WHERE id %% 89 = %s AND id < %s LIMIT 200)",
                [number % 89, next_id],
            )
            next_id += 2000
            self.changes += per_round
            if self.release.is_set() and not held.closed:
                held.commit()
                held.close()
            time.sleep(max(0.0, started + self.seconds * (number + 1) / rounds - time.monotonic()))
        if not held.closed:
            held.commit()
            held.close()
        db.close()


class EventWriter(threading.Thread):
    """`EVENTS` events to the stream over `seconds`, every `MALFORMED_EVERY`-th malformed."""

    def __init__(self, producer: RedisProducer, now: datetime, seconds: float) -> None:
        super().__init__(daemon=True)
        self.producer, self.now, self.seconds = producer, now, seconds
        self.good: dict[str, tuple[int, Decimal]] = {}
        self.malformed: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._write()
        except BaseException as exc:
            self.error = exc

    def _write(self) -> None:
        chunk = 1000
        started = time.monotonic()
        for first in range(0, EVENTS, chunk):
            events = []
            for i in range(first, min(first + chunk, EVENTS)):
                happened = (self.now - timedelta(minutes=i % 600)).replace(tzinfo=None)
                fields = {
                    "event_id": f"e{i}",
                    "user_id": str(i % USERS),
                    "amount": f"{i % 90}.{i % 100:02d}",
                    "happened": happened.isoformat(),
                }
                if i % MALFORMED_EVERY == 0:
                    fields["amount"] = "not-a-number"
                    self.malformed.append(f"e{i}")
                else:
                    self.good[f"e{i}"] = (i % USERS, Decimal(fields["amount"]))
                events.append(fields)
            self.producer.add_many(events)
            time.sleep(
                max(0.0, started + self.seconds * (first + chunk) / EVENTS - time.monotonic())
            )


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def test_twenty_kills_during_changes_and_events(
    tmp_path: Path, logical_postgres: LogicalPostgres
) -> None:
    url = logical_postgres.new_database()
    db = psycopg.connect(url, autocommit=True)
    db.execute(
        "CREATE TABLE ledger (id BIGINT PRIMARY KEY, user_id INT, amount NUMERIC(12, 2),"
        " happened TIMESTAMPTZ)"
    )
    db.execute(
        "INSERT INTO ledger SELECT i, i %% %s, i %% 50, now() - interval '2 hours'"
        " FROM generate_series(1, 10000) i",
        [USERS],
    )
    producer = RedisProducer()
    now = datetime.now(UTC).replace(microsecond=0)
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "views.py").write_text(FEATURES)
    stream = {
        "type": "redis",
        "url": producer.url,
        "stream": producer.stream,
        "table": "payment_events",
        "feature_views": ["spender"],
        "event_id": "event_id",
        "batch": 5000,
        "columns": {
            "event_id": "text",
            "user_id": "bigint",
            "amount": "decimal(10,2)",
            "happened": "timestamp",
        },
    }
    root = write_project(
        tmp_path,
        {"app": {"type": "postgres", "url": url, "tables": {"ledger": {"mode": "cdc"}}}},
        streams={"payments": stream},
        name="rel" + uuid.uuid4().hex[:6],
    )
    try:
        assert run_ingest(root).ok
        with Project.load(root) as project:
            materialize(project, ["ledger_spend"], full=True)

        seconds = 2.0 * KILLS
        release = threading.Event()
        writers: list[LedgerWriter | EventWriter] = [
            LedgerWriter(url, seconds, release),
            EventWriter(producer, now, seconds),
        ]
        for writer in writers:
            writer.start()
        gristmill = str(Path(sys.executable).with_name("gristmill"))
        rng = random.Random(19)
        kills = 0
        for number in range(KILLS):
            process = subprocess.Popen(
                [gristmill, "stream", "-p", str(root), "--poll-seconds", "0.1", "--json"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "TZ": "Pacific/Chatham"},
            )
            time.sleep(rng.uniform(1.0, 3.0))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait()
            if number == KILLS // 2:
                release.set()  # the transaction held open since the start commits
        release.set()
        for writer in writers:
            writer.join(300)
            assert writer.error is None, writer.error
        assert kills == KILLS, "a stream ended by itself: the kills prove nothing"
        ledger_writer, event_writer = writers
        assert isinstance(ledger_writer, LedgerWriter) and isinstance(event_writer, EventWriter)
        assert ledger_writer.changes >= CHANGES * 0.95

        expected = db.execute(
            "SELECT id, user_id, amount, happened FROM ledger ORDER BY id"
        ).fetchall()

        def caught_up() -> bool:
            rows = warehouse(
                root, "SELECT count(*), count(DISTINCT event_id) FROM raw.payment_events"
            )
            ledger = warehouse(root, "SELECT count(*) FROM raw.ledger")
            return (
                rows == [(len(event_writer.good), len(event_writer.good))]
                and ledger == [(len(expected),)]
                and producer.settled()
            )

        follow_until(root, caught_up, seconds=300)

        with Project.load(root) as project:
            w = project.warehouse
            found = w.fetchall("SELECT id, user_id, amount, happened FROM raw.ledger ORDER BY id")
            assert found == expected
            ids = {r[0] for r in w.fetchall("SELECT event_id FROM raw.payment_events")}
            assert ids == set(event_writer.good)
            dead = w.fetchall("SELECT message, reason FROM _gristmill.dead_letters")
            assert len(dead) == len(event_writer.malformed)
            assert all("not-a-number" in message and "amount" in r for message, r in dead)

            at = datetime.now(UTC) + timedelta(seconds=1)
            users = [{"user_id": u} for u in range(USERS)]
            read = OnlineReader(project).read(["ledger_spend", "spender"], users, at)
        ledger_reference: dict[int, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
        for _, user, amount, _ in expected:
            ledger_reference[user][0] += 1
            ledger_reference[user][1] += amount
        events_reference: dict[int, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
        for user, amount in event_writer.good.values():
            events_reference[user][0] += 1
            events_reference[user][1] += amount
        for user, values in enumerate(f.values for f in read):
            assert values["entries_30d"] == ledger_reference[user][0], user
            assert _decimal(values["total_30d"]) == ledger_reference[user][1], user
            assert values["payments_1d"] == events_reference[user][0], user
            assert _decimal(values["paid_1d"]) == events_reference[user][1], user
    finally:
        producer.close()
        db.close()

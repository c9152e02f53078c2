"""`gristmill schedule`: config, fire times across DST, catch-up, locking, retries, CLI."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from gristmill.catalog.base import FiringRecord
from gristmill.config import load_config
from gristmill.errors import ConfigError, GristmillError
from gristmill.graph.run import RunSummary, StepResult
from gristmill.graph.schedule import Firing, Scheduler, fire_times
from gristmill.project import Project
from tests.graph.conftest import GraphProject

DUCKDB = pytest.mark.parametrize("graph_project", ["duckdb"], indirect=True)
MINUTE = timedelta(minutes=1)


def _config(tmp_path: Path, schedule: str) -> Any:
    path = tmp_path / "gristmill.toml"
    path.write_text(f"[schedules.nightly]\n{schedule}\n")
    return load_config(path)


# -- config -------------------------------------------------------------------------------
def test_a_schedule_as_the_issue_writes_it(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        'cron = "0 2 * * *"\nselect = "ingest+"\ntimezone = "Africa/Lagos"\nretries = 2',
    )
    nightly = config.schedules["nightly"]
    assert (nightly.cron, nightly.select, nightly.timezone, nightly.retries) == (
        "0 2 * * *",
        ["ingest+"],
        "Africa/Lagos",
        2,
    )


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ('cron = "0 2 * *"', "schedules.nightly.cron: '0 2 * *' is not a cron expression"),
        ('cron = "0 25 * * *"', "schedules.nightly.cron: '0 25 * * *' is not a cron"),
        ('cron = "0 0 2 * * *"', "five fields"),
        (
            'cron = "0 2 * * *"\ntimezone = "Europe/Londn"',
            "schedules.nightly.timezone: unknown timezone 'Europe/Londn'."
            " Did you mean 'Europe/London'?",
        ),
        (
            'cron = "0 2 * * *"\nretry = 2',
            "schedules.nightly: unknown key 'retry'. Did you mean 'retries'?",
        ),
        ('cron = "0 2 * * *"\nretries = -1', "schedules.nightly.retries"),
        ('cron = "0 2 * * *"\nretry_delay = "soon"', "schedules.nightly.retry_delay"),
        ('select = "ingest+"', "schedules.nightly.cron: Field required"),
    ],
)
def test_invalid_schedules_name_the_schedule_and_key(
    tmp_path: Path, schedule: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, schedule)
    assert expected in str(caught.value)


# -- fire times ---------------------------------------------------------------------------
def _reference(cron: str, timezone: str, start: datetime, end: datetime) -> list[datetime]:
    """Brute force, minute by minute on the UTC timeline: a minute fires when it is a
    first occurrence of its wall time (fold 0) and a wall minute since the previous
    minute's (the one it shows, or those the clocks jumped over) matches `cron`."""
    zone = ZoneInfo(timezone)
    fired = []
    minute = start.replace(second=0, microsecond=0) + MINUTE  # the first whole one after
    while minute <= end:
        here = minute.astimezone(zone)
        if here.fold == 0:
            wall = (minute - MINUTE).astimezone(zone).replace(tzinfo=None) + MINUTE
            while wall <= here.replace(tzinfo=None):
                if croniter.match(cron, wall):
                    fired.append(minute)
                    break
                wall += MINUTE
        minute += MINUTE
    return fired


@pytest.mark.parametrize("cron", ["30 1 * * *", "0 2 * * *", "*/20 * * * *", "15 0-3 * * 0"])
@pytest.mark.parametrize(
    ("timezone", "day"),
    [
        ("Europe/London", "2026-03-29"),  # 01:00 GMT jumps to 02:00 BST
        ("Europe/London", "2026-10-25"),  # 02:00 BST goes back to 01:00 GMT
        ("America/New_York", "2026-11-01"),
        ("Australia/Lord_Howe", "2026-04-05"),  # a half-hour change
        ("Africa/Lagos", "2026-03-29"),  # no change at all
    ],
)
def test_fire_times_across_a_clock_change_match_brute_force(
    cron: str, timezone: str, day: str
) -> None:
    start = datetime.fromisoformat(day).replace(tzinfo=UTC) - timedelta(hours=14, seconds=30)
    end = start + timedelta(hours=40)
    expected = _reference(cron, timezone, start, end)
    assert expected, "the window should hold fire times"
    got = list(takewhile(lambda t: t <= end, fire_times(cron, timezone, start)))
    assert got == expected


def test_a_daily_job_fires_once_on_each_day_the_clocks_change() -> None:
    start = datetime(2026, 3, 28, tzinfo=UTC)
    forward = list(
        takewhile(lambda t: t.day < 31, fire_times("30 1 * * *", "Europe/London", start))
    )
    # 01:30 does not exist on 29 March: it fires when the jump ends, 02:00 BST.
    assert forward == [
        datetime(2026, 3, 28, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC),
    ]
    start = datetime(2026, 10, 24, tzinfo=UTC)
    back = list(takewhile(lambda t: t.day < 27, fire_times("30 1 * * *", "Europe/London", start)))
    # 01:30 happens twice on 25 October: it fires at the first, 01:30 BST.
    assert back == [
        datetime(2026, 10, 24, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
    ]


# -- the scheduler ------------------------------------------------------------------------
class FakeTime:
    """A clock that only sleeping moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.slept: list[float] = []

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def _add_schedules(p: GraphProject, text: str) -> None:
    config = p.root / "gristmill.toml"
    config.write_text(config.read_text() + "\n" + text)


def _summary(ok: bool, run_id: int = 1) -> RunSummary:
    status = "ok" if ok else "failed"
    return RunSummary(run_id, [StepResult("user_totals", "transform", status, error="boom")])


@DUCKDB
def test_catches_up_once_after_missed_slots(graph_project: GraphProject) -> None:
    p = graph_project
    _add_schedules(p, f'[schedules.hourly]\ncron = "0 * * * *"\nselect = "{p.raw}.orders"')
    fake = FakeTime(datetime(2026, 3, 1, 10, 0, 30, tzinfo=UTC))
    runs: list[datetime] = []

    def run_graph(project: Project, selectors: list[str], command: str) -> RunSummary:
        assert (selectors, command) == ([f"{p.raw}.orders"], f"schedule hourly: run {p.raw}.orders")
        runs.append(fake.now)
        return _summary(True)

    with Project.load(p.root) as project:
        # It last fired at 02:00: eight slots (03:00 to 10:00) went by since.
        project.catalog.record_firing(
            FiringRecord("hourly", "2026-03-01T02:00:00+00:00", "", "ok", 1, None)
        )
        scheduler = Scheduler(project, clock=fake.clock, sleep=fake.sleep, run_graph=run_graph)
        assert [f.schedule for f in scheduler.run_due()] == ["hourly"]
        assert scheduler.run_due() == []
        assert runs == [fake.now]

        def stop_after_three(firing: Firing) -> None:
            if len(runs) == 4:
                scheduler.stop()

        scheduler.on_done = stop_after_three
        scheduler.run_forever()
        assert runs[1:] == [datetime(2026, 3, 1, h, tzinfo=UTC) for h in (11, 12, 13)]
        # It slept until each slot, no longer than the poll interval at a time.
        assert max(fake.slept) <= 60
        fired = [r["fired_at"] for r in project.catalog.firings("hourly")]
        assert len(fired) == 5 and fired[0] == "2026-03-01T13:00:00.000+00:00"


@DUCKDB
def test_a_schedule_never_fired_is_due_at_once(graph_project: GraphProject) -> None:
    _add_schedules(graph_project, '[schedules.yearly]\ncron = "0 0 1 1 *"')
    fake = FakeTime(datetime(2026, 6, 1, tzinfo=UTC))
    with Project.load(graph_project.root) as project:
        scheduler = Scheduler(
            project,
            clock=fake.clock,
            sleep=fake.sleep,
            run_graph=lambda project, selectors, command: _summary(True),
        )
        assert scheduler.next_due("yearly") is None
        assert [f.ok for f in scheduler.run_due()] == [True]
        assert scheduler.next_due("yearly") == datetime(2027, 1, 1, tzinfo=UTC)


@DUCKDB
def test_retries_then_records_the_failure_and_goes_on(graph_project: GraphProject) -> None:
    _add_schedules(
        graph_project,
        '[schedules.a_broken]\ncron = "0 * * * *"\nretries = 2\nretry_delay = "5m"\n'
        '[schedules.b_flaky]\ncron = "0 * * * *"\nretries = 1\n'
        '[schedules.c_fine]\ncron = "0 * * * *"\n',
    )
    fake = FakeTime(datetime(2026, 6, 1, tzinfo=UTC))
    calls: list[str] = []

    def run_graph(project: Project, selectors: list[str], command: str) -> RunSummary:
        name = command.split()[1].rstrip(":")
        calls.append(name)
        if name == "a_broken":
            if calls.count(name) == 1:
                raise GristmillError("the warehouse is gone")
            return _summary(False, run_id=len(calls))
        return _summary(name == "c_fine" or calls.count(name) == 2, run_id=len(calls))

    with Project.load(graph_project.root) as project:
        scheduler = Scheduler(project, clock=fake.clock, sleep=fake.sleep, run_graph=run_graph)
        fired = {f.schedule: f for f in scheduler.run_due()}
        assert calls == ["a_broken"] * 3 + ["b_flaky"] * 2 + ["c_fine"]
        assert fake.slept == [300, 300, 60]
        assert (fired["a_broken"].status, fired["a_broken"].attempts) == ("failed", 3)
        assert fired["a_broken"].error == "user_totals: boom"
        assert (fired["b_flaky"].status, fired["b_flaky"].attempts) == ("ok", 2)
        assert fired["c_fine"].ok
        recorded = {r["schedule"]: r for r in project.catalog.firings()}
        assert {n: (r["status"], r["attempts"], r["run_id"]) for n, r in recorded.items()} == {
            "a_broken": ("failed", 3, 3),
            "b_flaky": ("ok", 2, 5),
            "c_fine": ("ok", 1, 6),
        }
        # A failed firing counts as fired: it is next due at its next slot, not at once.
        assert scheduler.next_due("a_broken") == datetime(2026, 6, 1, 1, tzinfo=UTC)


@DUCKDB
def test_two_schedulers_never_run_a_schedule_twice(graph_project: GraphProject) -> None:
    _add_schedules(graph_project, '[schedules.nightly]\ncron = "0 2 * * *"')
    running, most, runs = 0, 0, 0
    guard = threading.Lock()
    start = threading.Barrier(2)

    def run_graph(project: Project, selectors: list[str], command: str) -> RunSummary:
        nonlocal running, most, runs
        with guard:
            running += 1
            runs += 1
            most = max(most, running)
        time.sleep(0.3)
        with guard:
            running -= 1
        return _summary(True)

    fired: list[list[Firing]] = []

    def scheduler() -> None:
        # Each with its own project: its own catalog connection, like another process.
        with Project.load(graph_project.root) as project:
            instance = Scheduler(project, run_graph=run_graph)
            start.wait()
            fired.append(instance.run_due())
            # Found due by both, fired by one: the other, once the lock is free, sees
            # the firing and leaves it.
            fired.append([f for f in [instance.fire("nightly")] if f is not None])

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (most, runs) == (1, 1)
    assert sum(len(f) for f in fired) == 1
    with Project.load(graph_project.root) as project:
        assert len(project.catalog.firings("nightly")) == 1


@DUCKDB
def test_schedule_once_end_to_end(graph_project: GraphProject) -> None:
    p = graph_project
    p.write("user_totals.sql", "SELECT user_id, sum(amount) AS spent FROM orders GROUP BY 1")
    _add_schedules(
        p,
        f'[schedules.nightly]\ncron = "0 2 * * *"\nselect = "{p.raw}.orders+"\n'
        'timezone = "Africa/Lagos"\nretries = 1\nretry_delay = "1s"\n',
    )

    def schedule_once() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gristmill", "schedule", "--once", "-p", str(p.root)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = schedule_once()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "schedule nightly" in first.stdout and "ok" in first.stdout
    # The reference: the same sums computed from the application database itself.
    import sqlite3

    with sqlite3.connect(p.app) as db:
        expected = db.execute(
            "SELECT user_id, sum(amount) FROM orders GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert [(r["user_id"], float(r["spent"])) for r in p.rows("user_totals", "user_id")] == [
        (u, float(s)) for u, s in expected
    ]
    with Project.load(p.root) as project:
        [run] = project.catalog.runs(1)
        assert run["command"] == f"schedule nightly: run {p.raw}.orders+"
        assert run["status"] == "ok"
        [firing] = project.catalog.firings("nightly")
        assert (firing["status"], firing["run_id"]) == ("ok", run["id"])

    again = schedule_once()
    assert again.returncode == 0 and "nothing due" in again.stdout

    # A broken build, on a schedule that never fired: its retry, then exit code 1.
    p.write("user_totals.sql", "SELECT no_such_column FROM orders")
    _add_schedules(
        p,
        '[schedules.broken]\ncron = "0 2 * * *"\nselect = "user_totals"\nretries = 1\nretry_delay = "1s"\n',
    )
    failed = schedule_once()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "schedule broken fired (attempt 2)" in failed.stdout
    assert "schedule nightly" not in failed.stdout
    with Project.load(p.root) as project:
        [latest] = project.catalog.firings("broken")
        assert (latest["status"], latest["attempts"]) == ("failed", 2)
        assert "no_such_column" in latest["error"]
        assert [r["status"] for r in project.catalog.runs(2)] == ["failed", "failed"]


@DUCKDB
def test_sigterm_stops_the_scheduler_between_runs(graph_project: GraphProject) -> None:
    import signal

    p = graph_project
    _add_schedules(p, f'[schedules.often]\ncron = "*/5 * * * *"\nselect = "{p.raw}.users"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "gristmill", "schedule", "-p", str(p.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        firings: list[dict[str, Any]] = []
        while not firings and time.monotonic() < deadline:
            time.sleep(0.2)
            with Project.load(p.root) as project:
                firings = project.catalog.firings("often")
        assert [f["status"] for f in firings] == ["ok"]
        # While it waits, the scheduler holds no DuckDB file: another command reads it.
        users = _rows_when_free(p, f"{p.raw}.users")
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, out
    assert "schedule often fired" in out and "scheduler stopped" in out
    assert users == [
        {"id": 1, "name": "Ana", "country": "KE"},
        {"id": 2, "name": "Bo", "country": "UG"},
        {"id": 3, "name": "Chidi", "country": None},
    ]


def _rows_when_free(p: GraphProject, table: str) -> list[dict[str, Any]]:
    """The table's rows, once the scheduler has let go of the warehouse after its firing."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return p.rows(table, "id")
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


SLOW = """
    import time

    import pyarrow as pa

    from gristmill import transform


    @transform(inputs=["orders"])
    def slow_orders(orders: pa.Table) -> pa.Table:
        time.sleep(1.5)
        return orders.select(["id", "user_id"])
"""


@pytest.mark.parametrize("graph_project", ["postgres"], indirect=True)
def test_two_scheduler_processes_never_run_a_schedule_twice(graph_project: GraphProject) -> None:
    # PostgreSQL: a DuckDB warehouse file is opened by one process at a time anyway.
    p = graph_project
    p.write("slow_orders.py", SLOW)
    _add_schedules(p, '[schedules.nightly]\ncron = "0 2 * * *"\nselect = "+slow_orders"\n')
    command = [sys.executable, "-m", "gristmill", "schedule", "--once", "-p", str(p.root)]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert sum("schedule nightly fired" in out for out in outputs) == 1, outputs
    with Project.load(p.root) as project:
        assert len(project.catalog.firings("nightly")) == 1
        scheduled = [r for r in project.catalog.runs(10) if r["command"].startswith("schedule")]
        assert len(scheduled) == 1
    assert p.rows("slow_orders", "id") == [
        {"id": 1, "user_id": 1},
        {"id": 2, "user_id": 1},
        {"id": 3, "user_id": 2},
    ]


@DUCKDB
def test_stop_during_a_retry_wait_tries_no_more(graph_project: GraphProject) -> None:
    _add_schedules(graph_project, '[schedules.broken]\ncron = "0 * * * *"\nretries = 5\n')
    fake = FakeTime(datetime(2026, 6, 1, tzinfo=UTC))
    calls = 0

    def run_graph(project: Project, selectors: list[str], command: str) -> RunSummary:
        nonlocal calls
        calls += 1
        return _summary(False)

    with Project.load(graph_project.root) as project:
        scheduler = Scheduler(project, clock=fake.clock, run_graph=run_graph)

        def sleep_then_stop(seconds: float) -> None:
            fake.sleep(seconds)
            scheduler.stop()  # SIGTERM while it waits to retry

        scheduler.sleep = sleep_then_stop
        [firing] = scheduler.run_due()
        assert (calls, firing.attempts, firing.status) == (1, 1, "failed")
        assert scheduler.run_due() == []

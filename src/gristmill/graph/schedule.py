"""`gristmill schedule`: run the project's [schedules] in the foreground, without a server.

Each firing is a `gristmill run` of the schedule's selectors, recorded in the catalog
like one (its command names the schedule), plus a firing record that says when the
schedule fired: the schedule is next due at its first cron time after that. So a
scheduler started after several missed slots fires once, not once per slot, and a
schedule that never fired is due at once.

Two schedulers on one project never run the same schedule at the same time: a firing
holds an exclusive lock file under `.gristmill/locks/` and, once it has it, asks the
catalog again whether the schedule is still due (the other scheduler may just have run
it). Between firings the project's backends are closed: a scheduler that waits holds no
DuckDB warehouse file.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from gristmill.catalog.base import FiringRecord
from gristmill.config import ScheduleConfig, redact
from gristmill.durations import parse_duration
from gristmill.errors import ConfigError, GristmillError

if TYPE_CHECKING:
    from gristmill.graph.run import RunSummary, StepResult
    from gristmill.project import Project

log = logging.getLogger(__name__)

LOCKS = ".gristmill/locks"
POLL_SECONDS = 60.0
"""The longest a scheduler sleeps between looks at the catalog: a firing by another
scheduler, or a clock that jumped, is noticed within this."""

RunGraph = Callable[["Project", list[str], str], "RunSummary"]
"""Runs the selectors (recording the run under the command given): `graph.run.run`."""


def fire_times(cron: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """The instants (aware, UTC) at which `cron` fires in `timezone`, after `after`.

    The expression is matched against the wall clock of `timezone`. A wall-clock time
    that happens twice when the clocks go back fires once, at its first occurrence; one
    that never happens when they go forward fires at the instant the jump ends, so a
    daily job is neither doubled nor lost on the days the clocks change.
    """
    from croniter import croniter

    zone = ZoneInfo(timezone)
    # croniter walks naive wall-clock times, where DST cannot confuse it; each is then
    # placed on the timeline here.
    wall = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    walk = croniter(cron, wall)
    last = after
    while True:
        instant = _instant(walk.get_next(datetime), zone)
        # Wall times in a jump all land on its end, and after a repeated hour the walk
        # restarts behind `after`: only later instants are new.
        if instant > last:
            last = instant
            yield instant


def next_fire(cron: str, timezone: str, after: datetime) -> datetime:
    """The first instant (UTC) after `after` at which `cron` fires in `timezone`."""
    return next(fire_times(cron, timezone, after))


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    utc = wall.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the first occurrence
    if utc.astimezone(zone).replace(tzinfo=None) == wall:
        return utc
    # `wall` does not exist: the clocks jumped over it. With fold=1 it is placed with the
    # offset after the jump, which is before the jump: step to the jump's end.
    instant = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    before = instant.astimezone(zone).utcoffset()
    while instant.astimezone(zone).utcoffset() == before:
        instant += timedelta(minutes=1)
    return instant


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="milliseconds")


@dataclass
class Firing:
    """One firing of a schedule: its run, retried up to the schedule's `retries`."""

    schedule: str
    fired_at: datetime
    status: str
    """ok, failed or interrupted."""
    attempts: int
    run_id: int | None
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _run_graph(on_step: Callable[[StepResult], None] | None) -> RunGraph:
    def run_graph(project: Project, selectors: list[str], command: str) -> RunSummary:
        from gristmill.graph.run import run

        return run(project, selectors, on_step=on_step, command=command)

    return run_graph


def _failure(summary: RunSummary) -> str:
    failed = [s for s in summary.steps if not s.ok and s.status != "skipped"]
    if not failed:
        return f"run {summary.run_id} failed"
    return "; ".join(f"{s.name}: {s.error}" for s in failed)


class Scheduler:
    """Fires the project's schedules when they are due.

    `clock` (aware datetimes) and `sleep` (seconds) stand in for the real ones in tests;
    the default sleep wakes early when `stop` is called. `on_fire` hears of each firing
    as it starts (the schedule, the attempt), `on_done` of its outcome.
    """

    def __init__(
        self,
        project: Project,
        *,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] | None = None,
        run_graph: RunGraph | None = None,
        on_step: Callable[[StepResult], None] | None = None,
        on_fire: Callable[[str, int], None] | None = None,
        on_done: Callable[[Firing], None] | None = None,
    ) -> None:
        self.project = project
        self.schedules: dict[str, ScheduleConfig] = dict(sorted(project.config.schedules.items()))
        if not self.schedules:
            raise ConfigError(
                "The project has no schedules. Add one to gristmill.toml, for example:\n"
                '[schedules.nightly]\ncron = "0 2 * * *"\nselect = "ingest+"\n'
                'timezone = "Africa/Lagos"'
            )
        self._stopped = threading.Event()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.sleep = sleep or self._stopped.wait
        self.run_graph = run_graph or _run_graph(on_step)
        self.on_fire = on_fire or (lambda name, attempt: None)
        self.on_done = on_done or (lambda firing: None)
        self._check_selectors()
        self._busy: set[str] = set()
        """Schedules another scheduler was running when last looked at."""

    def _check_selectors(self) -> None:
        """Fail at start, not at the first firing hours later, on a selector that names nothing."""
        from gristmill.graph.load import load_graph

        try:
            graph = load_graph(self.project).graph
        finally:
            self.project.close()
        for name, schedule in self.schedules.items():
            try:
                graph.select(schedule.select)
            except ConfigError as exc:
                raise ConfigError(f"schedules.{name}.select: {exc}") from None

    # -- when ---------------------------------------------------------------------------
    def next_due(self, name: str) -> datetime | None:
        """When `name` is next due (UTC); None: now, it has never fired."""
        last = self.project.catalog.last_fired(name)
        if last is None:
            return None
        schedule = self.schedules[name]
        return next_fire(schedule.cron, schedule.timezone, _parse(last))

    def is_due(self, name: str, now: datetime) -> bool:
        due = self.next_due(name)
        return due is None or due <= now

    # -- firing -------------------------------------------------------------------------
    def run_due(self) -> list[Firing]:
        """Fire, one after the other, every schedule due now; what fired."""
        fired = []
        for name in self.schedules:
            if self._stopped.is_set():
                break
            if self.is_due(name, self.clock()):
                firing = self.fire(name)
                if firing is not None:
                    fired.append(firing)
        return fired

    def fire(self, name: str) -> Firing | None:
        """Run schedule `name` now, with its retries; None when another scheduler has it
        (running, or run since it was found due)."""
        with self._lock(name) as held:
            if not held:
                log.info("schedule %s is being run by another scheduler", name)
                self._busy.add(name)
                return None
            self._busy.discard(name)
            try:
                if not self.is_due(name, self.clock()):
                    return None
                return self._fire(name, self.schedules[name])
            finally:
                # Backends reopen on first use: closed while the scheduler waits, a
                # DuckDB warehouse file is free for other commands (and schedulers).
                self.project.close()

    def _fire(self, name: str, schedule: ScheduleConfig) -> Firing:
        fired_at = self.clock()
        command = f"schedule {name}: run" + "".join(f" {s}" for s in schedule.select)
        firing = Firing(name, fired_at, "failed", 0, None, 0.0)
        try:
            for attempt in range(1, schedule.retries + 2):
                if attempt > 1:
                    delay = parse_duration(schedule.retry_delay).total_seconds()
                    log.warning(
                        "schedule %s failed (%s); retrying in %gs", name, firing.error, delay
                    )
                    self.sleep(delay)  # the default sleep ends early on stop()
                    if self._stopped.is_set():
                        break
                firing.attempts = attempt
                log.info("schedule %s fired (attempt %d): %s", name, attempt, command)
                self.on_fire(name, attempt)
                try:
                    summary = self.run_graph(self.project, schedule.select, command)
                except GristmillError as exc:
                    firing.error = str(exc)
                else:
                    firing.run_id = summary.run_id
                    if summary.ok:
                        firing.status, firing.error = "ok", None
                        break
                    firing.error = _failure(summary)
        except KeyboardInterrupt:
            firing.status = "interrupted"
            raise
        finally:
            firing.seconds = (self.clock() - fired_at).total_seconds()
            self._record(firing)
        if not firing.ok:
            log.error(
                "schedule %s failed after %d attempts: %s", name, firing.attempts, firing.error
            )
        self.on_done(firing)
        return firing

    def _record(self, firing: Firing) -> None:
        firing.error = redact(firing.error) if firing.error else None
        self.project.catalog.record_firing(
            FiringRecord(
                firing.schedule,
                _iso(firing.fired_at),
                _iso(firing.fired_at + timedelta(seconds=firing.seconds)),
                firing.status,
                firing.attempts,
                firing.run_id,
                firing.error,
            )
        )

    @contextmanager
    def _lock(self, name: str) -> Iterator[bool]:
        """An exclusive lock on schedule `name` across processes (flock: held by the open
        file, so two schedulers in one process exclude each other too); False if taken."""
        directory = self.project.root / LOCKS
        directory.mkdir(parents=True, exist_ok=True)
        with Path(directory / f"schedule-{name}.lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- the loop -----------------------------------------------------------------------
    def run_forever(self) -> None:
        """Fire schedules as they fall due until `stop` is called (between runs)."""
        while not self._stopped.is_set():
            self.run_due()
            if self._stopped.is_set():
                break
            self.sleep(self._seconds_to_next())

    def _seconds_to_next(self) -> float:
        now = self.clock()
        wakes = [self.next_due(name) or now for name in self.schedules if name not in self._busy]
        seconds = (min(wakes) - now).total_seconds() if wakes else POLL_SECONDS
        return min(max(seconds, 0.0), POLL_SECONDS)

    def stop(self) -> None:
        """Stop after the run under way (and before any retry)."""
        self._stopped.set()

    @property
    def stopping(self) -> bool:
        return self._stopped.is_set()

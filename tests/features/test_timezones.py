"""A training set of events with a time zone and a spine without one is the same on any
machine: built in subprocesses under several TZ (and PGTZ), it equals a brute-force
reference that reads the spine's times as UTC."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from gristmill.features.pit import Selection, training_set_sql
from tests.conftest import _reachable
from tests.features.conftest import Engine
from tests.features.test_point_in_time import VIEW, reference

ZONES = ["UTC", "Asia/Kolkata", "America/St_Johns"]
"""UTC+5:30, and UTC-3:30 with daylight saving (from 2025-03-09 02:00 local time)."""
START = datetime(2025, 3, 8, 18, 0, tzinfo=UTC)
"""Half a day before St. John's moves its clocks, and across midnight in Kolkata."""
PATHS = {"join": 10**9, "frames": -1}
ROOT = Path(__file__).parents[2]


def data() -> tuple[list[tuple[Any, ...]], list[tuple[int, datetime]]]:
    """Events at aware moments, written in assorted zones; spine rows at naive UTC moments."""
    rng = random.Random(17)
    offsets = [timezone(timedelta(hours=h, minutes=m)) for h, m in [(0, 0), (5, 30), (-3, -30)]]
    events = [
        (
            rng.randint(1, 3),
            (START + timedelta(minutes=rng.randint(0, 24 * 60))).astimezone(rng.choice(offsets)),
            rng.choice([None, rng.randint(0, 100)]),
            rng.choice(["a", "b", "c", None]),
        )
        for _ in range(300)
    ]
    spine = [
        (
            rng.randint(1, 4),
            (START + timedelta(minutes=rng.randint(0, 26 * 60))).replace(tzinfo=None),
        )
        for _ in range(80)
    ]
    return events, spine


def build(engine_name: str) -> dict[str, list[list[Any]]]:
    """The training set by each path: its column names, then its rows."""
    engine = Engine(engine_name)
    events, spine = data()
    engine.load(events, spine, event_time_type="TIMESTAMPTZ")
    selection = Selection(VIEW, VIEW.columns(), '"events"')
    built = {}
    for path, dense_after in PATHS.items():
        sql = training_set_sql(
            "SELECT user_id, decided_at FROM spine",
            "decided_at",
            [selection],
            engine.dialect,
            dense_after=dense_after,
        )
        names, rows = engine.query(sql)
        built[path] = [names, *rows]
    return built


def engines() -> list[str]:
    reachable = _reachable("127.0.0.1", 5432)
    if not reachable and os.environ.get("CI"):
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (CI is set)")
    return ["duckdb", "postgres"] if reachable else ["duckdb"]


def test_a_training_set_does_not_depend_on_the_machines_time_zone() -> None:
    names = engines()
    builds = {}
    for zone in ZONES:
        env = {**os.environ, "TZ": zone, "PGTZ": zone}
        script = (
            "import json, sys; from tests.features.test_timezones import build;"
            f" print(json.dumps({{e: build(e) for e in {names!r}}}, default=str))"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        builds[zone] = json.loads(done.stdout)
    for zone in ZONES[1:]:
        assert builds[zone] == builds["UTC"], zone

    events, spine = data()
    as_utc = [(u, at.astimezone(UTC).replace(tzinfo=None), *rest) for u, at, *rest in events]
    for name in names:
        for path, [columns, *rows] in builds["UTC"][name].items():
            assert len(rows) == len(spine)
            for (user, at), row in zip(spine, rows, strict=True):
                found = dict(zip(columns, row, strict=True))
                for column, value in reference(as_utc, user, at, False).items():
                    got = found[column]  # a decimal (a PostgreSQL sum) came as text
                    got = float(got) if isinstance(got, str) else got
                    assert got == pytest.approx(value), (name, path, column, user, at)


HOURLY = """
from gristmill.features import FeatureView, aggregate

night = FeatureView(
    name="night",
    entity=["user_id"],
    timestamp="happened",
    source="payments",
    features=[aggregate("night", "count", windows=["7d"], filter="hour(happened) < 6")],
)
"""


def pushed(root: str) -> list[Any]:
    """Events with a time zone pushed through the Python API, read back: a filter on their
    hour is evaluated in UTC, as the warehouse evaluates it."""
    from gristmill.features.api import get_online_features, push
    from gristmill.project import Project

    # Two days ago: the serving clock keeps them (within the window) and takes them (past).
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    moments = [day.replace(hour=h, minute=30) for h in (1, 4, 7, 22)]
    with Project.load(Path(root)) as project:
        # The source whose column types a push is checked against.
        raw = project.config.warehouse.raw_schema
        project.warehouse.ensure_schema(raw)
        project.warehouse.execute(
            f"CREATE OR REPLACE TABLE {raw}.payments (user_id BIGINT, happened TIMESTAMPTZ)"
        )
        push(project, "night", [{"user_id": 1, "happened": m} for m in moments])
        [row] = get_online_features(project, ["night"], [{"user_id": 1}])
    return [row.values["night_7d"]]


def test_pushed_events_are_evaluated_in_utc(tmp_path: Path) -> None:
    from tests.helpers import write_project

    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "night.py").write_text(HOURLY)
    found = {}
    for zone in ZONES:
        online = {"path": str(tmp_path / f"online-{zone.replace('/', '-')}.sqlite")}
        write_project(tmp_path, {}, online=online)
        script = (
            "import json; from tests.features.test_timezones import pushed;"
            f" print(json.dumps(pushed({str(tmp_path)!r})))"
        )
        env = {**os.environ, "TZ": zone}
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        found[zone] = json.loads(done.stdout)
    assert found == {zone: [2] for zone in ZONES}  # 01:30 and 04:30 UTC

"""The serving clock, not the newest event, decides what is current: an event dated in
the future is refused (push) or left out (materialize), and cannot wipe an entity's
history, so a declined user stays declined."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from gristmill.errors import InvalidEventError
from gristmill.features.api import get_online_features, materialize, push
from gristmill.project import Project
from tests.features._helpers import now, payments_project

USER = 1


def history(moment: datetime) -> list[tuple[Any, ...]]:
    """User 1 declined five times in the last three days; user 2 paid once."""
    rows: list[tuple[Any, ...]] = [
        (USER, Decimal("20.00"), 0.9, f"shop{i}", True, moment - timedelta(hours=12 * i + 1))
        for i in range(5)
    ]
    rows.append((2, Decimal("5.00"), 0.1, "shop9", False, moment - timedelta(days=1)))
    return rows


def decide(project: Project, user: int = USER, at: datetime | None = None) -> str:
    """A fraud rule on the online features: three declines in a week block the user."""
    [features] = get_online_features(project, ["payments"], [{"user_id": user}], at=at)
    return "decline" if features.values["declines_7d"] >= 3 else "approve"


def forged(moment: datetime) -> dict[str, Any]:
    return {
        "user_id": USER,
        "amount": Decimal("1.00"),
        "score": 0.0,
        "shop": "innocent",
        "declined": False,
        "happened": moment,
    }


@pytest.mark.parametrize(
    "future",
    [timedelta(days=8), timedelta(days=31), None],
    ids=["8 days", "31 days", "year 9999"],
)
@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_a_forged_future_event_is_refused_and_the_user_stays_declined(
    tmp_path: Path, future: timedelta | None, store: str
) -> None:
    start = now()
    with (
        payments_project(tmp_path / "p", history(start), store=store) as root,
        Project.load(root) as project,
    ):
        materialize(project)
        assert decide(project) == "decline"
        moment = start + future if future is not None else datetime(9999, 12, 31, 23, 59)
        with pytest.raises(InvalidEventError) as refused:
            push(project, "payments", [forged(start - timedelta(minutes=1)), forged(moment)])
        error = refused.value
        assert (error.view, error.field, error.reason, error.index) == (
            "payments",
            "happened",
            "future_time",
            1,
        )
        assert moment.isoformat() in str(error) and "clock_skew" in str(error)
        # Refused whole: not even the honest first event was stored.
        [features] = get_online_features(project, ["payments"], [{"user_id": USER}])
        assert features.values["declines_7d"] == 5 and features.values["shops_7d"] == 5
        assert decide(project) == "decline"
        assert decide(project, at=start + timedelta(days=2)) == "decline"


def test_a_push_within_the_clock_skew_is_taken_and_counts_from_its_time(tmp_path: Path) -> None:
    start = now()
    with (
        payments_project(tmp_path / "p", history(start)) as root,
        Project.load(root) as project,
    ):
        materialize(project)
        soon = start + timedelta(minutes=4)
        assert push(project, "payments", [{**forged(soon), "declined": True}]) == 1
        [current] = get_online_features(project, ["payments"], [{"user_id": USER}])
        assert current.values["declines_7d"] == 5  # not yet: its time has not come
        later = soon + timedelta(seconds=1)
        [after] = get_online_features(project, ["payments"], [{"user_id": USER}], at=later)
        assert after.values["declines_7d"] == 6 and after.values["last_shop"] == "innocent"
        with pytest.raises(InvalidEventError, match="clock skew of 5 min"):
            push(project, "payments", [forged(start + timedelta(minutes=6))])


def test_the_clock_skew_is_configured(tmp_path: Path) -> None:
    start = now()
    with (
        payments_project(tmp_path / "p", history(start), online={"clock_skew": "30s"}) as root,
        Project.load(root) as project,
    ):
        with pytest.raises(InvalidEventError) as refused:
            push(project, "payments", [forged(start + timedelta(minutes=2))])
        assert refused.value.reason == "future_time"
        assert push(project, "payments", [forged(start + timedelta(seconds=5))]) == 1


def test_an_early_event_does_not_forget_the_latest_event_until_its_time(tmp_path: Path) -> None:
    """An entity whose only event is older than the view's span keeps it while the one
    pushed after it is still to come: as of now, it is the latest."""
    start = now()
    old = [(3, Decimal("7.00"), 0.5, "old_shop", False, start - timedelta(days=40))]
    with payments_project(tmp_path / "p", old) as root, Project.load(root) as project:
        materialize(project)
        [before] = get_online_features(project, ["payments.last_shop"], [{"user_id": 3}])
        assert before.values == {"last_shop": "old_shop"}
        push(project, "payments", [{**forged(start + timedelta(minutes=2)), "user_id": 3}])
        [meanwhile] = get_online_features(project, ["payments.last_shop"], [{"user_id": 3}])
        assert meanwhile.values == {"last_shop": "old_shop"}
        [then] = get_online_features(
            project, ["payments.last_shop"], [{"user_id": 3}], at=start + timedelta(minutes=3)
        )
        assert then.values == {"last_shop": "innocent"}


def test_materialize_leaves_out_and_counts_rows_beyond_the_clock(tmp_path: Path) -> None:
    """A forged row that reached the warehouse is no event yet: it neither counts nor
    moves the watermark, so the next run still picks up what happens meanwhile."""
    start = now()
    rows = [
        *history(start),
        tuple(forged(start + timedelta(days=31)).values()),
        tuple(forged(datetime(9999, 1, 1)).values()),
    ]
    with payments_project(tmp_path / "p", rows) as root:
        with Project.load(root) as project:
            [done] = materialize(project)
            assert (done.future_events, done.events, done.entities) == (2, 6, 2)
            assert decide(project) == "decline"
            assert decide(project, at=start + timedelta(days=2)) == "decline"
        with duckdb.connect(str(root / ".gristmill" / "warehouse.duckdb")) as db:
            db.execute(
                "INSERT INTO raw.payments VALUES (2, 3.00, 0.2, 'late', true, ?)",
                [start + timedelta(seconds=1)],
            )
        with Project.load(root) as project:
            [again] = materialize(project)
            assert (again.full, again.entities, again.future_events) == (False, 1, 2)
            [user] = get_online_features(
                project, ["payments"], [{"user_id": 2}], at=start + timedelta(minutes=1)
            )
            assert user.values["declines_7d"] == 1 and user.values["last_shop"] == "late"

"""Sums, means and counts of integer and decimal amounts are exact, on the batch path (the
join of sparse entities, the running totals of dense ones) and the online path alike,
whatever the magnitudes: a 1e12 amount, then cents; 2**53 + 1; signs that cancel. Those
of floating-point amounts stay within the bound pit.py states."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill.config import OnlineConfig
from gristmill.features.definition import FeatureView, aggregate
from gristmill.features.online import (
    Record,
    apply_events,
    compute,
    entity_key,
    event_rows_sql,
    to_micros,
)
from gristmill.features.pit import Selection, training_set_sql
from gristmill.online.sqlite import SQLiteOnlineStore
from tests.features.conftest import Engine

BASE = datetime(2025, 1, 1)
WINDOW = timedelta(hours=1)
VIEW = FeatureView(
    name="amounts",
    entity=["user_id"],
    timestamp="event_at",
    source="events",
    features=[
        aggregate("n", "count", windows=["1h"]),
        aggregate("total", "sum", "amount", windows=["1h"]),
        aggregate("avg", "mean", "amount", windows=["1h"]),
    ],
)
PATHS = {"join": 10**9, "frames": -1}
"""dense_after: every entity joined with its recent events, or every one by running totals."""

moments = st.integers(0, 240).map(lambda m: BASE + timedelta(minutes=m))
decimals = st.one_of(
    st.sampled_from(
        [
            *(Decimal("1e12"), Decimal("-1e12"), Decimal("0.01"), Decimal("-0.01")),
            *(Decimal("999999999999.99"), Decimal("9999999999999999.99")),
        ]
    ),
    st.decimals(min_value=-(10**16), max_value=10**16, places=2),
)
integers = st.one_of(
    st.sampled_from([2**53 + 1, -(2**53 + 1), 1, -1, 2**62 // 128]),
    st.integers(-(2**60), 2**60),
)
floats = st.one_of(
    st.sampled_from([1e12, -1e12, 0.01, -0.01, 0.1, 2.0**53 + 2]),
    st.floats(-1e15, 1e15, allow_nan=False),
)
spine = st.lists(st.tuples(st.integers(1, 2), moments), min_size=1, max_size=8)


def window_of(rows: list[tuple[Any, ...]], user: int, at: datetime) -> list[Any]:
    return [r[2] for r in rows if r[0] == user and at - WINDOW <= r[1] < at]


def exact(amounts: list[Any]) -> Fraction:
    return sum((Fraction(a) for a in amounts), Fraction(0))


def batch(
    engine: Engine, rows: list[tuple[Any, ...]], points: list[tuple[int, datetime]], path: str
) -> list[dict[str, Any]]:
    sql = training_set_sql(
        "SELECT user_id, decided_at FROM spine",
        "decided_at",
        [Selection(VIEW, VIEW.columns(), '"events"')],
        engine.dialect,
        dense_after=PATHS[path],
    )
    names, got = engine.query(sql)
    return [dict(zip(names, row, strict=True)) for row in got]


def online(
    engine: Engine, store: SQLiteOnlineStore, points: list[tuple[int, datetime]]
) -> list[dict[str, Any]]:
    """The loaded events through the online store (as materialize writes them), read at
    each spine row's time."""
    _, got = engine.query(event_rows_sql(VIEW, '"events"', engine.dialect))
    names = ["user_id", "_gm_time", *(f"_gm_in{i}" for i in range(3))]
    names += [f"_gm_keep{i}" for i in range(3)]
    columns = list(zip(*got, strict=True)) if got else [[] for _ in names]
    table = pa.table({n: pa.array(c) for n, c in zip(names, columns, strict=True)})
    earliest = min(to_micros(at) for _, at in points)
    apply_events(store, VIEW, table, now=earliest, replace=True)
    results = []
    for user, at in points:
        [[events]] = store.read_views([(VIEW.name, [entity_key([user])])])
        results.append(compute(VIEW, Record.decode(events), to_micros(at)))
    return results


def check_exact(got: dict[str, Any], amounts: list[Any], where: str) -> None:
    total = exact(amounts)
    assert got["n_1h"] == len(amounts), where
    if not amounts:
        assert got["total_1h"] is None and got["avg_1h"] is None, where
        return
    assert Fraction(got["total_1h"]) == total, (where, got["total_1h"], total)
    # The exact sum rounded once to a double, then divided (as both paths compute it).
    assert got["avg_1h"] == float(total) / len(amounts), (where, got["avg_1h"])


@pytest.fixture
def store(tmp_path: Path) -> SQLiteOnlineStore:
    return SQLiteOnlineStore(OnlineConfig(path=str(tmp_path / "online.sqlite")), tmp_path)


@pytest.mark.parametrize(
    ("kind", "column_type", "values"),
    [
        ("decimal", "DECIMAL(38, 2)", decimals),
        ("integer", "BIGINT", integers),
    ],
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), points=spine)
def test_sums_and_means_are_exact_on_every_path(
    engine: Engine,
    store: SQLiteOnlineStore,
    kind: str,
    column_type: str,
    values: st.SearchStrategy[Any],
    data: st.DataObject,
    points: list[tuple[int, datetime]],
) -> None:
    rows = data.draw(
        st.lists(st.tuples(st.just(1), moments, values, st.just("a")), min_size=1, max_size=60)
    )
    engine.load(rows, points, amount_type=column_type)
    found = {path: batch(engine, rows, points, path) for path in PATHS}
    found["online"] = online(engine, store, points)
    for path, results in found.items():
        for (user, at), got in zip(points, results, strict=True):
            check_exact(got, window_of(rows, user, at), f"{kind} {path} {user} {at}")


@pytest.mark.parametrize("path", [*PATHS, "online"])
def test_cents_after_a_trillion_are_kept(
    engine: Engine, store: SQLiteOnlineStore, path: str
) -> None:
    """The issue's case: 1e12, then a hundred cents, the trillion inside the window and
    (for the second spine row) just before it, where a dense entity's running totals
    still carry it."""
    rows = [(1, BASE, Decimal("1000000000000.00"), "a")]
    rows += [(1, BASE + timedelta(seconds=20 * (i + 1)), Decimal("0.01"), "a") for i in range(100)]
    rows += [(1, BASE + timedelta(minutes=61), Decimal("-0.03"), "a")]
    points = [(1, BASE + timedelta(minutes=59)), (1, BASE + timedelta(minutes=62))]
    engine.load(rows, points, amount_type="NUMERIC(18, 2)")
    results = (
        online(engine, store, points) if path == "online" else batch(engine, rows, points, path)
    )
    assert [Decimal(r["total_1h"]) for r in results] == [
        Decimal("1000000000001.00"),  # the trillion and its hundred cents
        Decimal("0.92"),  # the 95 cents from 00:02, less 3: the trillion gone
    ]
    for (user, at), got in zip(points, results, strict=True):
        check_exact(got, window_of(rows, user, at), path)


def float_bound(rows: list[tuple[Any, ...]], user: int, at: datetime) -> float:
    """pit.py's bound on a floating-point window sum's error, over the entity's events
    before `at`."""
    before = [abs(r[2]) for r in rows if r[0] == user and r[1] < at]
    return (2 * len(before) * 2.0**-53 + 1e-14) * sum(before)


@pytest.mark.parametrize("path", [*PATHS, "online"])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(st.just(1), moments, floats, st.just("a")), min_size=1, max_size=60),
    points=spine,
)
def test_sums_of_doubles_stay_within_the_stated_bound(
    engine: Engine,
    store: SQLiteOnlineStore,
    path: str,
    rows: list[tuple[Any, ...]],
    points: list[tuple[int, datetime]],
) -> None:
    engine.load(rows, points, amount_type="DOUBLE PRECISION")
    results = (
        online(engine, store, points) if path == "online" else batch(engine, rows, points, path)
    )
    for (user, at), got in zip(points, results, strict=True):
        amounts = window_of(rows, user, at)
        assert got["n_1h"] == len(amounts)
        if not amounts:
            assert got["total_1h"] is None
            continue
        total, bound = exact(amounts), float_bound(rows, user, at)
        error = abs(Fraction(got["total_1h"]) - total)
        assert error <= Fraction(bound) + Fraction(abs(float(total))) * 2**-52, (path, at)
        mean_error = abs(Fraction(got["avg_1h"]) - total / len(amounts))
        assert mean_error <= Fraction(bound / len(amounts)) + abs(total / len(amounts)) * 2**-51

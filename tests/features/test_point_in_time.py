"""Point-in-time training sets against a brute-force reference computed row by row."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill.dialects import dialect
from gristmill.features.definition import FeatureView, aggregate, expression
from gristmill.features.pit import Selection, training_set_sql
from gristmill.features.recent import DENSE_EVENTS_PER_BUCKET, dense_entities_sql
from tests.features.conftest import Engine

BASE = datetime(2025, 1, 1)
VIEW = FeatureView(
    name="velocity",
    entity=["user_id"],
    timestamp="event_at",
    source="events",
    ttl="3h",
    features=[
        aggregate("n", "count", windows=["1h", "4h"]),
        aggregate("total", "sum", "amount", windows=["2h"]),
        aggregate("avg", "mean", "amount", windows=["2h"]),
        aggregate("low", "min", "amount", windows=["2h"]),
        aggregate("high", "max", "amount", windows=["2h"]),
        aggregate("shops", "count_distinct", "shop", windows=["1h", "4h"]),
        aggregate("big_shops", "count_distinct", "shop", windows=["2h"], filter="amount >= 50"),
        aggregate("big", "count", windows=["4h"], filter="amount >= 50"),
        expression("last_amount", "amount"),
    ],
)
WINDOWS = {"1h": 1, "2h": 2, "4h": 4}

moments = st.integers(min_value=0, max_value=48).map(lambda q: BASE + timedelta(minutes=15 * q))
events = st.lists(
    st.tuples(
        st.integers(1, 3),
        moments,
        st.one_of(st.none(), st.integers(0, 100)),
        st.sampled_from(["a", "b", "c", None]),
    ),
    max_size=40,
)
spine = st.lists(st.tuples(st.integers(1, 4), moments), min_size=1, max_size=15)


def reference(
    rows: list[tuple[Any, ...]], user: int, at: datetime, inclusive: bool
) -> dict[str, Any]:
    """Every feature, row by row, as the definitions say."""
    before = [r for r in rows if r[0] == user and (r[1] < at or (inclusive and r[1] == at))]

    def within(hours: int) -> list[tuple[Any, ...]]:
        return [r for r in before if r[1] >= at - timedelta(hours=hours)]

    def amounts(hours: int) -> list[int]:
        return [r[2] for r in within(hours) if r[2] is not None]

    result: dict[str, Any] = {"n_1h": len(within(1)), "n_4h": len(within(4))}
    two = amounts(2)
    result["total_2h"] = sum(two) if two else None
    result["avg_2h"] = sum(two) / len(two) if two else None
    result["low_2h"] = min(two) if two else None
    result["high_2h"] = max(two) if two else None
    result["shops_1h"] = len({r[3] for r in within(1) if r[3] is not None})
    result["shops_4h"] = len({r[3] for r in within(4) if r[3] is not None})
    big = [r for r in within(2) if r[2] is not None and r[2] >= 50 and r[3] is not None]
    result["big_shops_2h"] = len({r[3] for r in big})
    result["big_4h"] = len([r for r in within(4) if r[2] is not None and r[2] >= 50])
    if before:
        latest = max(r[1] for r in before)
        tied = [r[2] for r in before if r[1] == latest]
        value = max((v for v in tied if v is not None), default=None)
        result["last_amount"] = value if at - latest <= timedelta(hours=3) else None
    else:
        result["last_amount"] = None
    return result


@pytest.mark.parametrize("inclusive", [False, True])
# Every entity joined with its recent events (the default on this data), or entities
# with more than 3 events in a 4h bucket taken by the window frames (a mix of both).
@pytest.mark.parametrize("dense_after", [DENSE_EVENTS_PER_BUCKET, 3], ids=["sparse", "mixed"])
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=events, points=spine)
def test_matches_the_reference(
    engine: Engine,
    rows: list[tuple[Any, ...]],
    points: list[tuple[int, datetime]],
    inclusive: bool,
    dense_after: int,
) -> None:
    engine.load(rows, points)
    selection = Selection(VIEW, VIEW.columns(), '"events"')
    sql = training_set_sql(
        "SELECT user_id, decided_at, label FROM spine",
        "decided_at",
        [selection],
        engine.dialect,
        inclusive,
        dense_after,
    )
    names, got = engine.query(sql)
    assert len(got) == len(points)
    for (user, at), row in zip(points, got, strict=True):
        values = dict(zip(names, row, strict=True))
        assert (values["user_id"], values["decided_at"]) == (user, at)  # the spine's order, kept
        assert list(values)[:3] == ["user_id", "decided_at", "label"]  # and only its columns
        expected = reference(rows, user, at, inclusive)
        for column, value in expected.items():
            found = values[column]
            if isinstance(value, float) or isinstance(found, float):
                assert found == pytest.approx(value), column
            else:
                assert found == value, (column, user, at)


@pytest.mark.parametrize("dense_after", [DENSE_EVENTS_PER_BUCKET, -1], ids=["join", "frames"])
def test_sums_of_single_precision_keep_their_digits_and_any_spine_column_name(
    engine: Engine, dense_after: int
) -> None:
    """Windows are differences of running totals: a REAL summed as a REAL (PostgreSQL's
    sum) would lose the small values after a large one. And the spine's columns come out
    whatever their names (PostgreSQL carries the spine row whole)."""
    rows = [
        (1, BASE, 1e8, "a"),
        (1, BASE + timedelta(hours=5), 1.5, "a"),
        (1, BASE + timedelta(hours=5, minutes=1), 2.25, "b"),
    ]
    engine.load(rows, [(1, BASE + timedelta(hours=5, minutes=30))], amount_type="REAL")
    view = FeatureView(
        name="floats",
        entity=["user_id"],
        timestamp="event_at",
        source="events",
        features=[
            aggregate("total", "sum", "amount", windows=["1h"]),
            aggregate("avg", "mean", "amount", windows=["1h"]),
        ],
    )
    sql = training_set_sql(
        "SELECT user_id, decided_at, label AS s FROM spine",
        "decided_at",
        [Selection(view, view.columns(), '"events"')],
        engine.dialect,
        dense_after=dense_after,
    )
    names, [row] = engine.query(sql)
    values = dict(zip(names, row, strict=True))
    assert names[:3] == ["user_id", "decided_at", "s"] and values["s"] is False
    assert float(values["total_1h"]) == pytest.approx(3.75)
    assert values["avg_1h"] == pytest.approx(1.875)


def test_a_busy_entity_takes_the_window_frames_and_agrees_with_the_join() -> None:
    """An entity with more events per bucket than DENSE_EVENTS_PER_BUCKET is computed by
    window frames (a join would pair each of its spine rows with all its recent events);
    the others by the join. Both give what either alone gives."""
    engine = Engine("duckdb")
    busy = [(1, BASE + timedelta(seconds=7 * i), i % 90 or None, "abc"[i % 3]) for i in range(600)]
    quiet = [(u, BASE + timedelta(minutes=40 * i), u * i, "a") for u in (2, 3) for i in range(9)]
    points = [(u, BASE + timedelta(minutes=13 * i)) for u in (1, 2, 3, 4) for i in range(30)]
    engine.load(busy + quiet, points)
    selection = Selection(VIEW, VIEW.columns(), '"events"')
    spine_sql = "SELECT user_id, decided_at, label FROM spine"

    results = [
        engine.query(
            training_set_sql(spine_sql, "decided_at", [selection], dialect("duckdb"), False, d)
        )
        for d in (DENSE_EVENTS_PER_BUCKET, -1, 10**9)  # mixed, all frames, all joined
    ]

    dense = engine.query(
        f"SELECT count(DISTINCT user_id) FROM ({dense_entities_sql(selection, dialect('duckdb'), DENSE_EVENTS_PER_BUCKET)})"
    )[1]
    assert dense == [(1,)]
    assert results[0] == results[1] == results[2]
    for (user, at), row in zip(points, results[0][1], strict=True):
        values = dict(zip(results[0][0], row, strict=True))
        for column, value in reference(busy + quiet, user, at, False).items():
            assert values[column] == pytest.approx(value), (column, user, at)


DISTINCT = FeatureView(
    name="shops",
    entity=["user_id"],
    timestamp="event_at",
    source="events",
    features=[
        aggregate("shops", "count_distinct", "shop", windows=["30m", "1h", "2h"]),
        aggregate("big_shops", "count_distinct", "shop", windows=["1h"], filter="amount >= 50"),
    ],
)
# Few moments, values and users: the same shop again and again, at the same instant, on a
# window's edge, and a spine row a microsecond either side of an event.
instants = st.integers(0, 6).map(lambda q: BASE + timedelta(minutes=30 * q))
nudged = st.tuples(instants, st.sampled_from([-1, 0, 1])).map(
    lambda p: p[0] + timedelta(microseconds=p[1])
)
repeated = st.lists(
    st.tuples(
        st.integers(1, 2),
        instants,
        st.sampled_from([None, 10, 60]),
        st.sampled_from(["a", "b", None]),
    ),
    max_size=30,
)


@pytest.mark.parametrize("inclusive", [False, True])
@pytest.mark.parametrize("dense_after", [DENSE_EVENTS_PER_BUCKET, -1], ids=["join", "frames"])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=repeated, points=st.lists(st.tuples(st.integers(1, 3), nudged), min_size=1, max_size=10)
)
def test_distinct_counts_with_repeats_ties_and_nulls_match_the_reference(
    engine: Engine,
    rows: list[tuple[Any, ...]],
    points: list[tuple[int, datetime]],
    inclusive: bool,
    dense_after: int,
) -> None:
    """The join counts each value once, by the event of its latest occurrence before the
    spine row; the frames by the runs of its occurrences. Both as a set of values would."""
    engine.load(rows, points)
    sql = training_set_sql(
        "SELECT user_id, decided_at, label FROM spine",
        "decided_at",
        [Selection(DISTINCT, DISTINCT.columns(), '"events"')],
        engine.dialect,
        inclusive,
        dense_after,
    )
    names, got = engine.query(sql)
    for (user, at), row in zip(points, got, strict=True):
        values = dict(zip(names, row, strict=True))
        expected = {
            f"shops_{w}": _shops(rows, user, at, inclusive, w, 0) for w in ("30m", "1h", "2h")
        }
        expected["big_shops_1h"] = _shops(rows, user, at, inclusive, "1h", 50)
        assert {c: values[c] for c in expected} == expected, (user, at)


def _shops(
    rows: list[tuple[Any, ...]], user: int, at: datetime, inclusive: bool, window: str, least: int
) -> int:
    """The distinct shops of `user` in the window before `at`, of events whose amount is
    at least `least` (a NULL amount counts as 0)."""
    start = (
        at
        - {"30m": timedelta(minutes=30), "1h": timedelta(hours=1), "2h": timedelta(hours=2)}[window]
    )
    return len(
        {
            shop
            for u, t, amount, shop in rows
            if u == user
            and shop is not None
            and start <= t
            and (t < at or (inclusive and t == at))
            and (amount or 0) >= least
        }
    )

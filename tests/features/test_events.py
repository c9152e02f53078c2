"""Pushed events are held to their view's source column types: hostile values are refused
whole with an InvalidEventError naming the event and the field, never stored, never a
raw DuckDB error; every valid value goes through and reads back as it was sent."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill.errors import InvalidEventError
from gristmill.features.api import Pusher, get_online_features, materialize
from gristmill.project import Project
from tests.conftest import PG_URL, require_server
from tests.features._helpers import COLUMNS, VIEW, now, payments_project

START = now()
EVENT: dict[str, Any] = {
    "user_id": 7,
    "amount": 12.5,
    "score": 0.25,
    "shop": "s1",
    "declined": False,
    "happened": (START - timedelta(hours=1)).isoformat() + "Z",
}


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    rows = [(7, Decimal("1.00"), 0.5, "s0", False, START - timedelta(days=1))]
    root = tmp_path_factory.mktemp("events") / "p"
    with payments_project(root, rows), Project.load(root) as loaded:
        materialize(loaded)
        yield loaded


@pytest.fixture(scope="module")
def pusher(project: Project) -> Iterator[Pusher]:
    made = Pusher(project)
    yield made
    made.close()


def stored(project: Project, user: int = 7) -> dict[str, Any]:
    [features] = get_online_features(project, ["payments"], [{"user_id": user}])
    return features.values


HOSTILE = [
    ("user_id", "abc", "wrong_type"),
    ("user_id", "7", "wrong_type"),
    ("user_id", 5.5, "wrong_type"),
    ("user_id", 5.0, "wrong_type"),
    ("user_id", True, "wrong_type"),
    ("user_id", 2**63, "out_of_range"),
    ("user_id", -(2**63) - 1, "out_of_range"),
    ("user_id", 10**400, "out_of_range"),
    ("user_id", math.nan, "not_finite"),
    ("user_id", None, "missing"),
    ("score", math.nan, "not_finite"),
    ("score", math.inf, "not_finite"),
    ("score", -math.inf, "not_finite"),
    ("score", 10**400, "out_of_range"),
    ("score", Decimal("1e400"), "out_of_range"),
    ("score", "1.5", "wrong_type"),
    ("score", False, "wrong_type"),
    ("score", {"$gt": 1}, "wrong_type"),
    ("amount", 1.005, "inexact"),
    ("amount", Decimal("0.001"), "inexact"),
    ("amount", "12.345", "inexact"),
    ("amount", 10**10, "out_of_range"),
    ("amount", "-12345678901", "out_of_range"),
    ("amount", 10**400, "out_of_range"),
    ("amount", math.nan, "not_finite"),
    ("amount", "NaN", "not_finite"),
    ("amount", Decimal("-Infinity"), "not_finite"),
    ("amount", "lots", "malformed"),
    ("amount", [1], "wrong_type"),
    ("shop", 5, "wrong_type"),
    ("shop", "\ud800", "malformed"),
    ("shop", deep(10_000), "wrong_type"),
    ("shop", {"nested": "object"}, "wrong_type"),
    ("declined", "yes", "wrong_type"),
    ("declined", 1, "wrong_type"),
    ("happened", "yesterday", "malformed"),
    ("happened", "10000-01-01T00:00:00", "malformed"),
    ("happened", 1_700_000_000, "wrong_type"),
    ("happened", None, "missing"),
    ("amout", 5, "unknown_field"),
]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    HOSTILE,
    ids=[f"{field}-{reason}-{n}" for n, (field, _, reason) in enumerate(HOSTILE)],
)
def test_a_hostile_value_is_refused_naming_the_field_and_nothing_is_stored(
    project: Project, pusher: Pusher, field: str, value: Any, reason: str
) -> None:
    before = stored(project)
    good = {**EVENT, "shop": "never"}
    with pytest.raises(InvalidEventError) as refused:
        pusher.push("payments", [good, {**EVENT, field: value}])
    error = refused.value
    assert (error.view, error.field, error.reason, error.index) == ("payments", field, reason, 1)
    message = str(error)
    assert f"events[1].{field}" in message and "Nothing was stored" in message
    assert len(message) < 400  # a 10**400 or a deep list is described, not printed
    assert "Error:" not in message  # DuckDB's "Binder Error:" and kin never reach the user
    assert stored(project) == before


def test_missing_keys_unknown_fields_and_non_objects(project: Project, pusher: Pusher) -> None:
    without_key = {k: v for k, v in EVENT.items() if k != "user_id"}
    with pytest.raises(InvalidEventError, match=r"events\[0\]\.user_id") as missing:
        pusher.push("payments", [without_key])
    assert missing.value.reason == "missing"
    with pytest.raises(InvalidEventError, match="Did you mean 'amount'") as unknown:
        pusher.push("payments", [{**EVENT, "amout": 5}])
    assert unknown.value.reason == "unknown_field"
    with pytest.raises(InvalidEventError) as junk:
        pusher.push("payments", [EVENT, "not an event"])
    assert (junk.value.reason, junk.value.index, junk.value.field) == ("malformed", 1, None)


def test_nan_made_by_a_features_sql_is_refused(tmp_path: Path) -> None:
    """Finite values can still make a NaN in a view's own SQL: that is refused too, so
    that no later read of the entity meets one."""
    view = VIEW.replace(
        'expression("last_shop", "shop"),', 'expression("root", "sqrt(score)"),'
    ).replace('aggregate("score", "max", "score", windows=["1d"]),', "")
    with payments_project(tmp_path / "p", [], view=view) as root, Project.load(root) as project:
        with pytest.raises(InvalidEventError) as refused:
            Pusher(project).push("payments", [EVENT, {**EVENT, "score": -1.0}])
        error = refused.value
        assert (error.reason, error.field, error.index) == ("not_finite", "root", 1)
        [features] = get_online_features(project, ["payments"], [{"user_id": 7}])
        assert features.values["root"] is None and features.values["declines_7d"] == 0


def test_a_failing_feature_sql_is_said_without_duckdb_internals(tmp_path: Path) -> None:
    view = VIEW.replace('expression("last_shop", "shop"),', 'expression("n", "CAST(shop AS INT)"),')
    with payments_project(tmp_path / "p", [], view=view) as root, Project.load(root) as project:
        with pytest.raises(InvalidEventError) as refused:
            Pusher(project).push("payments", [{**EVENT, "shop": "abc"}])
        assert refused.value.reason == "malformed"
        assert "feature SQL fails" in str(refused.value) and "Error:" not in str(refused.value)


def test_types_come_from_the_store_once_materialized(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server checks pushes without asking the warehouse (which another process may
    hold locked): materialize cached the types in the online store."""

    from gristmill.features import events

    def unreachable(*args: Any) -> Any:
        raise AssertionError("the warehouse was asked")

    materialize(project)
    monkeypatch.setattr(events, "source_types", unreachable)
    fresh = Pusher(project)
    assert fresh.push("payments", [{**EVENT, "user_id": 8}]) == 1
    fresh.close()


def test_without_materialize_the_types_come_from_the_warehouse(tmp_path: Path) -> None:
    with payments_project(tmp_path / "p", []) as root, Project.load(root) as project:
        pusher = Pusher(project)
        assert pusher.push("payments", [EVENT]) == 1
        with pytest.raises(InvalidEventError, match="expected an integer"):
            pusher.push("payments", [{**EVENT, "user_id": "7"}])
        pusher.close()
        assert stored(project)["paid_1d"] == Decimal("12.50")


INT64 = st.integers(-(2**63), 2**63 - 1)
AMOUNTS = st.decimals(
    min_value=Decimal("-9999999999.99"),
    max_value=Decimal("9999999999.99"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)
ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=3, minutes=30))]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    user=INT64,
    amount=st.one_of(AMOUNTS, AMOUNTS.map(str), st.integers(-(10**9), 10**9)),
    score=st.floats(allow_nan=False, allow_infinity=False),
    shop=st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
    declined=st.booleans(),
    ago=st.integers(1, 23 * 3600 * 1_000_000),
    zone=ZONES,
    as_text=st.booleans(),
)
def test_valid_events_read_back_as_sent(
    project: Project,
    pusher: Pusher,
    user: int,
    amount: Any,
    score: float,
    shop: str,
    declined: bool,
    ago: int,
    zone: timezone,
    as_text: bool,
) -> None:
    clock = datetime.now(UTC)
    moment = (clock - timedelta(microseconds=ago)).astimezone(zone)
    project.online.clear("payments")
    event = {
        "user_id": user,
        "amount": amount,
        "score": score,
        "shop": shop,
        "declined": declined,
        "happened": moment.isoformat() if as_text else moment,
    }
    assert pusher.push("payments", [event]) == 1
    [read] = get_online_features(project, ["payments"], [{"user_id": user}], at=clock)
    values = read.values
    assert Decimal(str(values["paid_1d"])) == Decimal(str(amount))
    assert values["score_1d"] == score and values["last_shop"] == shop
    assert values["declines_7d"] == int(declined) and values["shops_7d"] == 1
    assert read.age_seconds["payments"] == pytest.approx(ago / 1e6, abs=1e-6)


def test_an_arrow_table_is_checked_alike(project: Project, pusher: Pusher) -> None:
    import pyarrow as pa

    good = pa.Table.from_pylist([{**EVENT, "user_id": 9, "happened": START}])
    assert pusher.push("payments", good) == 1
    bad = pa.Table.from_pylist([{**EVENT, "user_id": "9", "happened": START}])
    with pytest.raises(InvalidEventError) as refused:
        pusher.push("payments", bad)
    assert (refused.value.field, refused.value.reason) == ("user_id", "wrong_type")


def test_a_time_zone_aware_source_column(tmp_path: Path) -> None:
    """A TIMESTAMPTZ event time takes times with any offset, and the clock rule holds in
    UTC whatever the offset says."""
    columns = COLUMNS.replace("happened TIMESTAMP", "happened TIMESTAMPTZ")
    with (
        payments_project(tmp_path / "p", [], columns=columns) as root,
        Project.load(root) as project,
    ):
        pusher = Pusher(project)
        clock = datetime.now(UTC)
        kolkata = timezone(timedelta(hours=5, minutes=30))
        sent = {
            **EVENT,
            "happened": (clock - timedelta(minutes=30)).astimezone(kolkata).isoformat(),
        }
        assert pusher.push("payments", [sent]) == 1
        [read] = get_online_features(project, ["payments"], [{"user_id": 7}], at=clock)
        assert read.age_seconds["payments"] == pytest.approx(1800, abs=1e-3)
        ahead = (clock + timedelta(hours=1)).astimezone(kolkata).isoformat()
        with pytest.raises(InvalidEventError) as refused:
            pusher.push("payments", [{**EVENT, "happened": ahead}])
        assert refused.value.reason == "future_time"
        # A naive time is UTC: 5h30 later than the same wall time in Kolkata.
        naive = (clock - timedelta(minutes=1)).replace(tzinfo=None).isoformat()
        assert pusher.push("payments", [{**EVENT, "happened": naive}]) == 1
        pusher.close()


def test_a_numeric_without_precision_on_postgres_takes_any_finite_number(
    tmp_path: Path, unique_name: str
) -> None:
    """PostgreSQL's NUMERIC without a precision has no decimal type of its own: an empty
    result would make it DECIMAL(1,0) and refuse 12.5 as inexact."""
    import psycopg
    import tomli_w

    require_server("PostgreSQL", "127.0.0.1", 5432)
    with psycopg.connect(PG_URL, autocommit=True) as db:
        db.execute(f'CREATE SCHEMA "{unique_name}"')
        db.execute(
            f'CREATE TABLE "{unique_name}".payments (user_id BIGINT, amount NUMERIC,'
            " score DOUBLE PRECISION, shop TEXT, declined BOOLEAN, happened TIMESTAMP,"
            " fee NUMERIC(4, 2))"
        )
    root = tmp_path / "p"
    (root / "features").mkdir(parents=True)
    view = VIEW.replace("raw.payments", f"{unique_name}.payments")
    (root / "features" / "view.py").write_text(view)
    warehouse = {"type": "postgres", "url": PG_URL, "raw_schema": unique_name}
    (root / "gristmill.toml").write_text(tomli_w.dumps({"name": "pg", "warehouse": warehouse}))
    try:
        with Project.load(root) as project:
            pusher = Pusher(project)
            assert pusher.push("payments", [{**EVENT, "amount": 12.345678901, "fee": 1.5}]) == 1
            with pytest.raises(InvalidEventError) as refused:
                pusher.push("payments", [{**EVENT, "fee": 1.555}])
            assert (refused.value.field, refused.value.reason) == ("fee", "inexact")
            with pytest.raises(InvalidEventError) as nan:
                pusher.push("payments", [{**EVENT, "amount": math.nan}])
            assert (nan.value.field, nan.value.reason) == ("amount", "not_finite")
            pusher.close()
            assert stored(project)["paid_1d"] == pytest.approx(12.345678901)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as db:
            for schema in (unique_name, f"_gristmill_{unique_name}"):
                db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

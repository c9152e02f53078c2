"""Profile statistics against numpy and pandas, on every warehouse."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from gristmill.errors import ConfigError, NotFoundError
from gristmill.profile import profile
from gristmill.project import Project
from tests.profile.conftest import ProfileProject

N = 500
rng = np.random.default_rng(3)
amounts = np.round(rng.gamma(2.0, 30.0, N), 2)
ages = rng.integers(18, 80, N).astype(float)
ages[::7] = np.nan
start = datetime(2025, 1, 1, tzinfo=UTC)
TABLE = pa.table(
    {
        "id": pa.array(range(N), pa.int64()),
        "age": pa.array(ages, pa.float64(), mask=np.isnan(ages)),
        "amount": pa.array([Decimal(f"{a:.2f}") for a in amounts], pa.decimal128(12, 2)),
        "city": pa.array([["Nairobi", "Kampala", "Zürich", "東京"][i % 4] for i in range(N)]),
        "at": pa.array(
            [start + timedelta(hours=i) for i in range(N)], pa.timestamp("us", tz="UTC")
        ),
        "day": pa.array([date(2025, 1, 1) + timedelta(days=i % 30) for i in range(N)]),
        "flag": pa.array([i % 3 == 0 for i in range(N)]),
        "nothing": pa.array([None] * N, pa.int32()),
        "same": pa.array([7] * N, pa.int32()),
        "bad": pa.array([(i % 3 == 0) if i % 5 else None for i in range(N)]),
    }
)


def test_statistics_match_pandas(profile_project: ProfileProject) -> None:
    name = profile_project.load("people", TABLE)
    with Project.load(profile_project.root) as project:
        result = profile(project, name)
    frame = TABLE.to_pandas()
    assert result.rows == N and result.duplicate_rows == 0
    for column in result.columns:
        series = frame[column.name]
        assert column.count == series.count(), column.name
        assert column.missing == series.isna().sum(), column.name
        assert column.distinct == series.nunique(), column.name
    age = result.column("age")
    assert age.mean == pytest.approx(frame["age"].mean())
    assert age.std == pytest.approx(frame["age"].std())
    assert age.min == frame["age"].min() and age.max == frame["age"].max()
    assert age.quantiles["p50"] == pytest.approx(frame["age"].quantile(0.5))
    assert age.quantiles["p95"] == pytest.approx(frame["age"].quantile(0.95))
    assert sum(age.histogram.counts) == age.count  # type: ignore[union-attr]
    amount = result.column("amount")
    assert amount.mean == pytest.approx(float(amounts.mean()))
    assert amount.zeros == int((amounts == 0).sum()) and amount.negatives == 0
    city = result.column("city")
    assert city.kind == "text" and city.text_length == {"min": 2.0, "mean": 5.5, "max": 7.0}
    assert {t.value: t.count for t in city.top} == frame["city"].value_counts().to_dict()
    at = result.column("at")
    assert at.kind == "temporal" and at.min.startswith("2025-01-01")
    assert "all_missing" in result.column("nothing").flags
    assert "constant" in result.column("same").flags
    assert result.candidate_keys == ["id", "at"]
    assert result.correlations["id"]["age"] == pytest.approx(frame["id"].corr(frame["age"]))


def test_binary_target_rates_woe_and_iv(profile_project: ProfileProject) -> None:
    name = profile_project.load("people", TABLE)
    with Project.load(profile_project.root) as project:
        result = profile(project, name, target="flag")
    assert result.target_rate == pytest.approx(TABLE["flag"].to_pandas().mean())
    city = result.column("city").target
    assert city is not None
    frame = TABLE.to_pandas()
    positives, negatives = frame["flag"].sum(), (~frame["flag"]).sum()
    expected_iv = 0.0
    for label, group in frame.groupby("city"):
        pos, neg = group["flag"].sum(), (~group["flag"]).sum()
        share_pos, share_neg = (pos + 0.5) / (positives + 0.5), (neg + 0.5) / (negatives + 0.5)
        expected_iv += (share_neg - share_pos) * math.log(share_neg / share_pos)
        found = next(b for b in city.bins if b.label == label)
        assert (found.count, found.positives) == (len(group), pos)
    assert city.iv == pytest.approx(expected_iv)
    # The id cycles with the flag (i % 3): a weak relation, not a leak; `bad` copies it.
    assert "leakage" in result.column("bad").flags
    assert "leakage" not in result.column("age").flags
    with pytest.raises(ConfigError, match="binary target"):
        profile(project_reopened(profile_project), name, target="age")


def project_reopened(profile_project: ProfileProject) -> Project:
    return Project.load(profile_project.root)


def test_time_drift_and_leak_after_decision(profile_project: ProfileProject) -> None:
    n = 1200
    created = [datetime(2025, 1, 1) + timedelta(hours=6 * i) for i in range(n)]
    table = pa.table(
        {
            "created": pa.array(created, pa.timestamp("us")),
            # Its distribution moves: small in the first month, large in the last.
            "amount": pa.array([float(i // 2) for i in range(n)]),
            "stable": pa.array([i % 10 for i in range(n)], pa.int32()),
            "charged_back_at": pa.array(
                [c + timedelta(days=3) for c in created], pa.timestamp("us")
            ),
            "label": pa.array([i % 2 == 0 for i in range(n)]),
        }
    )
    name = profile_project.load("events", table)
    with Project.load(profile_project.root) as project:
        result = profile(project, name, target="label", time="created")
    assert result.time is not None and result.time.grain == "week"
    assert (result.time.first, result.time.last) == ("2024-12-30", "2025-10-20")  # not 4 rows
    assert sum(n for _, n in result.time.periods) == n
    assert result.column("amount").psi > 1 and "drift" in result.column("amount").flags
    assert result.column("stable").psi < 0.1
    leak = result.column("charged_back_at")
    assert "leakage" in leak.flags and any("later than created" in w for w in result.warnings)


def test_sample_and_compare(profile_project: ProfileProject) -> None:
    name = profile_project.load("people", TABLE)
    shifted = TABLE.set_column(1, "age", pa.array(ages + 30, pa.float64(), mask=np.isnan(ages)))
    other = profile_project.load("people_later", shifted)
    with Project.load(profile_project.root) as project:
        sampled = profile(project, name, sample=100)
        compared = profile(project, name, compare=other)
    assert sampled.sampled == 100 and sampled.rows == 100
    assert compared.compared_with == other
    assert compared.column("age").psi > 0.25 and compared.column("city").psi == pytest.approx(0)


def test_unknown_tables_and_columns(profile_project: ProfileProject) -> None:
    profile_project.load("people", TABLE)
    with Project.load(profile_project.root) as project:
        with pytest.raises(NotFoundError, match="Did you mean"):
            profile(project, "peopel")
        with pytest.raises(ConfigError, match="Did you mean 'flag'"):
            profile(project, "people", target="flg")

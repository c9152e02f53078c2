"""The same table profiles the same on DuckDB and PostgreSQL, and both agree with a
brute-force computation in Python: statistics, bins against a target, weight of evidence,
information value, the binned AUC (always within [0, 1]), periods and drift.

The PostgreSQL session and this process run in two different non-UTC time zones, and the
PostgreSQL text column has a linguistic, case-blind collation: none may change a figure."""

from __future__ import annotations

import math
import time as clock
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from gristmill.profile import profile
from gristmill.profile.bins import CATEGORIES, MISSING, OTHER
from gristmill.profile.model import ColumnProfile, TableProfile
from gristmill.profile.stats import DECILES, HISTOGRAM_BINS, QUANTILES, TOP_VALUES
from gristmill.project import Project
from tests.conftest import PG_URL, require_server
from tests.helpers import psi_by_hand, write_project

N = 480
rng = np.random.default_rng(11)
START = datetime(2026, 3, 1)
created = [START + timedelta(seconds=int(s)) for s in rng.integers(0, 50 * 86_400, N)]
# Within three hours: deciles a few minutes apart, which epoch seconds printed to four
# digits (1.772e+09) cannot tell apart.
seen_offsets = np.sort(rng.integers(0, 3 * 3_600, N))
flag = rng.random(N) < np.where(seen_offsets > 2 * 3_600, 0.6, 0.15)
CITIES = ["apple", "Zürich", "Ärger", "東京", "zebra", "Zebra", "b", "B", "ñandú", "O'Brien"]
CITIES += ["x y", "😀"]
amounts = np.round(rng.normal(50, 40, N), 2)
amounts[::9] = 0
scores = rng.normal(0, 1, N)
scores[[5, 35]], scores[7], scores[11] = math.nan, math.inf, -math.inf
TABLE = pa.table(
    {
        "id": pa.array(range(N), pa.int64()),
        "amount": pa.array(
            [None if i % 13 == 0 else Decimal(f"{a:.2f}") for i, a in enumerate(amounts)],
            pa.decimal128(12, 2),
        ),
        "score": pa.array([None if i % 6 == 0 else float(s) for i, s in enumerate(scores)]),
        "rate": pa.array([[0.5, 1.0, 2.0, 1.5][i % 4] for i in range(N)]),
        "city": pa.array([CITIES[int(i)] for i in rng.integers(0, len(CITIES), N)]),
        "kind": pa.array([["pay", "send", "top up"][i % 3] for i in range(N)]),
        "created_at": pa.array(created, pa.timestamp("us")),
        "seen_at": pa.array(
            [
                datetime(2026, 4, 1, 22, tzinfo=UTC) + timedelta(seconds=int(s))
                for s in seen_offsets
            ],
            pa.timestamp("us", tz="UTC"),
        ),
        "day": pa.array(
            [date(2026, 3, 1) + timedelta(days=int(d)) for d in rng.integers(0, 20, N)]
        ),
        "flag": pa.array(flag.tolist()),
    }
)


@pytest.fixture
def both(tmp_path: Path, unique_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    clock.tzset()
    sao_paulo = f"{PG_URL}?options=-c%20TimeZone%3DAmerica/Sao_Paulo"
    roots = []
    for kind, warehouse in (
        (
            "duckdb",
            {"type": "duckdb", "path": str(tmp_path / "w.duckdb"), "raw_schema": unique_name},
        ),
        ("postgres", {"type": "postgres", "url": sao_paulo, "raw_schema": unique_name}),
    ):
        root = tmp_path / kind
        root.mkdir()
        write_project(root, {}, warehouse=warehouse, catalog={"path": str(root / "c.sqlite")})
        with Project.load(root) as project:
            wh = project.warehouse
            wh.ensure_schema(unique_name)
            wh.recreate_table(unique_name, "events", TABLE.schema)
            wh.append(unique_name, "events", TABLE.to_batches())
            if kind == "postgres":
                # Linguistic, and blind to case: "Zebra" = "zebra" to it.
                wh.execute(
                    f'CREATE COLLATION "{unique_name}".blind (provider = icu,'
                    " locale = 'und-u-ks-level2', deterministic = false)"
                )
                wh.execute(
                    f'ALTER TABLE "{unique_name}".events ALTER COLUMN city TYPE TEXT'
                    f' COLLATE "{unique_name}".blind'
                )
        roots.append(root)
    yield roots
    monkeypatch.undo()
    clock.tzset()
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as db:
        for schema in (unique_name, f"_gristmill_{unique_name}"):
            db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _profile(root: Path) -> TableProfile:
    with Project.load(root) as project:
        return profile(project, "events", target="flag", time="created_at")


def _differences(a: Any, b: Any, where: str) -> Iterator[str]:
    if isinstance(a, float) or isinstance(b, float):
        if a != pytest.approx(b, rel=1e-9, abs=1e-12):
            yield f"{where}: {a!r} != {b!r}"
    elif isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            yield f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a.keys() & b.keys():
            yield from _differences(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _differences(x, y, f"{where}[{i}]")
    elif a != b:
        yield f"{where}: {a!r} != {b!r}"


def test_every_figure_is_the_same_on_both_warehouses(both: list[Path]) -> None:
    duck, postgres = (_profile(root).to_dict() for root in both)
    for result in (duck, postgres):
        del result["seconds"], result["table"]
        for column in result["columns"]:
            del column["type"]  # the engine's own name of it
    differences = list(_differences(duck, postgres, "profile"))
    assert not differences, "\n".join(differences)


# -- brute force ---------------------------------------------------------------------
def _numbers(name: str) -> list[float | None]:
    """The column as the profile orders it: numbers, and moments as epoch seconds."""
    out: list[float | None] = []
    for value in TABLE.column(name).to_pylist():
        if value is None:
            out.append(None)
        elif isinstance(value, datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=UTC)
            out.append(aware.timestamp())
        elif isinstance(value, date):
            out.append(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
        else:
            out.append(float(value))
    return out


def _bins(name: str, column: ColumnProfile) -> list[int | str]:
    """Each row's bin: its index among the edges of an ordered column's deciles, or its
    category (one of the most frequent values, (other) or (missing))."""
    values = TABLE.column(name).to_pylist()
    if column.kind in ("numeric", "temporal") and column.distinct > CATEGORIES:
        numbers = _numbers(name)
        present = [x for x in numbers if x is not None and math.isfinite(x)]
        edges = sorted(set(np.quantile(present, DECILES).tolist()))
        # NaN sorts above everything, as on both engines.
        return [
            MISSING if x is None else len(edges) if math.isnan(x) else sum(x >= e for e in edges)
            for x in numbers
        ]
    counts = Counter(v for v in values if v is not None)
    top = sorted(counts, key=lambda v: (-counts[v], v))[:CATEGORIES]
    return [MISSING if v is None else (v if v in top else OTHER) for v in values]


def _woe_iv(bins: list[int | str]) -> tuple[dict[Any, tuple[int, int]], float]:
    positives, negatives = int(flag.sum()), int((~flag).sum())
    groups: dict[Any, tuple[int, int]] = {}
    for b, y in zip(bins, flag.tolist(), strict=True):
        n, pos = groups.get(b, (0, 0))
        groups[b] = (n + 1, pos + int(y))
    iv = 0.0
    for n, pos in groups.values():
        share_pos = (pos + 0.5) / (positives + 0.5)
        share_neg = (n - pos + 0.5) / (negatives + 0.5)
        iv += (share_neg - share_pos) * math.log(share_neg / share_pos)
    return groups, iv


def _auc(bins: list[int | str], groups: dict[Any, tuple[int, int]]) -> float:
    """Every positive against every negative, each scored with its bin's target rate."""
    score = [groups[b][1] / groups[b][0] for b in bins]
    pos = [s for s, y in zip(score, flag.tolist(), strict=True) if y]
    neg = np.array([s for s, y in zip(score, flag.tolist(), strict=True) if not y])
    wins = sum(float((p > neg).sum()) + 0.5 * float((p == neg).sum()) for p in pos)
    auc = wins / (len(pos) * len(neg))
    return max(auc, 1 - auc)


def test_figures_match_a_brute_force_computation(both: list[Path]) -> None:
    result = _profile(both[1])
    assert result.rows == N
    assert result.target_rate == pytest.approx(flag.mean())
    for column in result.columns:
        name = column.name
        values = TABLE.column(name).to_pylist()
        present = [v for v in values if v is not None]
        assert (column.count, column.missing) == (len(present), N - len(present)), name
        # Every NaN is one value to SQL.
        distinct = {"NaN" if isinstance(v, float) and math.isnan(v) else v for v in present}
        assert column.distinct == len(distinct), name
        if column.kind == "text":
            # Ordered by code point, as DuckDB orders text, whatever the collation.
            assert (column.min, column.max) == (min(present), max(present)), name
            counts = Counter(present)
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_VALUES]
            assert [(t.value, t.count) for t in column.top] == top, name
        ordered = column.kind in ("numeric", "temporal")
        finite = (
            np.array([x for x in _numbers(name) if x is not None and math.isfinite(x)])
            if ordered
            else None
        )
        if column.kind == "numeric":
            numbers = finite
            assert column.mean == pytest.approx(numbers.mean()), name
            assert column.std == pytest.approx(numbers.std(ddof=1)), name
            everything = np.array([x for x in _numbers(name) if x is not None])
            assert column.zeros == int((everything == 0).sum()), name
            assert column.negatives == int((everything < 0).sum()), name
            for key, q in QUANTILES.items():
                assert column.quantiles[key] == pytest.approx(np.quantile(numbers, q)), name
        if finite is not None and column.distinct > 1:
            numbers = finite
            lo, hi = numbers.min(), numbers.max()
            width = (hi - lo) / HISTOGRAM_BINS
            expected = np.minimum(np.floor((numbers - lo) / width), HISTOGRAM_BINS - 1)
            assert column.histogram is not None
            assert column.histogram.counts == [
                int((expected == k).sum()) for k in range(HISTOGRAM_BINS)
            ], name
        if name == "flag":
            continue
        bins = _bins(name, column)
        groups, iv = _woe_iv(bins)
        relation = column.target
        assert relation is not None, name
        labels = [b.label for b in relation.bins]
        assert len(set(labels)) == len(labels), f"{name}: {labels}"
        assert sorted((b.count, b.positives) for b in relation.bins) == sorted(groups.values()), (
            name
        )
        assert relation.iv == pytest.approx(iv), name
        assert 0.5 <= relation.auc <= 1
        assert relation.auc == pytest.approx(_auc(bins, groups)), name
    # The time column's periods, in UTC days whatever the session's and the process's zones.
    assert result.time is not None and result.time.grain == "day"
    days = Counter(c.date().isoformat() for c in created)
    assert result.time.periods == sorted(days.items())
    typical = sorted(days.values())[len(days) // 2]
    full = sorted(d for d, n in days.items() if n >= typical / 2)
    assert (result.time.first, result.time.last) == (full[0], full[-1])
    for column in result.columns:
        if column.name == "created_at" or "candidate_key" in column.flags:
            continue
        bins = _bins(column.name, column)
        first, last = (
            Counter(b for b, c in zip(bins, created, strict=True) if c.date().isoformat() == d)
            for d in (full[0], full[-1])
        )
        assert column.psi == pytest.approx(psi_by_hand(first, last)), column.name

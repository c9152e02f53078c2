"""A SQL transform computing `amount / 7`: a DOUBLE on DuckDB, a NUMERIC without a
precision or scale on PostgreSQL. Profiling it, training on it and Python transforms
reading it work on both warehouses; Python transforms see exactly what the warehouse
holds, and a value no decimal holds (NaN) stops only the transform that reads it."""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from gristmill.features.api import materialize, verify
from gristmill.profile import profile
from gristmill.project import Project
from gristmill.train.trainer import train_model
from tests.graph.conftest import GraphProject

ROWS = 240

READERS = """
    import polars
    import pyarrow as pa

    from gristmill import transform


    @transform(inputs=["seventh"])
    def seen_as_arrow(seventh):
        kind = str(seventh.schema.field("seventh").type)
        return seventh.select(["id", "seventh"]).append_column("kind", pa.array([kind] * len(seventh)))


    @transform(inputs=["seventh"], frame="pandas")
    def seen_as_pandas(seventh):
        return seventh[["id", "seventh"]]


    @transform(inputs=["seventh"], frame="polars")
    def seen_as_polars(seventh):
        return seventh.select(["id", "seventh"])


    @transform(inputs=["odd"])
    def reads_nan(odd):
        return odd
"""
MODELS = """
from gristmill.train import Model

on_seventh = Model(
    name="on_seventh", training_set="seventh", target="big", time_column="created_at",
    estimator="decision_tree", params={"max_depth": 3},
)
on_odd = Model(
    name="on_odd", training_set="odd", target="big", time_column="created_at",
    estimator="decision_tree", params={"max_depth": 3},
)
"""


FEATURES = """
from gristmill.features import FeatureView, aggregate

sevenths = FeatureView(
    name="sevenths", entity=["user_id"], timestamp="created_at", source="seventh", ttl="30d",
    features=[aggregate("seventh_sum", "sum", "seventh", windows=["7d"])],
)
odd_ratios = FeatureView(
    name="odd_ratios", entity=["id"], timestamp="created_at", source="odd", ttl="30d",
    features=[aggregate("ratio_max", "max", "ratio", windows=["7d"])],
)
"""


@pytest.fixture
def divided(graph_project: GraphProject) -> GraphProject:
    p = graph_project
    rng = random.Random(7)
    start = datetime(2026, 1, 1)
    rows = []
    for i in range(4, 4 + ROWS):
        at = (start + timedelta(hours=6 * i)).isoformat(sep=" ")
        amount = Decimal(rng.randint(100, 20_000)) / 100
        rows.append((i, i % 3 + 1, str(amount), at, at))
    with sqlite3.connect(p.app) as app:
        app.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", rows)
    nan = "'NaN'::numeric" if p.raw != "raw" else "CAST('NaN' AS DOUBLE)"
    p.write(
        "seventh.sql",
        "SELECT id, user_id, amount / 7 AS seventh, amount > 50 AS big, created_at FROM orders",
    )
    p.write(
        "odd.sql",
        f"SELECT id, CASE WHEN id = 5 THEN {nan} ELSE amount / 7 END AS ratio, amount > 50 AS big,"
        " created_at FROM orders",
    )
    p.write("readers.py", READERS)
    (p.root / "models").mkdir(exist_ok=True)
    (p.root / "models" / "models.py").write_text(MODELS)
    (p.root / "features").mkdir(exist_ok=True)
    (p.root / "features" / "views.py").write_text(FEATURES)
    return p


def test_python_transforms_read_exactly_what_the_warehouse_holds(divided: GraphProject) -> None:
    p = divided
    summary = p.run(kinds={"raw", "transform"})
    steps = {s.name: s for s in summary.steps}
    for name in ("seventh", "odd", "seen_as_arrow", "seen_as_pandas", "seen_as_polars"):
        assert steps[name].status == "ok", steps[name].error
    held = {r["id"]: r["seventh"] for r in p.rows("seventh")}
    assert len(held) == ROWS + 3
    on_postgres = p.raw != "raw"
    if on_postgres:
        # PostgreSQL divides a numeric(10,2) to 16 significant digits, rounded.
        assert {type(v) for v in held.values()} == {Decimal}
        assert held[1] == Decimal("1.5000000000000000")  # 10.50 / 7
        assert held[2] == Decimal("0.60714285714285714286")  # 4.25 / 7
    else:
        assert held[1] == pytest.approx(1.5)
    for reader in ("seen_as_arrow", "seen_as_pandas", "seen_as_polars"):
        assert {r["id"]: r["seventh"] for r in p.rows(reader)} == held, reader
    [kind] = {r["kind"] for r in p.rows("seen_as_arrow")}
    assert kind.startswith("decimal128(") if on_postgres else kind == "double"
    reads_nan = steps["reads_nan"]
    if on_postgres:
        # NaN has no decimal: the transform stops, named with the column, and nothing else.
        assert reads_nan.status == "failed"
        assert "reads_nan" in (reads_nan.error or "") and "odd" in (reads_nan.error or "")
        assert "CAST(ratio AS DOUBLE PRECISION)" in (reads_nan.error or "")
    else:
        assert reads_nan.status == "ok", reads_nan.error


def test_profile_training_and_features_take_them_as_numbers(divided: GraphProject) -> None:
    p = divided
    assert p.run("+seventh", "+odd", kinds={"raw", "transform"}).ok
    by_id = {r["id"]: r["amount"] for r in p.rows(f"{p.raw}.orders")}
    amounts = list(by_id.values())
    with Project.load(p.root) as project:
        result = profile(project, "seventh", target="big", time="created_at")
        odd = profile(project, "odd", target="big", time="created_at")
        trained = train_model(project, "on_seventh")
        trained_odd = train_model(project, "on_odd")
        materialized = materialize(project)
        verified = [verify(project, view, samples=40) for view in ("sevenths", "odd_ratios")]
    seventh = result.column("seventh")
    assert seventh.kind == "numeric" and seventh.count == ROWS + 3
    assert seventh.mean == pytest.approx(float(sum(amounts) / len(amounts) / 7))
    assert float(seventh.min) == pytest.approx(float(min(amounts) / 7))
    assert seventh.target is not None and 0.5 <= seventh.target.auc <= 1
    ratio = odd.column("ratio")
    assert str(ratio.max).lower() == "nan"  # shown, left out of the statistics of numbers
    assert ratio.mean == pytest.approx(float((sum(amounts) - by_id[5]) / (ROWS + 2) / 7))
    assert sum(ratio.histogram.counts) == ROWS + 2  # type: ignore[union-attr]
    assert "seventh" in trained.features and trained.metrics
    assert "ratio" in trained_odd.features and trained_odd.rows == ROWS + 3
    # Events are months old: the newest of each entity is kept (users; every id).
    assert [m.events for m in materialized] == [3, ROWS + 3]
    assert all(v.ok for v in verified), [v.mismatches[:3] for v in verified]

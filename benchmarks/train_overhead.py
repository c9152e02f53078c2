"""Benchmark: gristmill's training overhead over calling LightGBM directly on the same
matrix, 1 million rows x 30 features.

    .venv/bin/python benchmarks/train_overhead.py [--rows N]

LightGBM direct: `lightgbm.train` on the float64 matrix with the same parameters, then
`predict` on the held-out rows (what anyone does to know how good the model is).
gristmill: `train_model` (read the table from DuckDB, encode, time split, fit on the same
training rows, predict the held-out ones, evaluate, explain, register, write the report),
in the same process. Both fit on the same 80% of rows; the overhead is gristmill's extra
wall time over the direct fit and prediction. Target (issue 6): under 10%.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

WORK = Path(__file__).parent / ".work" / "train"
PARAMS = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 63}
MODEL = f"""
from gristmill.train import Model, time_split

risk = Model(
    name="risk", training_set="applications", target="bad", time_column="applied_at",
    estimator="lightgbm", params={PARAMS!r}, split=time_split(test=0.2),
)
"""


def applications_sql(rows: int, offset: int = 0) -> str:
    """A query of `rows` applications (30 features, a time, a target), from row `offset`
    of the series (also what benchmarks/score_dask.py scores)."""
    numbers = ", ".join(
        f"sin(range * {k + 1} * 0.7919 + {k}) * {k + 1} + (range % {97 + k}) / 10.0 AS x{k}"
        for k in range(27)
    )
    return (
        f"SELECT range AS id, {numbers},"
        " ['a', 'b', 'c', 'd', 'e'][1 + range % 5] AS c0,"
        " ['north', 'south', 'east'][1 + (range * 7) % 3] AS c1,"
        " CASE WHEN range % 11 = 0 THEN NULL ELSE (range * 13) % 1000 END AS c2,"
        " TIMESTAMP '2025-01-01' + to_seconds(range * 30) AS applied_at,"
        " (sin(range * 0.7919) + (range % 5) * 0.3 + ((range * 7) % 3) * 0.2"
        "  + hash(range) % 1000 / 700.0) > 1.6 AS bad"
        f" FROM range({offset}, {offset + rows})"
    )


def prepare(rows: int) -> None:
    import duckdb

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "models").mkdir(parents=True)
    (WORK / ".gristmill").mkdir()
    (WORK / "models" / "risk.py").write_text(MODEL)
    (WORK / "gristmill.toml").write_text('name = "train-bench"\n')
    with duckdb.connect(str(WORK / ".gristmill" / "warehouse.duckdb")) as db:
        db.execute("CREATE SCHEMA analytics")
        db.execute(
            "CREATE TABLE analytics.applications AS SELECT * EXCLUDE (id)"
            f" FROM ({applications_sql(rows)})"
        )


def direct(rows: int) -> tuple[float, float]:
    """LightGBM on the same training rows, the matrix already in memory."""
    import lightgbm as lgb

    from gristmill.project import Project
    from gristmill.train.data import load_training_data
    from gristmill.train.discover import load_models
    from gristmill.train.encode import Encoding
    from gristmill.train.split import make_folds

    with Project.load(WORK) as project:
        model = load_models(WORK)["risk"]
        data = load_training_data(project, model)
        assert model.split is not None
        [fold] = make_folds(model.split, data.table.num_rows, data.times(), None)
        features = data.table.select(data.features)
        encoding = Encoding.fit(features.take(fold.train), data.features)
        X = encoding.transform(features.take(fold.train))
        X_test = encoding.transform(features.take(fold.test))
        y, _ = data.target(model)
    settings = dict(PARAMS)
    rounds = int(settings.pop("n_estimators"))
    settings |= {"objective": "binary", "verbosity": -1, "seed": 0}
    started = time.perf_counter()
    booster = lgb.train(
        settings,
        lgb.Dataset(X, label=y[fold.train], categorical_feature=encoding.categorical),
        num_boost_round=rounds,
    )
    fitted = time.perf_counter() - started
    booster.predict(X_test)
    return fitted, time.perf_counter() - started


def through_gristmill() -> tuple[float, float]:
    from gristmill.project import Project
    from gristmill.train.trainer import train_model

    with Project.load(WORK) as project:
        started = time.perf_counter()
        result = train_model(project, "risk")
        return time.perf_counter() - started, result.fit_seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"creating {args.rows:,} rows x 30 features ...", flush=True)
    prepare(args.rows)
    # The fit's own time varies by a fifth from run to run on this machine, more than the
    # overhead; so the overhead is also given as gristmill's time outside its fit, less
    # the direct prediction's, over the direct fit and prediction.
    print(
        "| run | LightGBM fit | fit + predict | gristmill train | its fit | overhead (wall)"
        " | overhead (outside the fits) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for attempt in range(3):
        fit_only, with_predict = direct(args.rows)
        ours, fit_seconds = through_gristmill()
        print(
            f"| {attempt + 1} | {fit_only:.2f} s | {with_predict:.2f} s | {ours:.2f} s |"
            f" {fit_seconds:.2f} s | {(ours - with_predict) / with_predict:+.1%} |"
            f" {((ours - fit_seconds) - (with_predict - fit_only)) / with_predict:+.1%} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

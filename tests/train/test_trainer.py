"""Training models end to end: every estimator family and split, the registry's versions
and aliases, the graph retraining when the training set changes, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gristmill.errors import ConfigError
from gristmill.graph.run import run
from gristmill.project import Project
from gristmill.train.trainer import train_model
from tests.cli.test_cli import gristmill
from tests.helpers import write_project

ROWS = 3000


def make_loans(root: Path, rows: int = ROWS, seed: int = 1) -> None:
    """A table of loans whose default depends on income, a region and a missing-prone
    score, over 300 days."""
    import duckdb

    rng = np.random.default_rng(seed)
    income = rng.lognormal(8, 0.5, rows)
    region = rng.choice(["north", "south", "east", "west"], rows)
    score = np.where(rng.random(rows) < 0.1, np.nan, rng.normal(600, 80, rows))
    risk = -0.002 * (income - 3000) + (region == "south") * 1.5 - 0.01 * np.nan_to_num(score - 600)
    defaulted = rng.random(rows) < 1 / (1 + np.exp(-(risk - 1)))
    (root / ".gristmill").mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(root / ".gristmill" / "warehouse.duckdb")) as db:
        db.execute("CREATE SCHEMA IF NOT EXISTS analytics")
        db.execute("DROP TABLE IF EXISTS analytics.loans")
        db.execute(
            "CREATE TABLE analytics.loans (loan_id INTEGER, customer_id INTEGER, applied_at"
            " TIMESTAMP, income DOUBLE, region VARCHAR, score DOUBLE, grade VARCHAR,"
            " loss DOUBLE, defaulted BOOLEAN)"
        )
        grade = np.where(score > 650, "A", np.where(score > 550, "B", "C"))
        db.executemany(
            "INSERT INTO analytics.loans VALUES (?, ?, TIMESTAMP '2025-01-01' + to_minutes(?),"
            " ?, ?, ?, ?, ?, ?)",
            [
                (
                    i,
                    i % 400,
                    int(i * 300 * 1440 / rows),
                    float(income[i]),
                    str(region[i]),
                    None if np.isnan(score[i]) else float(score[i]),
                    str(grade[i]),
                    float(income[i] * 0.1 * defaulted[i] + rng.normal(0, 10)),
                    bool(defaulted[i]),
                )
                for i in range(rows)
            ],
        )


MODELS = """
from gristmill.train import Model, Search, group_kfold, kfold, time_split

default = Model(
    name="default", training_set="loans", target="defaulted", time_column="applied_at",
    estimator="lightgbm", params={"n_estimators": 60, "num_threads": 1},
    exclude=["loss", "grade"], baseline="income < 2000",
)
boosted = Model(
    name="boosted", training_set="loans", target="defaulted", time_column="applied_at",
    estimator="xgboost", params={"n_estimators": 40, "nthread": 1}, exclude=["loss", "grade"],
)
tree = Model(
    name="tree", training_set="loans", target="defaulted", estimator="decision_tree",
    split=kfold(3), exclude=["loss", "grade"],
)
forest = Model(
    name="forest", training_set="loans", target="grade", task="multiclass",
    estimator="random_forest", params={"n_estimators": 30, "n_jobs": 1},
    split=group_kfold("customer_id", 3), exclude=["loss", "score"],
)
logistic = Model(
    name="logistic", training_set="loans", target="defaulted",
    estimator="logistic_regression", time_column="applied_at", exclude=["loss", "grade"],
)
tuned = Model(
    name="tuned", training_set="loans", target="defaulted", time_column="applied_at",
    estimator="decision_tree", exclude=["loss", "grade"], search=Search(trials=6, seconds=20),
)
linear = Model(
    name="linear", training_set="loans", target="loss", task="regression",
    estimator="linear_regression", time_column="applied_at", exclude=["grade"],
)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "models").mkdir(parents=True)
    (root / "models" / "loans.py").write_text(MODELS)
    write_project(root, {})
    make_loans(root)
    return root


def test_every_family_trains_evaluates_and_round_trips(project: Path) -> None:
    from gristmill.train.data import load_training_data
    from gristmill.train.discover import load_models

    with Project.load(project) as p:
        models = load_models(p.root)
        for name in ("default", "boosted", "tree", "forest", "logistic", "linear"):
            result = train_model(p, name)
            assert (result.version, result.alias) == (1, "champion")
            assert result.report.exists() and "<svg" in result.report.read_text()
            # What the registry gives back predicts exactly as what was trained.
            version = p.registry.get(name, "champion")
            loaded = p.registry.load_estimator(name, "champion")
            from gristmill.train.encode import Encoding
            from gristmill.train.estimators import estimator

            data = load_training_data(p, models[name])
            X = Encoding.from_dict(version.metadata["encoding"]).transform(data.table)
            family = estimator(version.metadata["estimator"])
            predicted = family.predict(loaded, X[:50], version.metadata["task"])
            assert predicted.shape[0] == 50 and np.isfinite(predicted).all()
        default = p.registry.get("default", "champion").metadata
    assert default["metrics"]["roc_auc"] > 0.75
    assert default["left_out"]["loan_id"] == "an identifier"
    assert "region" in default["features"] and default["test_rows"] == pytest.approx(
        ROWS * 0.2, abs=5
    )
    assert "the rule catches" in default["notes"][0]
    assert p.registry.get("boosted").metadata["metrics"]["roc_auc"] > 0.75
    linear = p.registry.get("linear").metadata
    assert linear["metrics"]["r2"] > 0.3


def test_versions_aliases_and_the_command_line(project: Path) -> None:
    first = gristmill("train", "default", "--json", "-p", str(project))
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["alias"] == "champion"
    args = ("train", "default", "--force", "--json", "-p", str(project))
    second = json.loads(gristmill(*args).stdout)
    assert (second["version"], second["alias"]) == (2, "challenger")
    promoted = gristmill("models", "promote", "default", "2", "-p", str(project))
    assert promoted.returncode == 0 and "champion → v2 (was v1)" in promoted.stdout
    listed = json.loads(gristmill("models", "list", "--json", "-p", str(project)).stdout)
    assert listed[0]["aliases"] == {"champion": 2, "challenger": 2}
    back = gristmill("models", "rollback", "default", "-p", str(project))
    assert back.returncode == 0 and "champion → v1" in back.stdout
    shown = gristmill("models", "show", "default", "champion", "-p", str(project))
    assert "version 1 (champion)" in shown.stdout and "ROC AUC" in shown.stdout


def test_run_retrains_only_when_the_training_set_changes(project: Path) -> None:
    with Project.load(project) as p:
        steps = {s.name: s for s in run(p, ["default"]).steps}
        assert steps["default"].status == "ok" and steps["default"].mode == "version 1 (champion)"
        assert {s.name: s.status for s in run(p, ["default"]).steps}["default"] == "up_to_date"


def test_training_on_unchanged_rows_and_spec_registers_nothing(project: Path) -> None:
    """Same rows and spec: the version it equals, nothing registered. One changed value,
    a changed training field of the spec: a new version. Alerts are not training."""
    import duckdb

    def train(*extra: str) -> dict[str, object]:
        said = gristmill("train", "default", "--json", "-p", str(project), *extra)
        assert said.returncode == 0, said.stderr
        found: dict[str, object] = json.loads(said.stdout)
        return found

    assert train()["version"] == 1
    again = train()
    assert (again["version"], again["unchanged"]) == (1, True)
    said = gristmill("train", "default", "-p", str(project))
    assert "unchanged, equals version 1" in " ".join(said.stdout.split())
    warehouse = str(project / ".gristmill" / "warehouse.duckdb")
    with duckdb.connect(warehouse) as db:  # the same rows, stored in another order
        db.execute(
            "CREATE TABLE analytics.shuffled AS SELECT * FROM analytics.loans ORDER BY random()"
        )
        db.execute("DROP TABLE analytics.loans")
        db.execute("ALTER TABLE analytics.shuffled RENAME TO loans")
    assert train()["unchanged"] is True
    with duckdb.connect(warehouse) as db:  # one value
        db.execute("UPDATE analytics.loans SET income = income + 0.01 WHERE loan_id = 1234")
    changed = train()
    assert (changed["version"], changed["unchanged"]) == (2, False)
    spec = project / "models" / "loans.py"
    spec.write_text(
        spec.read_text()
        .replace(
            'exclude=["loss", "grade"], baseline="income < 2000",',
            'exclude=["loss", "grade"], baseline="income < 2000", alerts=Alerts(psi=0.2),',
        )
        .replace("from gristmill.train import ", "from gristmill.train import Alerts, ")
    )
    assert train()["version"] == 2
    spec.write_text(spec.read_text().replace('"n_estimators": 60', '"n_estimators": 61'))
    assert train()["version"] == 3
    assert train("--force")["version"] == 4
    with Project.load(project) as p:
        assert [v.version for v in p.registry.list_versions("default")] == [1, 2, 3, 4]
    assert train()["version"] == 4


def test_clear_errors(project: Path, tmp_path: Path) -> None:
    (project / "models" / "bad.py").write_text(
        "from gristmill.train import Model\n"
        "bad = Model(name='bad', training_set='loans', target='region')\n"
        "typo = Model(name='typo', training_set='loans', target='defaulted',"
        " features=['incme'], time_column='applied_at')\n"
        "rule = Model(name='rule', training_set='loans', target='defaulted',"
        " time_column='applied_at', baseline='no_such_column > 1')\n"
    )
    with Project.load(project) as p:
        with pytest.raises(ConfigError, match="binary target holds true/false or 1/0"):
            train_model(p, "bad")
        with pytest.raises(ConfigError, match="Did you mean 'income'"):
            train_model(p, "typo")
        with pytest.raises(ConfigError, match="baseline 'no_such_column > 1' is not a SQL"):
            train_model(p, "rule")
        with pytest.raises(ConfigError, match="Did you mean 'default'"):
            train_model(p, "defualt")


def test_search_finds_parameters_within_its_budget(project: Path) -> None:
    with Project.load(project) as p:
        result = train_model(p, "tuned")
        meta = p.registry.get("tuned").metadata
    assert meta["search"]["trials"] == 6 and meta["search"]["metric"] == "log_loss"
    assert set(meta["search"]["best_params"]) >= {"max_depth", "min_samples_leaf"}
    assert meta["params"]["max_depth"] == meta["search"]["best_params"]["max_depth"]
    assert any("Searched 6 parameter sets" in note for note in result.notes)


def test_run_retrains_when_its_synced_training_set_changes(tmp_path: Path) -> None:
    import sqlite3

    import duckdb

    staging = tmp_path / "staging"
    make_loans(staging, rows=600)
    app = tmp_path / "app.sqlite"
    with duckdb.connect(str(staging / ".gristmill" / "warehouse.duckdb")) as db:
        rows = db.execute("SELECT * FROM analytics.loans").fetchall()
    with sqlite3.connect(app) as db:
        db.execute(
            "CREATE TABLE loans (loan_id INTEGER PRIMARY KEY, customer_id INTEGER, applied_at"
            " TIMESTAMP, income REAL, region TEXT, score REAL, grade TEXT, loss REAL,"
            " defaulted BOOLEAN)"
        )
        db.executemany(
            "INSERT INTO loans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*r[:2], r[2].isoformat(" "), *r[3:]) for r in rows[:500]],
        )
    root = tmp_path / "proj"
    (root / "models").mkdir(parents=True)
    (root / "models" / "loans.py").write_text(
        "from gristmill.train import Model\n"
        "default = Model(name='default', training_set='raw.loans', target='defaulted',"
        " time_column='applied_at', estimator='decision_tree', exclude=['loss', 'grade'])\n"
    )
    write_project(root, {"app": {"type": "sqlite", "path": str(app), "tables": {"loans": {}}}})
    with Project.load(root) as p:
        assert {s.name: s.mode for s in run(p).steps}["default"] == "version 1 (champion)"
        assert {s.name: s.status for s in run(p).steps}["default"] == "up_to_date"
    with sqlite3.connect(app) as db:
        db.executemany(
            "INSERT INTO loans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*r[:2], r[2].isoformat(" "), *r[3:]) for r in rows[500:]],
        )
    with Project.load(root) as p:
        steps = {s.name: s for s in run(p).steps}
        assert steps["default"].mode == "version 2 (challenger)"
        assert p.registry.get("default", 2).metadata["rows"] == 600


def test_rows_are_explained_by_their_contributions(project: Path) -> None:
    from gristmill.train.reasons import explain_rows

    with Project.load(project) as p:
        for name in ("default", "boosted", "logistic"):
            train_model(p, name)
            [row] = explain_rows(p, name, "champion", where="loan_id = 7", limit=1)
            # The model's three features (income, region, score), largest effect first.
            assert row.row["loan_id"] == 7 and len(row.contributions) == 3
            effects = [abs(effect) for _, _, effect in row.contributions]
            assert effects == sorted(effects, reverse=True)
            if name == "default":  # LightGBM: the contributions add up to the log-odds
                total = row.bias + sum(effect for _, _, effect in row.contributions)
                assert 1 / (1 + np.exp(-total)) == pytest.approx(row.prediction)
        with pytest.raises(ConfigError, match="is not a condition"):
            explain_rows(p, "default", where="no_such_column = 1")

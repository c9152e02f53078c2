"""Explanations: global importance per model family, permutation importance, and per-row
contributions that add up to the model's raw prediction."""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.tree import DecisionTreeClassifier

from gristmill.errors import EvaluationError, MissingDependencyError
from gristmill.train.estimators.sklearn import (
    LinearRegressionEstimator,
    LogisticRegressionEstimator,
)
from gristmill.train.explain import contributions, importance, permutation_importance

lgb = pytest.importorskip("lightgbm")

NAMES = ["signal", "noise_a", "noise_b", "noise_c"]


def data(n: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Only the first column says anything about y."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(NAMES)))
    y = (X[:, 0] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return X, y


def booster(X: np.ndarray, y: np.ndarray, **params: Any) -> Any:
    settings = {"objective": "binary", "verbosity": -1, "num_leaves": 8, "seed": 0, **params}
    return lgb.train(settings, lgb.Dataset(X, y), num_boost_round=20)


def test_permutation_importance_finds_the_informative_feature() -> None:
    X, y = data()
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)
    result = permutation_importance(
        lambda rows: model.predict_proba(rows)[:, 1], X, y, roc_auc_score, feature_names=NAMES
    )
    assert result.scores[0].feature == "signal"
    assert result.scores[0].mean > 0.3
    assert all(abs(s.mean) < 0.05 for s in result.scores[1:])
    assert result.baseline == pytest.approx(roc_auc_score(y, model.predict_proba(X)[:, 1]))
    assert result.metric == "roc_auc_score" and result.rows == len(X) and result.repeats == 3
    # A loss: shuffling the signal raises it, which counts as a positive drop.
    loss = permutation_importance(
        lambda rows: model.predict_proba(rows)[:, 1],
        X,
        y,
        lambda t, p: float(np.mean((t - p) ** 2)),
        greater_is_better=False,
        max_rows=500,
    )
    assert loss.scores[0].feature == "x0" and loss.scores[0].mean > 0 and loss.rows == 500


def test_permutation_importance_checks_its_input() -> None:
    X, y = data(50)
    with pytest.raises(EvaluationError, match="X has 50 rows but y has 49"):
        permutation_importance(lambda r: r[:, 0], X, y[:-1], roc_auc_score)
    with pytest.raises(EvaluationError, match="4 columns but 2 feature names"):
        permutation_importance(lambda r: r[:, 0], X, y, roc_auc_score, feature_names=["a", "b"])


def test_importance_sums_to_one_for_each_family() -> None:
    X, y = data()
    for kind, fitted, rows in [
        ("lightgbm", booster(X, y), None),
        ("decision_tree", DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y), None),
        (
            "logistic_regression",
            LogisticRegressionEstimator().fit(
                X, y, task="binary", categorical=[], params={}, classes=2
            ),
            X,
        ),
    ]:
        ranked = importance(kind, fitted, NAMES, rows)
        assert sum(v for _, v in ranked) == pytest.approx(1.0), kind
        assert ranked[0][0] == "signal", kind
        assert [v for _, v in ranked] == sorted((v for _, v in ranked), reverse=True)


def test_linear_importance_counts_one_hot_columns_towards_their_feature() -> None:
    rng = np.random.default_rng(0)
    n = 1200
    category = rng.integers(0, 4, size=n).astype(float)
    X = np.column_stack([rng.normal(size=n), category, rng.normal(size=n)])
    X[rng.random(n) < 0.1, 0] = np.nan  # adds a missing-value indicator column
    y = ((category == 3) * 2.0 + rng.normal(scale=0.3, size=n) > 1).astype(int)
    model = LogisticRegressionEstimator().fit(
        X, y, task="binary", categorical=[1], params={}, classes=2
    )
    names = ["amount", "country", "noise"]
    for rows in (None, X):
        ranked = importance("logistic_regression", model, names, rows)
        assert ranked[0][0] == "country" and len(ranked) == 3
    with pytest.raises(EvaluationError, match="needs X"):
        from sklearn.linear_model import LogisticRegression

        importance("linear", LogisticRegression().fit(np.nan_to_num(X), y), names)


def test_importance_rejects_an_unknown_or_mismatched_kind() -> None:
    X, y = data(200)
    with pytest.raises(EvaluationError, match="Did you mean 'lightgbm'"):
        importance("lightgmb", booster(X, y), NAMES)
    with pytest.raises(EvaluationError, match="does not match"):
        importance("lightgbm", DecisionTreeClassifier().fit(X, y), NAMES)
    with pytest.raises(EvaluationError, match="4 features but 2 names"):
        importance("lightgbm", booster(X, y), NAMES[:2])


def test_lightgbm_contributions_sum_to_the_raw_prediction() -> None:
    X, y = data()
    model = booster(X, y)
    c = contributions(model, X[:200], NAMES)
    assert c.shape == (200, len(NAMES) + 1)
    assert np.allclose(c.sum(axis=1), model.predict(X[:200], raw_score=True))
    assert np.abs(c[:, 0]).mean() > 5 * np.abs(c[:, 1:4]).mean()  # the signal dominates

    classes = np.digitize(X[:, 0], [-0.5, 0.5])
    multi = booster(X, classes, objective="multiclass", num_class=3)
    m = contributions(multi, X[:50], NAMES)
    assert m.shape == (50, 3, len(NAMES) + 1)
    assert np.allclose(m.sum(axis=2), multi.predict(X[:50], raw_score=True))


def test_linear_contributions_sum_to_the_decision_function() -> None:
    X, y = data()
    X[::7, 2] = np.nan
    model = LogisticRegressionEstimator().fit(
        X, y, task="binary", categorical=[], params={}, classes=2
    )
    c = contributions(model, X[:300], NAMES, background=X)
    assert c.shape == (300, len(NAMES) + 1)
    assert np.allclose(c.sum(axis=1), model.decision_function(X[:300]))
    # Against the training mean, an average row's contributions are about zero.
    assert abs(contributions(model, X, NAMES)[:, :-1].mean()) < 1e-9

    target = X[:, 0] * 3 + np.nan_to_num(X[:, 2])
    ridge = LinearRegressionEstimator().fit(
        X, target, task="regression", categorical=[], params={}, classes=0
    )
    r = contributions(ridge, X[:100], NAMES)
    assert np.allclose(r.sum(axis=1), ridge.predict(X[:100]))


def test_tree_contributions_need_shap(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = data(200)
    tree = DecisionTreeClassifier(max_depth=3).fit(X, y)
    monkeypatch.setitem(sys.modules, "shap", None)  # import shap fails, installed or not
    with pytest.raises(MissingDependencyError, match="pip install shap"):
        contributions(tree, X, NAMES)


def test_tree_contributions_through_shap(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a stand-in for shap's TreeExplainer (its newer output shape, one slice per
    class): the positive class is kept and the expected value becomes the bias column."""
    X, y = data(30)
    tree = DecisionTreeClassifier(max_depth=2).fit(X, y)

    class TreeExplainer:
        def __init__(self, model: Any) -> None:
            self.expected_value = np.array([0.6, 0.4])

        def shap_values(self, rows: np.ndarray) -> np.ndarray:
            values = np.zeros((len(rows), rows.shape[1], 2))
            values[:, :, 1] = rows
            values[:, :, 0] = -rows
            return values

    monkeypatch.setitem(sys.modules, "shap", types.SimpleNamespace(TreeExplainer=TreeExplainer))
    c = contributions(tree, X, NAMES)
    assert c.shape == (30, len(NAMES) + 1)
    assert np.allclose(c[:, :-1], X) and np.allclose(c[:, -1], 0.4)


def test_contributions_check_the_matrix() -> None:
    X, y = data(100)
    with pytest.raises(EvaluationError, match="X has 4 columns but 3 feature names"):
        contributions(booster(X, y), X, NAMES[:3])
    with pytest.raises(EvaluationError, match="2-D"):
        contributions(booster(X, y), X[0], NAMES)

"""Path attributions: per-row contributions that sum exactly to the raw score, equal to
Shapley values where the two must agree (one split per tree), for every task."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gristmill.train.estimators import estimator
from gristmill.train.paths import PathAttributions

lgb = pytest.importorskip("lightgbm")


def rows(n: int = 2000, width: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, width))
    X[rng.random(X.shape) < 0.1] = np.nan  # missing values take the learned side
    return X


def train(X: np.ndarray, y: np.ndarray, rounds: int = 30, **params: Any) -> Any:
    settings = {"verbosity": -1, "num_leaves": 16, "seed": 0, **params}
    return lgb.train(settings, lgb.Dataset(X, y), num_boost_round=rounds)


def test_contributions_and_bias_sum_to_the_raw_score() -> None:
    X = rows()
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) > 0).astype(int)
    model = train(X, y, objective="binary")
    parts = PathAttributions.of_lightgbm(model)(X)
    assert parts.shape == (len(X), X.shape[1] + 1)
    np.testing.assert_allclose(parts.sum(axis=1), model.predict(X, raw_score=True), atol=1e-9)
    # The informative features carry most of the credit.
    assert np.abs(parts[:, :2]).sum() > 5 * np.abs(parts[:, 2:-1]).sum()


def test_on_stumps_they_are_shapley_values() -> None:
    X = rows(seed=1)
    y = np.nan_to_num(X[:, 0]) * 2 - np.nan_to_num(X[:, 3])
    model = train(X, y, objective="regression", num_leaves=2)
    np.testing.assert_allclose(
        PathAttributions.of_lightgbm(model)(X), model.predict(X, pred_contrib=True), atol=1e-9
    )


def test_multiclass_has_contributions_per_class() -> None:
    X = rows(seed=2)
    y = np.digitize(np.nan_to_num(X[:, 2]), [-0.5, 0.5])
    model = train(X, y, rounds=10, objective="multiclass", num_class=3)
    parts = PathAttributions.of_lightgbm(model)(X[:50])
    assert parts.shape == (50, 3, X.shape[1] + 1)
    np.testing.assert_allclose(parts.sum(axis=2), model.predict(X[:50], raw_score=True), atol=1e-9)


def test_a_tree_of_one_leaf_is_all_bias() -> None:
    X = rows(n=200)
    model = train(X, np.full(len(X), 3.0), rounds=2, objective="regression")
    parts = PathAttributions.of_lightgbm(model)(X[:5])
    assert np.all(parts[:, :-1] == 0)
    np.testing.assert_allclose(parts[:, -1], model.predict(X[:5], raw_score=True))


def test_linear_leaves_and_huge_models_have_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """A linear leaf's output is not its constant; a model too large for the dense
    credits is served with Shapley values instead."""
    X = np.nan_to_num(rows(n=500))
    y = X[:, 0] * 2 + X[:, 1]
    assert (
        PathAttributions.of_lightgbm(
            train(X, y, rounds=5, objective="regression", linear_tree=True)
        )
        is None
    )
    plain = train(X, y, rounds=5, objective="regression")
    assert PathAttributions.of_lightgbm(plain) is not None
    monkeypatch.setattr("gristmill.train.paths.MAX_CREDITS", 10)
    assert PathAttributions.of_lightgbm(plain) is None


def test_families_declare_whether_they_have_them() -> None:
    X = rows(n=300)
    model = train(X, (np.nan_to_num(X[:, 0]) > 0).astype(int), rounds=3, objective="binary")
    assert estimator("lightgbm").path_attributions(model) is not None
    assert estimator("decision_tree").path_attributions(object()) is None

"""Fitted estimators through save, register, read and load: same predictions, and only the
types recorded at save time are ever trusted at load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pytest
import skops.io
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from gristmill.errors import ArtifactTamperedError, UnsupportedEstimatorError
from gristmill.registry import open_registry
from gristmill.registry.api import Registry
from gristmill.registry.artifacts import LightGBMPredictor, load, save

RNG = np.random.default_rng(7)
X = RNG.normal(size=(300, 5))
X[:, 4] = RNG.integers(0, 3, size=300)  # a small categorical column, for OneHotEncoder
Y_CLASS = np.where(X[:, 0] + X[:, 1] > 0, "buy", "stay")
Y_THREE = np.digitize(X[:, 0], [-0.5, 0.5])
Y_VALUE = 2 * X[:, 0] - X[:, 2] + RNG.normal(scale=0.1, size=300)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return open_registry(tmp_path)


def _round_trip(registry: Registry, estimator: Any) -> Any:
    version = registry.register_estimator("m", estimator, {"params": {}})
    return registry.load_estimator("m", version.version)


def _encoded() -> ColumnTransformer:
    return ColumnTransformer(
        [("scaled", StandardScaler(), [0, 1, 2, 3]), ("onehot", OneHotEncoder(), [4])]
    )


SKLEARN_ESTIMATORS = {
    "decision_tree_classifier": (lambda: DecisionTreeClassifier(max_depth=4), Y_CLASS),
    "decision_tree_regressor": (lambda: DecisionTreeRegressor(max_depth=4), Y_VALUE),
    "random_forest_classifier": (lambda: RandomForestClassifier(n_estimators=5), Y_CLASS),
    "random_forest_regressor": (lambda: RandomForestRegressor(n_estimators=5), Y_VALUE),
    "logistic_regression": (lambda: LogisticRegression(), Y_THREE),
    "linear_regression": (LinearRegression, Y_VALUE),
    "pipeline": (
        lambda: make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression()),
        Y_CLASS,
    ),
    "pipeline_with_column_transformer": (
        lambda: make_pipeline(_encoded(), RandomForestClassifier(n_estimators=5)),
        Y_CLASS,
    ),
}


@pytest.mark.parametrize("family", SKLEARN_ESTIMATORS)
def test_sklearn_estimators_round_trip(registry: Registry, family: str) -> None:
    make, target = SKLEARN_ESTIMATORS[family]
    fitted = make().fit(X, target)
    loaded = _round_trip(registry, fitted)
    assert type(loaded) is type(fitted)
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    if hasattr(fitted, "predict_proba"):
        np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    version = registry.get("m")
    assert version.artifact_names == ["model.skops"]
    assert version.artifact_format["format"] == "skops"
    assert version.artifact_format["trusted_types"] == sorted(
        skops.io.get_untrusted_types(data=registry.read_artifact("m", "latest", "model.skops"))
    )


# One thread: OpenMP threads spinning on a busy machine make a 20-tree fit take seconds.
LIGHTGBM_PARAMS: dict[str, Any] = {
    "n_estimators": 20,
    "verbose": -1,
    "min_child_samples": 5,
    "n_jobs": 1,
}


def test_lightgbm_classifiers_regressors_and_boosters_round_trip(registry: Registry) -> None:
    for target in (Y_CLASS, Y_THREE):
        classifier = lightgbm.LGBMClassifier(**LIGHTGBM_PARAMS).fit(X, target)
        loaded = _round_trip(registry, classifier)
        assert isinstance(loaded, LightGBMPredictor)
        np.testing.assert_array_equal(loaded.predict(X), classifier.predict(X))
        np.testing.assert_array_equal(loaded.predict_proba(X), classifier.predict_proba(X))

    regressor = lightgbm.LGBMRegressor(**LIGHTGBM_PARAMS).fit(X, Y_VALUE)
    loaded = _round_trip(registry, regressor)
    np.testing.assert_array_equal(loaded.predict(X), regressor.predict(X))
    with pytest.raises(TypeError, match="needs a classifier"):
        loaded.predict_proba(X)

    booster = regressor.booster_
    loaded_booster = _round_trip(registry, booster)
    assert isinstance(loaded_booster, lightgbm.Booster)
    np.testing.assert_array_equal(loaded_booster.predict(X), booster.predict(X))
    version = registry.get("m")
    assert version.artifact_names == ["model.txt"] and version.artifact_format["kind"] == "booster"
    assert registry.read_artifact("m", "latest", "model.txt").startswith(b"tree\n")


# eval_set is deprecated from LightGBM 4.7 on, but its successors do not exist in 4.3.
@pytest.mark.filterwarnings("ignore:The argument 'eval_set' is deprecated")
def test_early_stopping_keeps_the_best_iteration(registry: Registry) -> None:
    params = {**LIGHTGBM_PARAMS, "n_estimators": 200}
    classifier = lightgbm.LGBMClassifier(**params).fit(
        X[:200],
        Y_CLASS[:200],
        eval_set=[(X[200:], Y_CLASS[200:])],
        callbacks=[lightgbm.early_stopping(3, verbose=False)],
    )
    assert classifier.best_iteration_ < 200
    loaded = _round_trip(registry, classifier)
    np.testing.assert_array_equal(loaded.predict_proba(X), classifier.predict_proba(X))


def _registered_tree(registry: Registry) -> Path:
    registry.register_estimator("tree", DecisionTreeClassifier().fit(X, Y_CLASS), {})
    return Path(registry.storage.artifact_location("tree", 1, "model.skops")).parents[1]


def _edit_format(version_dir: Path, **changes: Any) -> None:
    path = version_dir / "metadata.json"
    document = json.loads(path.read_text())
    document["artifact_format"].update(changes)
    path.write_text(json.dumps(document))


def test_a_type_not_recorded_at_save_time_is_refused(registry: Registry) -> None:
    version_dir = _registered_tree(registry)
    assert registry.get("tree").artifact_format["trusted_types"] == ["sklearn.tree._tree.Tree"]
    _edit_format(version_dir, trusted_types=[])
    with pytest.raises(ArtifactTamperedError, match=r"sklearn\.tree\._tree\.Tree.*not loaded"):
        registry.load_estimator("tree")


def test_a_recorded_type_outside_sklearn_numpy_scipy_is_refused(registry: Registry) -> None:
    version_dir = _registered_tree(registry)
    _edit_format(version_dir, trusted_types=["sklearn.tree._tree.Tree", "builtins.eval"])
    with pytest.raises(ArtifactTamperedError, match=r"builtins\.eval"):
        registry.load_estimator("tree")
    _edit_format(version_dir, trusted_types="sklearn.tree._tree.Tree")
    with pytest.raises(ArtifactTamperedError, match="no valid list of trusted types"):
        registry.load_estimator("tree")


def test_a_swapped_skops_file_with_new_types_is_refused() -> None:
    fitted = LogisticRegression().fit(X, Y_CLASS)
    files, artifact_format = save(fitted)
    assert artifact_format["trusted_types"] == []
    np.testing.assert_array_equal(load(files, artifact_format).predict(X), fitted.predict(X))
    swapped, _ = save(DecisionTreeClassifier().fit(X, Y_CLASS))
    with pytest.raises(ArtifactTamperedError, match=r"sklearn\.tree\._tree\.Tree"):
        load(swapped, artifact_format)


class HomeMadeModel(BaseEstimator):  # type: ignore[misc]
    def fit(self, features: Any, target: Any) -> HomeMadeModel:
        return self


def test_unsupported_estimators_are_named() -> None:
    with pytest.raises(UnsupportedEstimatorError, match=r"builtins\.dict.*Supported: LightGBM"):
        save({})
    with pytest.raises(UnsupportedEstimatorError, match=r"test_artifacts\.HomeMadeModel"):
        save(HomeMadeModel())
    with pytest.raises(UnsupportedEstimatorError, match=r"test_artifacts\.HomeMadeModel"):
        save(make_pipeline(StandardScaler(), HomeMadeModel()).fit(X, Y_VALUE))
    with pytest.raises(UnsupportedEstimatorError, match="Unknown artifact format 'pickle'"):
        load({"model.pkl": b""}, {"format": "pickle"})

"""Gradient-boosted trees with LightGBM's own API: categories split natively, missing
values learned, the model saved as LightGBM's model text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from gristmill.train.estimators.base import BoostedEstimator, require

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np


class LightGBMEstimator(BoostedEstimator):
    NAME = "lightgbm"
    NATIVE_CATEGORICAL = True
    OBJECTIVES: ClassVar[dict[str, str]] = {
        "binary": "binary",
        "multiclass": "multiclass",
        "regression": "regression",
    }
    QUIET: ClassVar[dict[str, Any]] = {"verbosity": -1}
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "n_estimators": 200,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 20,
        "seed": 0,
    }

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        task: str,
        categorical: list[int],
        params: dict[str, Any],
        classes: int,
    ) -> Any:
        lgb = require("lightgbm", "lightgbm")
        settings, rounds = self.settings(task, params, classes)
        data = lgb.Dataset(
            X, label=y, categorical_feature=categorical or "auto", free_raw_data=True
        )
        return lgb.train(settings, data, num_boost_round=rounds)

    def predict(self, fitted: Any, X: np.ndarray, task: str) -> np.ndarray:
        predicted: np.ndarray = fitted.predict(X, num_threads=threads_for(len(X)))
        return predicted

    def path_attributions(self, fitted: Any) -> Callable[[np.ndarray], np.ndarray] | None:
        from gristmill.train.paths import PathAttributions

        return PathAttributions.of_lightgbm(fitted)


def threads_for(rows: int) -> int:
    """A few rows (a served request) on one thread: OpenMP's threads would spin on the
    other cores for no gain; many rows on all of them (0: LightGBM's default)."""
    return 1 if rows < 1_000 else 0

"""Gradient-boosted trees with XGBoost (pip install 'gristmill[xgboost]'): its histogram
method, categories split natively, missing values learned, the model saved as XGBoost's
own JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from gristmill.errors import MissingDependencyError
from gristmill.train.estimators.base import BoostedEstimator

if TYPE_CHECKING:
    import numpy as np


def _xgboost() -> Any:
    try:
        import xgboost
    except ImportError:
        raise MissingDependencyError("xgboost", "xgboost", "The xgboost estimator") from None
    return xgboost


class XGBoostEstimator(BoostedEstimator):
    NAME = "xgboost"
    NATIVE_CATEGORICAL = True
    OBJECTIVES: ClassVar[dict[str, str]] = {
        "binary": "binary:logistic",
        "multiclass": "multi:softprob",
        "regression": "reg:squarederror",
    }
    QUIET: ClassVar[dict[str, Any]] = {"tree_method": "hist", "verbosity": 0}
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "n_estimators": 200,
        "learning_rate": 0.1,
        "max_depth": 6,
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
        xgb = _xgboost()
        settings, rounds = self.settings(task, params, classes)
        types = ["c" if i in categorical else "q" for i in range(X.shape[1])]
        data = xgb.DMatrix(X, label=y, feature_types=types, enable_categorical=True)
        return xgb.train(settings, data, num_boost_round=rounds)

    def predict(self, fitted: Any, X: np.ndarray, task: str) -> np.ndarray:
        xgb = _xgboost()
        data = xgb.DMatrix(X, feature_types=fitted.feature_types, enable_categorical=True)
        predicted: np.ndarray = fitted.predict(data)
        return predicted

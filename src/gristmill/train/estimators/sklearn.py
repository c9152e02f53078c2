"""scikit-learn families: a decision tree, a random forest (both take missing values and
category codes as they are), and logistic or linear regression (missing values imputed
with an indicator, numbers scaled, categories one-hot encoded, in one Pipeline)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from gristmill.train.estimators.base import Estimator, require

if TYPE_CHECKING:
    import numpy as np


class SklearnEstimator(Estimator):
    CLASSIFIER: ClassVar[str]
    REGRESSOR: ClassVar[str]
    SCALED: ClassVar[bool] = False
    """Linear models need imputed, scaled, one-hot encoded inputs; trees do not."""

    def build(self, task: str, params: dict[str, Any], categorical: list[int], width: int) -> Any:
        require("sklearn", "scikit-learn")
        import importlib

        module, _, name = (self.REGRESSOR if task == "regression" else self.CLASSIFIER).rpartition(
            "."
        )
        model = getattr(importlib.import_module(module), name)(**{**self.DEFAULTS, **params})
        if not self.SCALED:
            return model
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        numeric = [i for i in range(width) if i not in categorical]
        prepare = ColumnTransformer(
            [
                (
                    "categories",
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value=-1),
                        OneHotEncoder(handle_unknown="ignore"),
                    ),
                    categorical,
                ),
                (
                    "numbers",
                    make_pipeline(
                        SimpleImputer(
                            strategy="median", add_indicator=True, keep_empty_features=True
                        ),
                        StandardScaler(),
                    ),
                    numeric,
                ),
            ]
        )
        return make_pipeline(prepare, model)

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
        model = self.build(task, params, categorical, X.shape[1])
        model.fit(X, y)
        return model

    def predict(self, fitted: Any, X: np.ndarray, task: str) -> np.ndarray:
        if task == "regression":
            values: np.ndarray = fitted.predict(X)
            return values
        proba: np.ndarray = fitted.predict_proba(X)
        return proba[:, 1] if task == "binary" else proba


class DecisionTreeEstimator(SklearnEstimator):
    NAME = "decision_tree"
    CLASSIFIER = "sklearn.tree.DecisionTreeClassifier"
    REGRESSOR = "sklearn.tree.DecisionTreeRegressor"
    DEFAULTS: ClassVar[dict[str, Any]] = {"max_depth": 6, "min_samples_leaf": 50, "random_state": 0}


class RandomForestEstimator(SklearnEstimator):
    NAME = "random_forest"
    CLASSIFIER = "sklearn.ensemble.RandomForestClassifier"
    REGRESSOR = "sklearn.ensemble.RandomForestRegressor"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "n_estimators": 200,
        "min_samples_leaf": 5,
        "n_jobs": -1,
        "random_state": 0,
    }


class LogisticRegressionEstimator(SklearnEstimator):
    NAME = "logistic_regression"
    TASKS = frozenset({"binary", "multiclass"})
    CLASSIFIER = "sklearn.linear_model.LogisticRegression"
    REGRESSOR = ""
    SCALED = True
    DEFAULTS: ClassVar[dict[str, Any]] = {"max_iter": 1000}


class LinearRegressionEstimator(SklearnEstimator):
    NAME = "linear_regression"
    TASKS = frozenset({"regression"})
    CLASSIFIER = ""
    REGRESSOR = "sklearn.linear_model.Ridge"
    SCALED = True
    DEFAULTS: ClassVar[dict[str, Any]] = {"alpha": 1.0}

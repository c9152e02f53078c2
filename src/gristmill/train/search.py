"""Hyperparameter search with Optuna, within a time budget. Trials are scored on rows the
final evaluation never sees: the newest fifth of the training rows for a time split (so
the search, too, trains on the past), one inner fold otherwise."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gristmill.errors import MissingDependencyError

if TYPE_CHECKING:
    import numpy as np

    from gristmill.train.estimators.base import Estimator
    from gristmill.train.spec import Model

SPACES: dict[str, dict[str, tuple[str, float, float]]] = {
    "lightgbm": {
        "num_leaves": ("int_log", 7, 255),
        "learning_rate": ("float_log", 0.01, 0.3),
        "min_child_samples": ("int_log", 5, 200),
        "feature_fraction": ("float", 0.5, 1.0),
        "lambda_l2": ("float_log", 1e-3, 10.0),
    },
    "xgboost": {
        "max_depth": ("int", 2, 10),
        "learning_rate": ("float_log", 0.01, 0.3),
        "min_child_weight": ("float_log", 0.1, 50.0),
        "subsample": ("float", 0.5, 1.0),
        "reg_lambda": ("float_log", 1e-3, 10.0),
    },
    "decision_tree": {"max_depth": ("int", 2, 12), "min_samples_leaf": ("int_log", 1, 200)},
    "random_forest": {
        "max_features": ("float", 0.2, 1.0),
        "min_samples_leaf": ("int_log", 1, 50),
    },
    "logistic_regression": {"C": ("float_log", 1e-3, 100.0)},
    "linear_regression": {"alpha": ("float_log", 1e-3, 100.0)},
}
"""What is searched per estimator family: (kind, low, high)."""


@dataclass
class SearchResult:
    best_params: dict[str, Any]
    best_score: float
    metric: str
    trials: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_params": self.best_params,
            "best_score": self.best_score,
            "metric": self.metric,
            "trials": self.trials,
            "seconds": round(self.seconds, 2),
        }


def _loss(task: str, y: np.ndarray, predicted: np.ndarray) -> float:
    """Lower is better: log loss for classification, RMSE for regression."""
    import numpy as np

    if task == "regression":
        return float(np.sqrt(np.mean((y - predicted) ** 2)))
    from sklearn.metrics import log_loss

    if task == "binary":
        return float(log_loss(y, np.clip(predicted, 1e-12, 1 - 1e-12), labels=[0, 1]))
    return float(log_loss(y, predicted, labels=list(range(predicted.shape[1]))))


def search(
    model: Model,
    family: Estimator,
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    categorical: list[int],
    classes: int,
) -> SearchResult:
    """The best parameters for `model` found within its search budget."""
    try:
        import optuna
    except ImportError:
        raise MissingDependencyError("optuna", "search", "Hyperparameter search") from None
    assert model.search is not None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SPACES[model.estimator]

    def objective(trial: Any) -> float:
        params = dict(model.params)
        for name, (kind, low, high) in space.items():
            if kind.startswith("int"):
                params[name] = trial.suggest_int(
                    name, int(low), int(high), log=kind.endswith("log")
                )
            else:
                params[name] = trial.suggest_float(name, low, high, log=kind.endswith("log"))
        fitted = family.fit(
            *train,
            task=model.task,
            categorical=categorical,
            params=params,
            classes=classes,
        )
        return _loss(model.task, valid[1], family.predict(fitted, valid[0], model.task))

    started = time.perf_counter()
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=model.search.trials, timeout=model.search.seconds)
    return SearchResult(
        {**model.params, **study.best_params},
        float(study.best_value),
        "rmse" if model.task == "regression" else "log_loss",
        len(study.trials),
        time.perf_counter() - started,
    )

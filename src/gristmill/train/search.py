"""Hyperparameter search with Optuna, within a time budget. Trials are scored on rows the
final evaluation never sees: the newest fifth of the training rows for a time split (so
the search, too, trains on the past), one inner fold otherwise.

On a distributed executor the trials run through joblib's Dask backend, as many at once
as the cluster has threads: Optuna proposes each batch from the trials finished before
it (ask and tell), so the parameters tried, and found, can differ from a local search's,
which proposes each trial from all the previous ones."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gristmill.errors import MissingDependencyError

if TYPE_CHECKING:
    import numpy as np

    from gristmill.execution import Executor
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
    executor: Executor | None = None,
) -> SearchResult:
    """The best parameters for `model` found within its search budget."""
    try:
        import optuna
    except ImportError:
        raise MissingDependencyError("optuna", "search", "Hyperparameter search") from None
    assert model.search is not None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SPACES[model.estimator]

    def suggest(trial: Any) -> dict[str, Any]:
        params = dict(model.params)
        for name, (kind, low, high) in space.items():
            if kind.startswith("int"):
                params[name] = trial.suggest_int(
                    name, int(low), int(high), log=kind.endswith("log")
                )
            else:
                params[name] = trial.suggest_float(name, low, high, log=kind.endswith("log"))
        return params

    def objective(trial: Any) -> float:
        return trial_loss(
            family.NAME, model.task, suggest(trial), train, valid, categorical, classes
        )

    started = time.perf_counter()
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=0))
    if executor is not None and executor.DISTRIBUTED:
        with executor.joblib_backend():
            _optimize_in_batches(study, suggest, model, family, train, valid, categorical, classes)
    else:
        study.optimize(objective, n_trials=model.search.trials, timeout=model.search.seconds)
    return SearchResult(
        {**model.params, **study.best_params},
        float(study.best_value),
        "rmse" if model.task == "regression" else "log_loss",
        len(study.trials),
        time.perf_counter() - started,
    )


def trial_loss(
    family: str,
    task: str,
    params: dict[str, Any],
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    categorical: list[int],
    classes: int,
) -> float:
    """One trial: fit on `train` with `params`, the loss on `valid`. Module-level with
    plain arguments, so that a Dask worker runs it."""
    from gristmill.train.estimators import estimator

    each = estimator(family)
    fitted = each.fit(*train, task=task, categorical=categorical, params=params, classes=classes)
    return _loss(task, valid[1], each.predict(fitted, valid[0], task))


def _optimize_in_batches(
    study: Any,
    suggest: Any,
    model: Model,
    family: Estimator,
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    categorical: list[int],
    classes: int,
) -> None:
    """Trials as many at once as joblib's current backend runs (a cluster's threads),
    until the trials or the seconds of the budget are spent."""
    import joblib

    assert model.search is not None
    width = max(1, joblib.effective_n_jobs(-1))
    deadline = time.monotonic() + (model.search.seconds or float("inf"))
    while len(study.trials) < model.search.trials and time.monotonic() < deadline:
        batch = [study.ask() for _ in range(min(width, model.search.trials - len(study.trials)))]
        losses = joblib.Parallel(n_jobs=-1)(
            joblib.delayed(trial_loss)(
                family.NAME, model.task, suggest(trial), train, valid, categorical, classes
            )
            for trial in batch
        )
        for trial, loss in zip(batch, losses, strict=True):
            study.tell(trial, loss)

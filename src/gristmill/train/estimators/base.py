"""The Estimator interface: fit a matrix (float64, NaN for missing, category codes for
categorical columns) and predict from one. What a family can do is declared as data."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from gristmill.errors import MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from gristmill.execution import Executor


class Estimator(ABC):
    NAME: ClassVar[str]
    TASKS: ClassVar[frozenset[str]] = frozenset({"binary", "multiclass", "regression"})
    NATIVE_CATEGORICAL: ClassVar[bool] = False
    """Splits on category codes as categories (else they are one-hot encoded or, for trees,
    taken as ordered codes)."""
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    @abstractmethod
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
        """The fitted model. `y` holds class codes 0..classes-1 for classification."""

    def fit_on(
        self,
        executor: Executor,
        X: np.ndarray,
        y: np.ndarray,
        *,
        task: str,
        categorical: list[int],
        params: dict[str, Any],
        classes: int,
    ) -> Any:
        """`fit`, with the heavy work where `executor` runs it. By default that is the
        parallel work scikit-learn hands to joblib (a forest's trees), which a
        distributed executor's joblib backend sends to its workers; a family with a
        distributed algorithm of its own overrides this. On the local executor: `fit`."""
        with executor.joblib_backend():
            return self.fit(
                X, y, task=task, categorical=categorical, params=params, classes=classes
            )

    @abstractmethod
    def predict(self, fitted: Any, X: np.ndarray, task: str) -> np.ndarray:
        """binary: the probability of class 1; multiclass: one column per class;
        regression: the predicted values."""

    def path_attributions(self, fitted: Any) -> Callable[[np.ndarray], np.ndarray] | None:
        """Per-row contributions read off the trees' decision paths (`train.paths`), or
        None when the family has none."""
        return None


class BoostedEstimator(Estimator):
    """Gradient-boosting libraries: their settings from the defaults, the spec's params
    (`n_estimators` is the number of rounds), the task's objective and the class count."""

    OBJECTIVES: ClassVar[dict[str, str]]
    QUIET: ClassVar[dict[str, Any]]
    """Settings that keep the library from printing."""

    def settings(
        self, task: str, params: dict[str, Any], classes: int
    ) -> tuple[dict[str, Any], int]:
        """(the library's settings, the number of rounds)."""
        settings = {**self.DEFAULTS, **params}
        rounds = int(settings.pop("n_estimators"))
        settings |= {"objective": self.OBJECTIVES[task], **self.QUIET}
        if task == "multiclass":
            settings["num_class"] = classes
        return settings, rounds


def require(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(package, "train", "Training models") from None

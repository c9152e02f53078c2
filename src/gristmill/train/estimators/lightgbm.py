"""Gradient-boosted trees with LightGBM's own API: categories split natively, missing
values learned, the model saved as LightGBM's model text."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, ClassVar

from gristmill.train.estimators.base import BoostedEstimator, require

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from gristmill.execution import Executor


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
        """On a Dask cluster, `lightgbm.dask`: the rows in partitions spread over the
        workers, each building histograms of its own rows (LightGBM's data-parallel
        learner), brought back as the Booster `fit` gives, so that what is evaluated,
        registered and served is a local model. Split points can differ from a local fit
        (histograms merged across workers), so the trees are close, not identical."""
        from gristmill.execution.dask import DaskExecutor

        if not isinstance(executor, DaskExecutor):
            return super().fit_on(
                executor, X, y, task=task, categorical=categorical, params=params, classes=classes
            )
        require("lightgbm", "lightgbm")
        from lightgbm.dask import DaskLGBMClassifier, DaskLGBMRegressor

        settings, rounds = self.settings(task, params, classes)
        settings.pop("num_class", None)  # the classifier counts the classes itself
        kind = DaskLGBMRegressor if task == "regression" else DaskLGBMClassifier
        client = executor.client
        model = kind(client=client, n_estimators=rounds, **settings)
        features, labels = _partitioned(client, X, y, executor.partitions)
        with warnings.catch_warnings():
            # Emitted at every fit, whatever the parameters (LightGBM issue 6797): each
            # worker's threads are its own cores.
            warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored", UserWarning)
            model.fit(features, labels, categorical_feature=categorical or "auto")
        return model.to_local().booster_

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


def _partitioned(client: Any, X: np.ndarray, y: np.ndarray, partitions: int) -> tuple[Any, Any]:
    """X and y as Dask arrays of row blocks scattered over the workers: sent once, each
    block to one worker, rather than embedded in the task graph."""
    import importlib
    import itertools

    import numpy as np

    da: Any = importlib.import_module("dask.array")  # untyped: Any, not a mypy error
    cuts = np.linspace(0, len(y), min(partitions, len(y)) + 1).astype(int)
    spans = [(int(a), int(b)) for a, b in itertools.pairwise(cuts)]
    # Rows dealt out at random (seeded), not in their order (a time split's rows are in
    # time order): each worker cuts the bins of some features from its own rows, which
    # should then look like all of them.
    dealt = np.random.default_rng(0).permutation(len(y))

    # Block i on worker i (mod their number), the same placement at every fit: which rows
    # a worker holds shapes its bins, so a retrain on the same cluster is the same model.
    workers = sorted(client.scheduler_info()["workers"])

    def blocks(values: np.ndarray) -> Any:
        futures = [
            client.scatter(values[dealt[a:b]], workers=[workers[i % len(workers)]])
            for i, (a, b) in enumerate(spans)
        ]
        shapes = [(b - a, *values.shape[1:]) for a, b in spans]
        parts = [
            da.from_delayed(f, shape=s, dtype=values.dtype)
            for f, s in zip(futures, shapes, strict=True)
        ]
        return da.concatenate(parts)

    return blocks(X), blocks(y)

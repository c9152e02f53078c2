"""Fitting a model spec on its training data: encode, split, search parameters (when
asked), fit, predict the held-out rows. No registry and no report here: `trainer.py` puts
the pieces together."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gristmill.train.encode import Encoding
from gristmill.train.estimators import estimator
from gristmill.train.spec import Split, kfold, time_split
from gristmill.train.split import make_folds

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from gristmill.execution import Executor
    from gristmill.train.data import TrainingData
    from gristmill.train.search import SearchResult
    from gristmill.train.spec import Model


@dataclass
class Fitted:
    fitted: Any
    """The estimator's model, fitted on the rows the split trains on (every row for
    k-fold splits)."""
    encoding: Encoding
    classes: list[Any]
    split: Split
    params: dict[str, Any]
    """The parameters fitted with: the spec's, or the search's best."""
    y_test: np.ndarray
    predicted: np.ndarray
    """Predictions for the evaluation rows (out of fold for k-fold splits)."""
    X_test: np.ndarray
    test_index: np.ndarray
    """Positions of the evaluation rows in the training data."""
    train_rows: int
    test_rows: int
    fit_seconds: float
    """The estimator's own fitting time, for the overhead benchmark."""
    search: SearchResult | None = None


def _inner_split(rows: np.ndarray, times: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Training rows divided again for the search: the newest fifth (by time) or a
    seeded random fifth is scored."""
    import numpy as np

    if times is not None:
        order = rows[np.argsort(times[rows], kind="stable")]
    else:
        order = np.random.default_rng(0).permutation(rows)
    cut = int(len(order) * 0.8)
    return order[:cut], order[cut:]


def fit(model: Model, data: TrainingData, executor: Executor | None = None) -> Fitted:
    """`executor`: where the estimator's heavy work runs (a LightGBM fit, a forest's
    trees, the search's trials); None: this process."""
    import numpy as np

    family = estimator(model.estimator)
    y, classes = data.target(model)
    times = data.times()
    split = model.split or (time_split() if data.time_column else kfold())
    groups = data.table.column(split.group).to_numpy() if split.group else None
    folds = make_folds(split, data.table.num_rows, times, groups)
    features = data.table.select(data.features)

    def rows_of(rows: np.ndarray) -> pa.Table:
        # Rows in one run (a time split's, over rows in time order) are a zero-copy slice.
        if len(rows) and rows[-1] - rows[0] == len(rows) - 1:
            return features.slice(int(rows[0]), len(rows))
        return features.take(rows)

    if split.kind == "time":
        [fold] = folds
        # Categories are learned from the training rows only, as they would be in production.
        encoding = Encoding.fit(rows_of(fold.train), data.features)
        training = fold.train
    else:
        encoding = Encoding.fit(features, data.features)
        training = np.arange(len(y))

    def matrix(rows: np.ndarray) -> np.ndarray:
        return encoding.transform(rows_of(rows))

    params, found = dict(model.params), None
    if model.search is not None:
        from gristmill.train.search import search

        inner_train, inner_valid = _inner_split(training, times)
        found = search(
            model,
            family,
            (matrix(inner_train), y[inner_train]),
            (matrix(inner_valid), y[inner_valid]),
            encoding.categorical,
            len(classes),
            executor,
        )
        params = found.best_params
    fit_seconds = 0.0
    fit_with = family.fit if executor is None else functools.partial(family.fit_on, executor)

    def fit_rows(X: np.ndarray, labels: np.ndarray) -> Any:
        nonlocal fit_seconds
        started = time.perf_counter()
        fitted = fit_with(
            X,
            labels,
            task=model.task,
            categorical=encoding.categorical,
            params=params,
            classes=len(classes),
        )
        fit_seconds += time.perf_counter() - started
        return fitted

    if split.kind == "time":
        fitted = fit_rows(matrix(fold.train), y[fold.train])
        X_test = matrix(fold.test)
        predicted = family.predict(fitted, X_test, model.task)
        test = fold.test
    else:
        X_test = matrix(training)
        shape = (len(y), len(classes)) if model.task == "multiclass" else (len(y),)
        predicted = np.empty(shape, dtype=np.float64)
        for each in folds:
            part = fit_rows(X_test[each.train], y[each.train])
            predicted[each.test] = family.predict(part, X_test[each.test], model.task)
        fitted = fit_rows(X_test, y)
        test = training
    return Fitted(
        fitted=fitted,
        encoding=encoding,
        classes=classes,
        split=split,
        params=params,
        y_test=y[test],
        predicted=predicted,
        X_test=X_test,
        test_index=test,
        train_rows=len(training),
        test_rows=len(test),
        fit_seconds=fit_seconds,
        search=found,
    )

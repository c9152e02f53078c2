"""Fitting a model spec on its training data: encode, split, fit, predict the held-out
rows. No registry and no report here: `trainer.py` puts the pieces together."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gristmill.train.encode import Encoding
from gristmill.train.estimators import estimator
from gristmill.train.spec import Split, kfold, time_split
from gristmill.train.split import make_folds

if TYPE_CHECKING:
    import numpy as np

    from gristmill.train.data import TrainingData
    from gristmill.train.spec import Model


@dataclass
class Fitted:
    fitted: Any
    """The estimator's model, fitted on the rows the split trains on (every row for
    k-fold splits)."""
    encoding: Encoding
    classes: list[Any]
    split: Split
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


def fit(model: Model, data: TrainingData) -> Fitted:
    import numpy as np

    family = estimator(model.estimator)
    y, classes = data.target(model)
    split = model.split or (time_split() if data.time_column else kfold())
    groups = data.table.column(split.group).to_numpy() if split.group else None
    folds = make_folds(split, data.table.num_rows, data.times(), groups)
    features = data.table.select(data.features)
    params = dict(model.params)
    fit_seconds = 0.0

    def fit_rows(rows: np.ndarray, encoding: Encoding) -> Any:
        nonlocal fit_seconds
        started = time.perf_counter()
        X = encoding.transform(features.take(rows))
        fitted = family.fit(
            X,
            y[rows],
            task=model.task,
            categorical=encoding.categorical,
            params=params,
            classes=len(classes),
        )
        fit_seconds += time.perf_counter() - started
        return fitted

    if split.kind == "time":
        [fold] = folds
        # Categories are learned from the training rows only, as they would be in production.
        encoding = Encoding.fit(features.take(fold.train), data.features)
        fitted = fit_rows(fold.train, encoding)
        X_test = encoding.transform(features.take(fold.test))
        predicted = family.predict(fitted, X_test, model.task)
        return Fitted(
            fitted,
            encoding,
            classes,
            split,
            y[fold.test],
            predicted,
            X_test,
            fold.test,
            len(fold.train),
            len(fold.test),
            fit_seconds,
        )
    encoding = Encoding.fit(features, data.features)
    X_all = encoding.transform(features)
    shape = (len(y), len(classes)) if model.task == "multiclass" else (len(y),)
    predicted = np.empty(shape, dtype=np.float64)
    for fold in folds:
        predicted[fold.test] = family.predict(
            fit_rows(fold.train, encoding), X_all[fold.test], model.task
        )
    fitted = fit_rows(np.arange(len(y)), encoding)
    return Fitted(
        fitted,
        encoding,
        classes,
        split,
        y,
        predicted,
        X_all,
        np.arange(len(y)),
        len(y),
        len(y),
        fit_seconds,
    )

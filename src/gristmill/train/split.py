"""Dividing a training set's rows into training and evaluation rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gristmill.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from gristmill.train.spec import Split


@dataclass
class Fold:
    train: np.ndarray
    """Row positions to fit on."""
    test: np.ndarray
    """Row positions to evaluate on."""


def make_folds(
    split: Split, rows: int, times: np.ndarray | None, groups: np.ndarray | None
) -> list[Fold]:
    """The folds of `split`. A time split is one fold: every row before the cut time
    trains, every row at or after it is evaluated, so no moment is on both sides."""
    import numpy as np

    if split.kind == "time":
        if times is None:
            raise ConfigError(
                "A time split needs the training set's time column: name it with"
                " time_column=..., or use kfold()."
            )
        cut = np.quantile(times, 1 - split.test, method="higher")
        train, test = np.flatnonzero(times < cut), np.flatnonzero(times >= cut)
        if len(train) == 0 or len(test) == 0:
            raise ConfigError(
                f"A time split at {split.test:.0%} leaves no {'training' if len(train) == 0 else 'evaluation'}"
                " rows: the rows share too few distinct times. Use kfold() instead."
            )
        return [Fold(train, test)]
    from sklearn.model_selection import GroupKFold, KFold

    if rows < split.folds:
        raise ConfigError(
            f"{split.folds} folds need at least {split.folds} rows; there are {rows}."
        )
    if split.kind == "group_kfold":
        if groups is None:
            raise ConfigError(f"group_kfold needs the column {split.group} in the training set.")
        if len(np.unique(groups)) < split.folds:
            raise ConfigError(
                f"group_kfold over {split.group}: fewer distinct values than {split.folds} folds."
            )
        parts = GroupKFold(n_splits=split.folds).split(np.zeros(rows), groups=groups)
    else:
        parts = KFold(n_splits=split.folds, shuffle=True, random_state=split.seed).split(
            np.zeros(rows)
        )
    return [Fold(train, test) for train, test in parts]

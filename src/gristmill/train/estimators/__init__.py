"""Estimator families, resolved by name through the backend registry (kind "estimator").

`base.Estimator` is the interface; `lightgbm.py` and `sklearn.py` implement it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gristmill import backends

if TYPE_CHECKING:
    from gristmill.train.estimators.base import Estimator


def estimator(name: str) -> Estimator:
    cls = backends.resolve("estimator", name)
    found: Estimator = cls()
    return found

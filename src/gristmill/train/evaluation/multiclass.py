"""Evaluation of a multiclass classifier from its labels and class probabilities.

`proba[:, j]` is the probability of `classes[j]`; the predicted class of a row is the
column of its highest probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gristmill.errors import EvaluationError
from gristmill.train.evaluation.base import Result, count, num, same_length, share, vector

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike

SUM_TOLERANCE = 1e-3
"""How far a row of probabilities may sum from 1 (float32 models round)."""


@dataclass(frozen=True)
class ClassMetrics(Result):
    label: str
    support: int
    """Rows of this class in y_true."""
    predicted: int
    """Rows predicted as this class."""
    precision: float | None
    """None when no row is predicted as this class."""
    recall: float | None
    """None when the class does not occur in y_true."""
    f1: float | None
    auc: float | None
    """One-vs-rest ROC AUC; None when the class is absent (or alone) in y_true."""


@dataclass(frozen=True)
class MulticlassEvaluation(Result):
    task = "multiclass"

    rows: int
    classes: list[str]
    accuracy: float
    macro_f1: float
    weighted_f1: float
    log_loss: float
    macro_auc: float | None
    """The mean of the defined one-vs-rest AUCs."""
    per_class: list[ClassMetrics]
    confusion: list[list[int]]
    """confusion[i][j]: rows of class i predicted as class j."""
    notes: list[str]

    def summary(self, detail: bool = True) -> list[tuple[str, str]]:
        """(label, value) pairs; `detail=False` leaves out the per-class lines and notes."""
        rows = [
            ("Rows", count(self.rows)),
            ("Classes", str(len(self.classes))),
            ("Accuracy", share(self.accuracy)),
            ("Macro F1", num(self.macro_f1)),
            ("Weighted F1", num(self.weighted_f1)),
            ("Log loss", num(self.log_loss)),
            ("Macro one-vs-rest AUC", num(self.macro_auc)),
        ]
        if not detail:
            return rows
        for c in self.per_class:
            rows.append(
                (
                    f"Class {c.label}",
                    f"precision {share(c.precision)} · recall {share(c.recall)} · "
                    f"F1 {num(c.f1)} · AUC {num(c.auc)} · {c.support:,} rows",
                )
            )
        return rows + [("Note", note) for note in self.notes]


def _codes(y_true: ArrayLike, classes: Sequence[Any]) -> np.ndarray:
    """y_true as column positions in `classes`."""
    import numpy as np

    labels = vector(y_true, "y_true", numeric=False)
    position = {c: i for i, c in enumerate(classes)}
    if len(position) != len(classes):
        raise EvaluationError(f"classes holds duplicates: {list(classes)}.")
    # Labels may be numpy scalars: compare as Python values.
    values = labels.tolist()
    unknown = sorted({str(v) for v in values if v not in position})
    if unknown:
        raise EvaluationError(
            f"y_true holds labels that are not in classes ({', '.join(map(str, classes))}): "
            f"{', '.join(unknown[:5])}."
        )
    return np.array([position[v] for v in values], dtype=np.int64)


def _probabilities(proba: ArrayLike, columns: int) -> np.ndarray:
    import numpy as np

    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != columns:
        raise EvaluationError(
            f"proba must have one column per class ({columns}); got shape {p.shape}."
        )
    missing = int(np.isnan(p).any(axis=1).sum())
    if missing:
        raise EvaluationError(f"proba holds NaN in {missing:,} rows.")
    if (p < 0).any() or (p > 1).any():
        raise EvaluationError("proba must hold probabilities in [0, 1].")
    off = int((np.abs(p.sum(axis=1) - 1) > SUM_TOLERANCE).sum())
    if off:
        raise EvaluationError(f"proba rows must sum to 1; {off:,} rows do not.")
    return p


def evaluate_multiclass(
    y_true: ArrayLike, proba: ArrayLike, classes: Sequence[Any]
) -> MulticlassEvaluation:
    """Accuracy, F1, log loss, per-class metrics, one-vs-rest AUCs and the confusion matrix."""
    import numpy as np
    from sklearn import metrics

    if len(classes) < 2:
        raise EvaluationError(f"A multiclass evaluation needs 2 classes or more; got {classes}.")
    y = _codes(y_true, classes)
    p = _probabilities(proba, len(classes))
    rows = same_length(y_true=y, proba=p)
    if rows == 0:
        raise EvaluationError("proba is empty: there is nothing to evaluate.")
    k = len(classes)
    labels = list(range(k))
    predicted = p.argmax(axis=1)
    notes: list[str] = []

    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=np.nan
    )
    per_class = []
    aucs = []
    for j in labels:
        present = y == j
        auc = None
        if 0 < present.sum() < rows:
            auc = float(metrics.roc_auc_score(present, p[:, j]))
            aucs.append(auc)
        per_class.append(
            ClassMetrics(
                label=str(classes[j]),
                support=int(support[j]),
                predicted=int((predicted == j).sum()),
                precision=None if np.isnan(precision[j]) else float(precision[j]),
                recall=None if np.isnan(recall[j]) else float(recall[j]),
                f1=None if np.isnan(f1[j]) else float(f1[j]),
                auc=auc,
            )
        )
    absent = [str(classes[j]) for j in labels if not support[j]]
    if absent:
        notes.append(
            f"No rows of class {', '.join(absent)} in y_true: its recall and AUC are undefined."
        )
    f1_zero = {"zero_division": 0.0}  # an undefined class F1 counts as 0 in the averages
    return MulticlassEvaluation(
        rows=rows,
        classes=[str(c) for c in classes],
        accuracy=float(metrics.accuracy_score(y, predicted)),
        macro_f1=float(metrics.f1_score(y, predicted, labels=labels, average="macro", **f1_zero)),
        weighted_f1=float(
            metrics.f1_score(y, predicted, labels=labels, average="weighted", **f1_zero)
        ),
        log_loss=float(metrics.log_loss(y, p, labels=labels)),
        macro_auc=float(np.mean(aucs)) if aucs else None,
        per_class=per_class,
        confusion=metrics.confusion_matrix(y, predicted, labels=labels).tolist(),
        notes=notes,
    )

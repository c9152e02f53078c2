"""Evaluation of a binary classifier from its labels and predicted probabilities.

A row is flagged (predicted positive) when its score is at or above the threshold, as in
scikit-learn. With `weights`, every count (positives, true positives, a decile's rows) is
a sum of weights, and every rate is weighted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gristmill.errors import EvaluationError
from gristmill.train.evaluation.base import (
    Result,
    binary_labels,
    count,
    num,
    probabilities,
    ratio,
    same_length,
    sample_weights,
    share,
)
from gristmill.train.evaluation.rules import (
    Ranking,
    RuleComparison,
    check_flags,
    compare,
    rule_result,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike

CURVE_POINTS = 200
"""Most points kept of the ROC and PR curves: plenty for a plot, small in JSON."""
CALIBRATION_BINS = 10
COST_KEYS = ("fp", "fn")


@dataclass(frozen=True)
class Curve(Result):
    """A curve for plotting; `thresholds[i]` is the score at point i (None: beyond all)."""

    x: list[float]
    y: list[float]
    thresholds: list[float | None] = field(default_factory=list)


@dataclass(frozen=True)
class ThresholdResult(Result):
    """The confusion matrix and its rates when rows scoring >= `threshold` are flagged."""

    threshold: float
    reason: str
    """Why this threshold: "0.5", "KS", "minimum cost" or "given"."""
    tp: float
    fp: float
    tn: float
    fn: float
    flag_rate: float
    precision: float | None
    """None when nothing is flagged."""
    recall: float | None
    """None when there are no positives."""
    f1: float | None
    false_positive_rate: float | None
    cost: float | None
    """fp x costs["fp"] + fn x costs["fn"]; None without costs."""


@dataclass(frozen=True)
class CalibrationBin(Result):
    """Rows in one quantile bin of score: the mean predicted probability against the
    observed rate of positives."""

    bin: int
    count: float
    min_score: float
    max_score: float
    mean_predicted: float
    observed_rate: float


@dataclass(frozen=True)
class DecileRow(Result):
    """One tenth of the rows by score, decile 1 holding the highest scores."""

    decile: int
    count: float
    positives: float
    """Expected positives (fractional when a tie of scores straddles two deciles)."""
    rate: float | None
    lift: float | None
    """The decile's rate over the base rate."""
    cumulative_gain: float | None
    """Share of all positives in deciles 1..this one."""
    cumulative_lift: float | None
    min_score: float
    max_score: float


@dataclass(frozen=True)
class BinaryEvaluation(Result):
    task = "binary"

    rows: int
    weighted: bool
    positives: float
    base_rate: float
    roc_auc: float | None
    """None when y_true holds one class only (as are pr_auc, gini and ks)."""
    pr_auc: float | None
    """Average precision (the step-wise area under the precision-recall curve)."""
    gini: float | None
    ks: float | None
    """The largest gap between the true and false positive rates over thresholds."""
    ks_threshold: float | None
    log_loss: float
    brier: float
    calibration_error: float
    """Expected calibration error: the weighted mean |predicted - observed| over bins."""
    thresholds: list[ThresholdResult]
    costs: dict[str, float] | None
    min_cost_threshold: float | None
    calibration: list[CalibrationBin]
    deciles: list[DecileRow]
    gain: Curve
    """Share of positives caught (y) against share of rows flagged (x), best first."""
    roc: Curve
    pr: Curve
    """Precision (y) against recall (x)."""
    rules: list[RuleComparison]
    notes: list[str]

    def summary(self, detail: bool = True) -> list[tuple[str, str]]:
        """(label, value) pairs; `detail=False` leaves out the per-threshold and per-rule
        lines (and the notes), which the HTML report shows in their own sections."""
        rows = [
            ("Rows", count(self.rows) + (" (weighted)" if self.weighted else "")),
            ("Positives", f"{count(self.positives)} ({share(self.base_rate, 2)})"),
            ("ROC AUC", num(self.roc_auc)),
            ("PR AUC (average precision)", num(self.pr_auc)),
            ("Gini", num(self.gini)),
            (
                "KS",
                num(self.ks)
                + (f" at score {num(self.ks_threshold)}" if self.ks_threshold is not None else ""),
            ),
            ("Log loss", num(self.log_loss)),
            ("Brier score", num(self.brier)),
            ("Calibration error (ECE)", num(self.calibration_error)),
        ]
        if self.deciles and self.deciles[0].lift is not None:
            top = self.deciles[0]
            rows.append(
                (
                    "Top-decile lift",
                    f"{num(top.lift, 2)}x (catches {share(top.cumulative_gain)} of positives)",
                )
            )
        if not detail:
            return rows
        for t in self.thresholds:
            text = (
                f"precision {share(t.precision)} · recall {share(t.recall)} · "
                f"flags {share(t.flag_rate)}"
            )
            if t.cost is not None:
                text += f" · cost {num(t.cost)}"
            rows.append((f"At score ≥ {num(t.threshold)} ({t.reason})", text))
        for comparison in self.rules:
            rows += comparison.summary()
        rows += [("Note", note) for note in self.notes]
        return rows


def _thin(x: np.ndarray, y: np.ndarray, limit: int = CURVE_POINTS) -> np.ndarray:
    """Indices of at most `limit` points spread evenly along the curve's length, so that
    its shape survives (evenly spaced indices would crowd where points are dense)."""
    import numpy as np

    if len(x) <= limit:
        return np.arange(len(x))
    along = np.r_[0.0, np.cumsum(np.hypot(np.diff(x), np.diff(y)))]
    marks = np.linspace(0.0, along[-1], limit)
    picked = np.searchsorted(along, marks).clip(0, len(x) - 1)
    return np.unique(np.r_[0, picked, len(x) - 1])


def _curve(x: np.ndarray, y: np.ndarray, thresholds: np.ndarray) -> Curve:
    keep = _thin(x, y)
    return Curve(
        x=[float(v) for v in x[keep]],
        y=[float(v) for v in y[keep]],
        thresholds=[float(t) if math.isfinite(t) else None for t in thresholds[keep]],
    )


def _check_costs(costs: Mapping[str, float] | None) -> dict[str, float] | None:
    if costs is None:
        return None
    unknown = sorted(set(costs) - set(COST_KEYS))
    missing = [k for k in COST_KEYS if k not in costs]
    if unknown or missing:
        raise EvaluationError(
            "costs must give the cost of a false positive and of a false negative, as "
            '{"fp": 1.0, "fn": 20.0}'
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + "."
        )
    checked = {k: float(costs[k]) for k in COST_KEYS}
    if any(not math.isfinite(v) or v < 0 for v in checked.values()):
        raise EvaluationError(f"costs must be finite and not negative; got {checked}.")
    return checked


def _at_threshold(
    threshold: float,
    reason: str,
    y: np.ndarray,
    s: np.ndarray,
    w: np.ndarray,
    costs: dict[str, float] | None,
) -> ThresholdResult:
    flagged = s >= threshold
    tp = float(w[flagged & (y == 1)].sum())
    fp = float(w[flagged & (y == 0)].sum())
    fn = float(w[~flagged & (y == 1)].sum())
    tn = float(w[~flagged & (y == 0)].sum())
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    f1 = None
    if precision is not None and recall is not None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ThresholdResult(
        threshold=threshold,
        reason=reason,
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        flag_rate=(tp + fp) / (tp + fp + tn + fn),
        precision=precision,
        recall=recall,
        f1=f1,
        false_positive_rate=ratio(fp, fp + tn),
        cost=None if costs is None else fp * costs["fp"] + fn * costs["fn"],
    )


def _min_cost_threshold(ranking: Ranking, costs: dict[str, float]) -> float:
    """The threshold of least cost, over "flag nothing" and each distinct score."""
    import numpy as np

    false_pos = ranking.flagged - ranking.caught
    false_neg = ranking.positives - ranking.caught
    total = costs["fp"] * false_pos + costs["fn"] * false_neg
    best = int(np.argmin(total))  # the first: among equal costs, the fewest flags
    if best == 0:
        return float(np.nextafter(ranking.group_scores[0], math.inf))
    return float(ranking.group_scores[best - 1])


def _calibration(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> list[CalibrationBin]:
    import numpy as np

    # Quantile edges; when scores tie, edges coincide and bins merge, so there may be
    # fewer than ten.
    edges = np.unique(np.quantile(s, np.linspace(0, 1, CALIBRATION_BINS + 1)))
    which = np.searchsorted(edges[1:-1], s, side="right")
    bins: list[CalibrationBin] = []
    for b in range(len(edges) - 1 or 1):
        inside = which == b
        weight = float(w[inside].sum())
        if not weight:
            continue
        bins.append(
            CalibrationBin(
                bin=len(bins) + 1,
                count=weight,
                min_score=float(s[inside].min()),
                max_score=float(s[inside].max()),
                mean_predicted=float(np.average(s[inside], weights=w[inside])),
                observed_rate=float(np.average(y[inside], weights=w[inside])),
            )
        )
    return bins


def _deciles(ranking: Ranking, rows: int, weighted: bool) -> list[DecileRow]:
    import numpy as np

    total, positives = ranking.total, ranking.positives
    shares = np.arange(11) / 10
    # Unweighted deciles cut at whole rows, so that counts stay whole numbers.
    cuts = shares * total if weighted else np.round(shares * rows)
    caught = ranking.caught_at(cuts)
    base = positives / total
    out = []
    for k in range(1, 11):
        size = float(cuts[k] - cuts[k - 1])
        if size <= 0:
            continue  # fewer than ten rows
        found = float(caught[k] - caught[k - 1])
        rate = found / size
        first = ranking.score_at(float(cuts[k - 1]) + 1e-9 * total)
        out.append(
            DecileRow(
                decile=k,
                count=size,
                positives=found,
                rate=rate,
                lift=rate / base if base else None,
                cumulative_gain=float(caught[k]) / positives if positives else None,
                cumulative_lift=(float(caught[k]) / float(cuts[k])) / base if base else None,
                min_score=ranking.score_at(float(cuts[k])),
                max_score=first,
            )
        )
    return out


def evaluate_binary(
    y_true: ArrayLike,
    score: ArrayLike,
    *,
    thresholds: Sequence[float] | None = None,
    costs: Mapping[str, float] | None = None,
    weights: ArrayLike | None = None,
    rules: Mapping[str, ArrayLike] | None = None,
) -> BinaryEvaluation:
    """Every binary metric, table and curve from labels (0/1) and probabilities of 1.

    `thresholds`: the scores at which to report a confusion matrix; by default 0.5 and
    either the cheapest threshold (with `costs={"fp": ..., "fn": ...}`) or the KS one.
    `rules`: baseline rules by name, each a boolean mask of the rows it flags; the model
    is compared with each at the rule's flag rate.
    """
    import numpy as np
    from sklearn import metrics

    y, s = binary_labels(y_true), probabilities(score)
    rows = same_length(y_true=y, score=s)
    w_given = sample_weights(weights, rows)
    w = np.ones(rows) if w_given is None else w_given
    checked_costs = _check_costs(costs)
    masks = {name: check_flags(mask) for name, mask in (rules or {}).items()}
    for name, mask in masks.items():
        same_length(y_true=y, **{f"rule {name}": mask})

    notes: list[str] = []
    positives, total = float((w * y).sum()), float(w.sum())
    one_class = positives in (0.0, total)
    if one_class:
        notes.append(
            f"y_true holds only {'positives' if positives else 'negatives'}: ROC AUC, "
            "PR AUC, Gini and KS are undefined."
        )
    if w_given is not None:
        notes.append("Counts are sums of weights.")

    roc_auc = pr_auc = ks = ks_threshold = None
    roc, pr = Curve([], []), Curve([], [])
    if not one_class:
        fpr, tpr, roc_thresholds = metrics.roc_curve(y, s, sample_weight=w, drop_intermediate=False)
        roc = _curve(fpr, tpr, roc_thresholds)
        precision, recall, pr_thresholds = metrics.precision_recall_curve(y, s, sample_weight=w)
        # The last point (recall 0, precision 1) has no threshold.
        pr = _curve(recall, precision, np.r_[pr_thresholds, np.inf])
        roc_auc = float(metrics.roc_auc_score(y, s, sample_weight=w))
        pr_auc = float(metrics.average_precision_score(y, s, sample_weight=w))
        # Index 0 is sklearn's "flag nothing" point, whose threshold is infinite.
        gap = tpr[1:] - fpr[1:]
        best = int(np.argmax(gap)) + 1
        ks, ks_threshold = float(tpr[best] - fpr[best]), float(roc_thresholds[best])

    ranking = Ranking(y, s, w_given)
    min_cost = _min_cost_threshold(ranking, checked_costs) if checked_costs else None
    if thresholds is None:
        chosen = [(0.5, "0.5")]
        if min_cost is not None:
            chosen.append((min_cost, "minimum cost"))
        elif ks_threshold is not None:
            chosen.append((ks_threshold, "KS"))
        if len(chosen) == 2 and math.isclose(chosen[0][0], chosen[1][0]):
            chosen = chosen[1:]
    else:
        chosen = [(float(t), "given") for t in thresholds]

    shares = np.linspace(0, 1, 101)
    gain = Curve([], [])
    if positives:
        caught = ranking.caught_at(shares * ranking.total) / ranking.positives
        gain = Curve([float(v) for v in shares], [float(v) for v in caught])

    calibration = _calibration(y, s, w)
    ece = sum(b.count * abs(b.mean_predicted - b.observed_rate) for b in calibration) / total
    return BinaryEvaluation(
        rows=rows,
        weighted=w_given is not None,
        positives=positives,
        base_rate=positives / total,
        roc_auc=roc_auc,
        pr_auc=pr_auc,
        gini=None if roc_auc is None else 2 * roc_auc - 1,
        ks=ks,
        ks_threshold=ks_threshold,
        log_loss=float(metrics.log_loss(y, s, sample_weight=w, labels=[0, 1])),
        brier=float(metrics.brier_score_loss(y, s, sample_weight=w, pos_label=1)),
        calibration_error=float(ece),
        thresholds=[_at_threshold(t, why, y, s, w, checked_costs) for t, why in chosen],
        costs=checked_costs,
        min_cost_threshold=min_cost,
        calibration=calibration,
        deciles=_deciles(ranking, rows, w_given is not None),
        gain=gain,
        roc=roc,
        pr=pr,
        rules=[
            compare(rule_result(name, y, m, w_given), y, s, w_given) for name, m in masks.items()
        ],
        notes=notes,
    )

"""A baseline rule ("amount above its 99th percentile") against a model at the same flag
rate: which catches more of the positives when both flag the same share of rows.

Ranking rows by score has one subtlety: ties. When a cut-off (the top 1%, a decile) falls
inside a group of rows with the same score, which of them are "flagged" is arbitrary, so
the positives caught are counted as the expected value under a random order of the tied
rows (the group's positives in proportion to the share of the group flagged). Results
then do not depend on the order of the input rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gristmill.errors import EvaluationError
from gristmill.train.evaluation.base import (
    Result,
    binary_labels,
    count,
    num,
    ratio,
    same_length,
    sample_weights,
    share,
    vector,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike


class Ranking:
    """Rows by score, highest first: how much weight and how many positives are flagged
    when everything down to a given position is flagged."""

    def __init__(self, y: np.ndarray, score: np.ndarray, w: np.ndarray | None) -> None:
        import numpy as np

        weights = np.ones_like(y) if w is None else w
        keep = weights > 0  # a row of weight 0 takes no place in the ranking
        y, score, weights = y[keep], score[keep], weights[keep]
        order = np.argsort(-score, kind="stable")
        self.row_scores = score[order]
        self.row_flagged = np.cumsum(weights[order])
        row_caught = np.cumsum((y * weights)[order])
        ends = np.r_[np.flatnonzero(np.diff(self.row_scores)), len(order) - 1]
        self.group_scores = self.row_scores[ends]
        # At group boundaries, starting with nothing flagged.
        self.flagged = np.r_[0.0, self.row_flagged[ends]]
        self.caught = np.r_[0.0, row_caught[ends]]
        self.total = float(self.flagged[-1])
        self.positives = float(self.caught[-1])

    def caught_at(self, flagged: np.ndarray | float) -> np.ndarray:
        """Expected positives among the top `flagged` weight, ties shared pro rata."""
        import numpy as np

        return np.asarray(np.interp(flagged, self.flagged, self.caught))

    def score_at(self, flagged: float) -> float:
        """The score of the row at position `flagged` (from the top)."""
        import numpy as np

        index = int(np.searchsorted(self.row_flagged, flagged, side="left"))
        return float(self.row_scores[min(index, len(self.row_scores) - 1)])


@dataclass(frozen=True)
class RuleEvaluation(Result):
    """What a rule that flags rows achieves. Counts are sums of weights when weighted."""

    name: str
    rows: float
    flagged: float
    caught: float
    """Positives among the flagged rows."""
    positives: float
    flag_rate: float
    precision: float | None
    """None when the rule flags nothing."""
    recall: float | None
    """None when there are no positives."""
    base_rate: float
    lift: float | None
    """Precision over the base rate: how much richer in positives the flagged rows are."""

    def summary(self) -> list[tuple[str, str]]:
        return [
            (f"Rule '{self.name}' flags", f"{count(self.flagged)} ({share(self.flag_rate)})"),
            ("Catches", f"{count(self.caught)} of {count(self.positives)} positives"),
            ("Recall", share(self.recall)),
            ("Precision", share(self.precision)),
            ("Lift", f"{num(self.lift, 2)}x" if self.lift is not None else "—"),
        ]


@dataclass(frozen=True)
class RuleComparison(Result):
    """A model flagging the same share of rows as a rule, next to the rule."""

    rule: RuleEvaluation
    model_threshold: float | None
    """The score above which the model flags that share (None when the rule flags nothing)."""
    model_caught: float
    model_precision: float | None
    model_recall: float | None
    model_lift: float | None

    def sentence(self, positives: str = "positives", rows: str = "rows") -> str:
        """One line for the terminal, e.g. with positives="fraud", rows="transactions"."""
        r = self.rule
        if r.flagged == 0:
            return f"The rule '{r.name}' flags no {rows}: there is nothing to compare."
        if r.recall is None:
            return f"There are no {positives} to catch: recall is undefined."
        return (
            f"Flagging the same {share(r.flag_rate)} of {rows} as the rule '{r.name}', "
            f"the model catches {share(self.model_recall)} of {positives} "
            f"(precision {share(self.model_precision)}); "
            f"the rule catches {share(r.recall)} (precision {share(r.precision)})."
        )

    def summary(self) -> list[tuple[str, str]]:
        r = self.rule
        return [
            (
                f"vs rule '{r.name}'",
                f"at {share(r.flag_rate)} flagged, model recall {share(self.model_recall)} "
                f"vs rule {share(r.recall)}; precision {share(self.model_precision)} "
                f"vs {share(r.precision)}",
            )
        ]


def check_flags(flagged: ArrayLike) -> np.ndarray:
    import numpy as np

    f = vector(flagged, "flagged")
    unexpected = np.setdiff1d(np.unique(f), [0.0, 1.0])
    if unexpected.size:
        raise EvaluationError(
            "flagged must hold booleans (or 0 and 1): whether the rule flags each row; "
            f"it also holds {', '.join(f'{v:g}' for v in unexpected[:5])}."
        )
    return f


def rule_result(name: str, y: np.ndarray, f: np.ndarray, w: np.ndarray | None) -> RuleEvaluation:
    import numpy as np

    weights = np.ones_like(y) if w is None else w
    rows, positives = float(weights.sum()), float((weights * y).sum())
    flagged = float((weights * f).sum())
    caught = float((weights * f * y).sum())
    precision = ratio(caught, flagged)
    base_rate = positives / rows
    return RuleEvaluation(
        name=name,
        rows=rows,
        flagged=flagged,
        caught=caught,
        positives=positives,
        flag_rate=flagged / rows,
        precision=precision,
        recall=ratio(caught, positives),
        base_rate=base_rate,
        lift=None if precision is None or not base_rate else precision / base_rate,
    )


def evaluate_rule(
    y_true: ArrayLike, flagged: ArrayLike, *, name: str = "rule", weights: ArrayLike | None = None
) -> RuleEvaluation:
    """Precision, recall, flag rate and lift of a rule that flags rows (a boolean mask)."""
    y, f = binary_labels(y_true), check_flags(flagged)
    same_length(y_true=y, flagged=f)
    return rule_result(name, y, f, sample_weights(weights, len(y)))


def compare(
    rule: RuleEvaluation, y: np.ndarray, score: np.ndarray, w: np.ndarray | None
) -> RuleComparison:
    """The model at the rule's flag rate, from checked arrays."""
    ranking = Ranking(y, score, w)
    flagged = rule.flag_rate * ranking.total
    caught = float(ranking.caught_at(flagged)) if flagged else 0.0
    precision = ratio(caught, flagged)
    return RuleComparison(
        rule=rule,
        model_threshold=ranking.score_at(flagged) if flagged else None,
        model_caught=caught,
        model_precision=precision,
        model_recall=ratio(caught, ranking.positives),
        model_lift=None if precision is None or not rule.base_rate else precision / rule.base_rate,
    )


def compare_with_rule(
    y_true: ArrayLike,
    score: ArrayLike,
    flagged: ArrayLike,
    *,
    name: str = "rule",
    weights: ArrayLike | None = None,
) -> RuleComparison:
    """The model's recall, precision and lift when it flags the same share of rows as the
    rule (its highest scores), next to the rule's."""
    # Only the ranking matters here, so any score will do, not just probabilities.
    y, s, f = binary_labels(y_true), vector(score, "score"), check_flags(flagged)
    same_length(y_true=y, score=s, flagged=f)
    w = sample_weights(weights, len(y))
    return compare(rule_result(name, y, f, w), y, s, w)

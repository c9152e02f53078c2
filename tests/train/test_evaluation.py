"""Evaluations: each metric against sklearn or a hand-computed value, the tables on
constructed examples with known answers, and the edge cases' behaviour."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics

from gristmill.errors import EvaluationError
from gristmill.train.evaluation import (
    compare_with_rule,
    evaluate_binary,
    evaluate_multiclass,
    evaluate_regression,
    evaluate_rule,
)

# Ten rows, scores 0.95 down to 0.05, positives at ranks 1, 2 and 4.
SCORES = np.round(np.arange(0.95, 0, -0.1), 2)
LABELS = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0])


def noisy(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(1.5 * x - 2)))
    y = (rng.random(n) < p).astype(int)
    return y, np.clip(p + rng.normal(scale=0.05, size=n), 0, 1)


def as_json(result: object) -> dict[str, object]:
    data = result.to_dict()  # type: ignore[attr-defined]
    return json.loads(json.dumps(data, allow_nan=False))  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- binary


def test_binary_metrics_match_sklearn() -> None:
    y, s = noisy()
    e = evaluate_binary(y, s)
    assert e.roc_auc == pytest.approx(metrics.roc_auc_score(y, s))
    assert e.pr_auc == pytest.approx(metrics.average_precision_score(y, s))
    assert e.log_loss == pytest.approx(metrics.log_loss(y, s))
    assert e.brier == pytest.approx(metrics.brier_score_loss(y, s))
    assert e.gini == pytest.approx(2 * metrics.roc_auc_score(y, s) - 1)
    assert e.base_rate == pytest.approx(y.mean())
    at_half = e.thresholds[0]
    assert at_half.threshold == 0.5 and at_half.reason == "0.5"
    predicted = (s >= 0.5).astype(int)
    tn, fp, fn, tp = metrics.confusion_matrix(y, predicted).ravel()
    assert (at_half.tp, at_half.fp, at_half.tn, at_half.fn) == (tp, fp, tn, fn)
    assert at_half.precision == pytest.approx(metrics.precision_score(y, predicted))
    assert at_half.recall == pytest.approx(metrics.recall_score(y, predicted))
    assert at_half.f1 == pytest.approx(metrics.f1_score(y, predicted))
    # KS by brute force over every threshold.
    gaps = [(s[y == 1] >= t).mean() - (s[y == 0] >= t).mean() for t in np.unique(s)]
    assert e.ks == pytest.approx(max(gaps))
    assert e.thresholds[1].reason == "KS" and e.thresholds[1].threshold == e.ks_threshold
    assert len(e.roc.x) <= 202 and len(e.pr.x) <= 202
    assert e.roc.x[0] == 0 and e.roc.x[-1] == 1 and e.roc.y[-1] == 1


def test_ks_gini_lift_and_gain_on_a_known_example() -> None:
    e = evaluate_binary(LABELS, SCORES)
    # Flagging the top 4 catches every positive and 1 of 7 negatives.
    assert e.ks == pytest.approx(1 - 1 / 7)
    assert e.ks_threshold == pytest.approx(0.65)
    assert e.roc_auc == pytest.approx(20 / 21)
    assert e.gini == pytest.approx(19 / 21)
    assert [d.positives for d in e.deciles] == [1, 1, 0, 1, 0, 0, 0, 0, 0, 0]
    assert e.deciles[0].lift == pytest.approx(1 / 0.3)
    assert e.deciles[2].lift == 0
    assert [round(d.cumulative_gain or 0, 4) for d in e.deciles[:4]] == [0.3333, 0.6667, 0.6667, 1]
    assert e.deciles[1].cumulative_lift == pytest.approx((2 / 2) / 0.3)
    assert (e.deciles[0].max_score, e.deciles[0].min_score) == (0.95, 0.95)
    assert e.gain.x[20] == pytest.approx(0.2) and e.gain.y[20] == pytest.approx(2 / 3)


def test_ties_share_positives_and_do_not_depend_on_row_order() -> None:
    # One score for all rows: every decile expects the same share of positives.
    y = np.array([1, 1] + [0] * 18)
    e = evaluate_binary(y, np.full(20, 0.3))
    assert [d.positives for d in e.deciles] == pytest.approx([0.2] * 10)
    assert all(d.lift == pytest.approx(1.0) for d in e.deciles)
    reordered = evaluate_binary(y[::-1], np.full(20, 0.3))
    assert reordered.deciles == e.deciles and reordered.gain == e.gain


def test_calibration_bins() -> None:
    y = np.array([1, 0, 0, 0, 0, 1, 1, 1, 1, 0])
    s = np.array([0.2] * 5 + [0.8] * 5)
    e = evaluate_binary(y, s)
    assert [(b.mean_predicted, b.observed_rate, b.count) for b in e.calibration] == [
        (pytest.approx(0.2), pytest.approx(0.2), 5),
        (pytest.approx(0.8), pytest.approx(0.8), 5),
    ]
    assert e.calibration_error == pytest.approx(0.0)
    y2, s2 = noisy()
    bins = evaluate_binary(y2, s2).calibration
    assert len(bins) == 10 and sum(b.count for b in bins) == len(y2)


def test_costs_choose_the_cheapest_threshold() -> None:
    e = evaluate_binary(LABELS, SCORES, costs={"fp": 1, "fn": 10})
    cheapest = e.thresholds[-1]
    assert cheapest.reason == "minimum cost" and cheapest.threshold == pytest.approx(0.65)
    assert cheapest.cost == 1 and (cheapest.fp, cheapest.fn) == (1, 0)
    assert e.thresholds[0].cost == 2  # at 0.5: the top 5 rows, 3 positives and 2 false alarms
    # When false positives cost most, flagging nothing can be cheapest.
    none = evaluate_binary([0, 0, 1], [0.9, 0.8, 0.1], costs={"fp": 10, "fn": 1})
    assert none.min_cost_threshold is not None and none.min_cost_threshold > 0.9
    assert none.thresholds[-1].tp + none.thresholds[-1].fp == 0
    assert none.thresholds[-1].precision is None


def test_given_thresholds() -> None:
    e = evaluate_binary(LABELS, SCORES, thresholds=[0.9, 0.1])
    assert [(t.threshold, t.reason, t.tp, t.fp) for t in e.thresholds] == [
        (0.9, "given", 1, 0),
        (0.1, "given", 3, 6),
    ]


def test_integer_weights_equal_repeated_rows() -> None:
    y, s = noisy(500)
    w = np.random.default_rng(1).integers(1, 4, size=len(y))
    weighted = evaluate_binary(y, s, weights=w)
    repeated = evaluate_binary(np.repeat(y, w), np.repeat(s, w))
    for name in ("roc_auc", "pr_auc", "ks", "log_loss", "brier", "base_rate"):
        assert getattr(weighted, name) == pytest.approx(getattr(repeated, name)), name
    assert weighted.thresholds[0].tp == repeated.thresholds[0].tp
    assert weighted.weighted and "Counts are sums of weights." in weighted.notes


def test_rule_and_model_at_the_same_flag_rate() -> None:
    flagged = np.zeros(10, dtype=bool)
    flagged[[2, 3]] = True  # one negative, one positive
    rule = evaluate_rule(LABELS, flagged, name="big amount")
    assert (rule.flagged, rule.caught, rule.flag_rate) == (2, 1, 0.2)
    assert rule.precision == 0.5 and rule.recall == pytest.approx(1 / 3)
    assert rule.lift == pytest.approx(0.5 / 0.3)
    c = compare_with_rule(LABELS, SCORES, flagged, name="big amount")
    assert c.model_recall == pytest.approx(2 / 3) and c.model_precision == 1
    assert c.model_threshold == pytest.approx(0.85)
    text = c.sentence(positives="fraud", rows="transactions")
    assert "20.0% of transactions" in text and "66.7% of fraud" in text and "33.3%" in text
    e = evaluate_binary(LABELS, SCORES, rules={"big amount": flagged})
    assert e.rules == [c]
    assert any(label == "vs rule 'big amount'" for label, _ in e.summary())


def test_rule_that_flags_nothing() -> None:
    c = compare_with_rule(LABELS, SCORES, np.zeros(10, dtype=bool))
    assert c.rule.precision is None and c.model_threshold is None and c.model_caught == 0
    assert "flags no rows" in c.sentence()


def test_single_class_leaves_ranking_metrics_undefined() -> None:
    e = evaluate_binary(np.zeros(5), np.linspace(0.1, 0.5, 5))
    assert e.roc_auc is None and e.pr_auc is None and e.ks is None and e.gini is None
    assert e.notes and "only negatives" in e.notes[0]
    assert math.isfinite(e.log_loss) and e.deciles[0].lift is None
    data = as_json(e)
    assert data["roc_auc"] is None and data["task"] == "binary"
    assert ("ROC AUC", "—") in e.summary()


@pytest.mark.parametrize(
    ("y", "s", "message"),
    [
        ([], [], "y_true is empty"),
        ([0, 1, 1], [0.1, 0.2], "y_true has 3, score has 2"),
        ([0, 1, 1, 0], [0.1, np.nan, np.nan, 0.3], "2 NaN values out of 4"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "0 and 1 only"),
        ([0, 1], [0.5, 1.7], "probabilities in [0, 1]"),
        ([0, 1], [[0.5, 0.5], [0.5, 0.5]], "one-dimensional"),
    ],
)
def test_unusable_binary_input(y: list[int], s: list[float], message: str) -> None:
    with pytest.raises(EvaluationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        evaluate_binary(y, s)


def test_bad_costs_and_rules() -> None:
    with pytest.raises(EvaluationError, match="missing: fn"):
        evaluate_binary(LABELS, SCORES, costs={"fp": 1})
    with pytest.raises(EvaluationError, match="unknown: tp"):
        evaluate_binary(LABELS, SCORES, costs={"fp": 1, "fn": 2, "tp": 0})
    with pytest.raises(EvaluationError, match="rule short has 3"):
        evaluate_binary(LABELS, SCORES, rules={"short": [True, False, True]})


def test_binary_json_and_summary() -> None:
    y, s = noisy()
    e = evaluate_binary(y, s, costs={"fp": 1, "fn": 5}, rules={"r": s > 0.9})
    data = as_json(e)
    assert data["roc"]["thresholds"][0] is None  # sklearn's infinite first threshold
    assert len(data["deciles"]) == 10 and data["rules"][0]["rule"]["name"] == "r"
    labels = [label for label, _ in e.summary()]
    assert labels[:3] == ["Rows", "Positives", "ROC AUC"]
    assert "At score ≥ 0.500 (0.5)" in labels
    assert len(e.summary(detail=False)) < len(labels)


# ----------------------------------------------------------------------------- regression


def test_regression_metrics_by_hand() -> None:
    e = evaluate_regression([1, 2, 3, 4], [1.5, 2, 2.5, 5])
    assert e.mae == pytest.approx(0.5)
    assert e.rmse == pytest.approx(math.sqrt(0.375))
    assert e.r2 == pytest.approx(0.7)
    assert e.mape == pytest.approx((0.5 + 0 + 0.5 / 3 + 0.25) / 4)
    assert e.bias == pytest.approx(-0.25)
    assert e.residual_quantiles["min"] == -1 and e.residual_quantiles["max"] == 0.5
    assert sum(e.histogram.counts) + e.histogram.below + e.histogram.above == 4


def test_regression_tables_and_sample() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=5000) * 10
    p = y + rng.normal(size=5000)
    e = evaluate_regression(y, p)
    assert e.rmse == pytest.approx(math.sqrt(metrics.mean_squared_error(y, p)))
    assert e.r2 == pytest.approx(metrics.r2_score(y, p))
    assert len(e.by_predicted) == 10 and sum(b.count for b in e.by_predicted) == 5000
    assert len(e.histogram.counts) == 30
    assert e.histogram.below + e.histogram.above == pytest.approx(50, abs=2)
    assert len(e.sample_predicted) == 2000
    assert evaluate_regression(y, p).sample_predicted == e.sample_predicted  # seeded
    as_json(e)


def test_regression_undefined_metrics() -> None:
    e = evaluate_regression([0, 1, 2], [0.1, 1.1, 2.1])
    assert e.mape is None and any("y_true = 0" in n for n in e.notes)
    constant = evaluate_regression([3, 3, 3], [2, 3, 4])
    assert constant.r2 is None and any("constant" in n for n in constant.notes)
    with pytest.raises(EvaluationError, match="y_pred holds 1 NaN"):
        evaluate_regression([1, 2], [1, np.nan])


# ----------------------------------------------------------------------------- multiclass


def test_multiclass_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet([1, 1, 1], size=600)
    classes = ["cat", "dog", "eel"]
    y = np.array([rng.choice(3, p=row) for row in proba])
    labels = np.array(classes)[y]
    e = evaluate_multiclass(labels, proba, classes)
    predicted = proba.argmax(axis=1)
    assert e.accuracy == pytest.approx(metrics.accuracy_score(y, predicted))
    assert e.macro_f1 == pytest.approx(metrics.f1_score(y, predicted, average="macro"))
    assert e.weighted_f1 == pytest.approx(metrics.f1_score(y, predicted, average="weighted"))
    assert e.log_loss == pytest.approx(metrics.log_loss(y, proba))
    assert e.confusion == metrics.confusion_matrix(y, predicted).tolist()
    recall = metrics.recall_score(y, predicted, average=None)
    for j, c in enumerate(e.per_class):
        assert c.label == classes[j] and c.recall == pytest.approx(recall[j])
        assert c.auc == pytest.approx(metrics.roc_auc_score(y == j, proba[:, j]))
    assert e.macro_auc == pytest.approx(
        metrics.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    as_json(e)


def test_multiclass_absent_class_and_bad_input() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    e = evaluate_multiclass([0, 1, 0], proba, [0, 1, 2])
    absent = e.per_class[2]
    assert absent.support == 0 and absent.recall is None and absent.auc is None
    assert absent.precision is None  # never predicted either
    assert e.notes and "class 2" in e.notes[0]
    with pytest.raises(EvaluationError, match="not in classes"):
        evaluate_multiclass([0, 5, 0], proba, [0, 1, 2])
    with pytest.raises(EvaluationError, match="sum to 1"):
        evaluate_multiclass([0, 1, 0], proba * 0.5, [0, 1, 2])
    with pytest.raises(EvaluationError, match="one column per class"):
        evaluate_multiclass([0, 1, 0], proba, [0, 1])
    with pytest.raises(EvaluationError, match="y_true has 2, proba has 3"):
        evaluate_multiclass([0, 1], proba, [0, 1, 2])

"""How good a model's predictions are: binary, regression and multiclass evaluations, and
a baseline rule to beat.

Each evaluation is a frozen dataclass with `to_dict()` (JSON-ready: plain numbers and
lists, NaN and infinity as None) and `summary()` (label and formatted value pairs, for a
terminal table). Metrics that are undefined for the data given (an AUC when y_true holds
one class) are None, with a line in `notes` saying why. Unusable input (empty arrays,
NaN, different lengths, labels outside the classes) raises `EvaluationError`.

    from gristmill.train.evaluation import evaluate_binary

    result = evaluate_binary(y_test, model_proba, costs={"fp": 1, "fn": 25},
                             rules={"amount above p99": amount > p99})
    for label, value in result.summary():
        print(f"{label:32} {value}")
"""

from __future__ import annotations

from gristmill.train.evaluation.binary import (
    BinaryEvaluation,
    CalibrationBin,
    Curve,
    DecileRow,
    ThresholdResult,
    evaluate_binary,
)
from gristmill.train.evaluation.multiclass import (
    ClassMetrics,
    MulticlassEvaluation,
    evaluate_multiclass,
)
from gristmill.train.evaluation.regression import (
    RegressionEvaluation,
    ResidualBin,
    ResidualHistogram,
    evaluate_regression,
)
from gristmill.train.evaluation.rules import (
    RuleComparison,
    RuleEvaluation,
    compare_with_rule,
    evaluate_rule,
)

Evaluation = BinaryEvaluation | RegressionEvaluation | MulticlassEvaluation

__all__ = [
    "BinaryEvaluation",
    "CalibrationBin",
    "ClassMetrics",
    "Curve",
    "DecileRow",
    "Evaluation",
    "MulticlassEvaluation",
    "RegressionEvaluation",
    "ResidualBin",
    "ResidualHistogram",
    "RuleComparison",
    "RuleEvaluation",
    "ThresholdResult",
    "compare_with_rule",
    "evaluate_binary",
    "evaluate_multiclass",
    "evaluate_regression",
    "evaluate_rule",
]

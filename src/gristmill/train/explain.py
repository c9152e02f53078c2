"""Which features a model relies on, overall and for each row.

- `importance`: the model's own global importance (split gain for LightGBM, impurity
  decrease for scikit-learn trees, standardized coefficients for linear models),
  summed per input feature and normalised to sum to 1.
- `permutation_importance`: model-agnostic; how much a metric drops when one feature's
  values are shuffled.
- `contributions`: per-row additive contributions in the model's raw output (log-odds
  for LightGBM and logistic regression), one column per feature plus a last column for
  the bias (the expected value), so that each row sums to the raw prediction.

Models come as gristmill's estimators fit them: a LightGBM `Booster` (or a scikit-learn
style `LGBMModel`), a bare scikit-learn tree or forest, or a scikit-learn `Pipeline`
whose last step is the estimator and whose earlier steps prepare the matrix. Through
such a pipeline each output column is traced back to the one input column it derives
from by the names `get_feature_names_out` gives it (one-hot columns and missing-value
indicators count towards their source feature); a step that mixes several inputs into
one column cannot be attributed and is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gristmill.errors import EvaluationError, GristmillError, MissingDependencyError, did_you_mean
from gristmill.train.evaluation.base import Result

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike

FAMILIES = {
    # gristmill's estimator names, and the family names themselves
    "lightgbm": "lightgbm",
    "xgboost": "xgboost",
    "decision_tree": "tree",
    "random_forest": "tree",
    "tree": "tree",
    "logistic_regression": "linear",
    "linear_regression": "linear",
    "linear": "linear",
}
STD_ROWS = 20_000
"""Rows used to measure the spread of a linear model's inputs."""


# ----------------------------------------------------------------------------- model parts


def _is_lightgbm(fitted: Any) -> bool:
    return type(fitted).__module__.split(".")[0] == "lightgbm"


def _booster(fitted: Any) -> Any:
    return fitted.booster_ if hasattr(fitted, "booster_") else fitted


def _parts(fitted: Any) -> tuple[Any | None, Any]:
    """(the preparing steps or None, the final estimator) of a model or Pipeline."""
    steps = getattr(fitted, "steps", None)
    if steps is None:
        return None, fitted
    return (fitted[:-1] if len(steps) > 1 else None), steps[-1][1]


def _sources(prepare: Any | None, width: int) -> np.ndarray:
    """For each column the preparing steps output, the input column it derives from."""
    import numpy as np

    if prepare is None:
        return np.arange(width)
    tokens = [f"gmcol{i}x" for i in range(width)]  # names no transformer writes itself
    try:
        names = prepare.get_feature_names_out(tokens)
    except (AttributeError, TypeError, ValueError) as exc:
        raise EvaluationError(
            "Cannot trace the pipeline's output columns back to its input features "
            f"(get_feature_names_out failed: {exc}). Fit the pipeline on a numpy matrix."
        ) from None
    sources = []
    for name in names:
        found = set(re.findall(r"gmcol(\d+)x", str(name)))
        if len(found) != 1:
            raise EvaluationError(
                f"The pipeline's output column {name!r} does not derive from exactly one "
                "input feature, so it cannot be attributed to one."
            )
        sources.append(int(found.pop()))
    return np.array(sources, dtype=np.int64)


def _dense(matrix: Any) -> np.ndarray:
    import numpy as np

    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=float)


def _matrix(X: ArrayLike, feature_names: Sequence[str]) -> np.ndarray:
    import numpy as np

    matrix = np.asarray(X, dtype=np.float64)
    if matrix.ndim != 2:
        raise EvaluationError(f"X must be a 2-D matrix; got shape {matrix.shape}.")
    if matrix.shape[0] == 0:
        raise EvaluationError("X has no rows.")
    if matrix.shape[1] != len(feature_names):
        raise EvaluationError(
            f"X has {matrix.shape[1]} columns but {len(feature_names)} feature names were given."
        )
    return matrix


def _defined_in_xgboost(fitted: Any) -> bool:
    return type(fitted).__module__.partition(".")[0] == "xgboost"


def _family(model_kind: str, fitted: Any) -> str:
    family = FAMILIES.get(model_kind)
    if family is None:
        raise EvaluationError(
            f"Unknown model kind '{model_kind}'.{did_you_mean(model_kind, FAMILIES)}"
            f" Known: {', '.join(FAMILIES)}."
        )
    if family != "xgboost" and (family == "lightgbm") != _is_lightgbm(fitted):
        raise EvaluationError(
            f"model_kind '{model_kind}' does not match the fitted {type(fitted).__name__}."
        )
    return family


# ----------------------------------------------------------------------------- importance


def _ranked(feature_names: Sequence[str], values: np.ndarray) -> list[tuple[str, float]]:
    total = float(values.sum())
    shares = values / total if total > 0 else values * 0.0
    pairs = [(str(n), float(v)) for n, v in zip(feature_names, shares, strict=True)]
    return sorted(pairs, key=lambda pair: -pair[1])  # stable: ties keep the input order


def importance(
    model_kind: str,
    fitted: Any,
    feature_names: Sequence[str],
    X: ArrayLike | None = None,
) -> list[tuple[str, float]]:
    """Global importance per input feature, largest first, summing to 1 (all 0 when the
    model uses no feature).

    `model_kind`: gristmill's estimator name (lightgbm, xgboost, decision_tree,
    random_forest, logistic_regression, linear_regression) or a family (tree, linear).
    For linear models the importance of a column is |coefficient| x its standard deviation
    in the matrix the model saw (averaged over classes), summed per input feature. That
    spread is measured on `X` when given; without `X`, a Pipeline's preparing steps are
    assumed to have standardized the columns (gristmill's linear pipelines scale numbers)
    and |coefficient| is used as is. A bare linear model needs `X`.
    """
    import numpy as np

    names = list(feature_names)
    family = _family(model_kind, fitted)
    if family == "lightgbm":
        booster = _booster(fitted)
        gains = np.asarray(booster.feature_importance(importance_type="gain"), dtype=float)
        if len(gains) != len(names):
            raise EvaluationError(
                f"The LightGBM model has {len(gains)} features but {len(names)} names were given."
            )
        return _ranked(names, gains)
    if family == "xgboost":
        # Keyed f0, f1, ... by position; a feature never split on is absent.
        scores = fitted.get_score(importance_type="total_gain")
        gains = np.array([float(scores.get(f"f{i}", 0.0)) for i in range(len(names))])
        return _ranked(names, gains)

    prepare, estimator = _parts(fitted)
    sources = _sources(prepare, len(names))
    if family == "tree":
        values = getattr(estimator, "feature_importances_", None)
        if values is None:
            raise EvaluationError(f"{type(estimator).__name__} has no feature_importances_.")
        weight = np.asarray(values, dtype=float)
    else:
        if not hasattr(estimator, "coef_"):
            raise EvaluationError(f"{type(estimator).__name__} has no coef_.")
        weight = np.abs(np.atleast_2d(estimator.coef_)).mean(axis=0)
        if X is not None:
            matrix = _matrix(X, names)[:STD_ROWS]
            prepared = _dense(prepare.transform(matrix)) if prepare is not None else matrix
            weight = weight * prepared.std(axis=0)
        elif prepare is None:
            raise EvaluationError(
                f"The importance of a bare {type(estimator).__name__} needs X, to put its "
                "coefficients on the scale of their features."
            )
    if len(weight) != len(sources):
        raise EvaluationError(
            f"The model has {len(weight)} input columns but {len(sources)} were traced "
            "from the feature names."
        )
    return _ranked(names, np.bincount(sources, weights=weight, minlength=len(names)))


@dataclass(frozen=True)
class PermutationScore(Result):
    feature: str
    mean: float
    """Mean drop of the metric when the feature is shuffled (positive: it helps)."""
    std: float


@dataclass(frozen=True)
class PermutationImportance(Result):
    metric: str
    baseline: float
    """The metric on the unshuffled rows."""
    rows: int
    repeats: int
    scores: list[PermutationScore]
    """Largest drop first."""

    def pairs(self) -> list[tuple[str, float]]:
        return [(s.feature, s.mean) for s in self.scores]


def permutation_importance(
    predict: Callable[[np.ndarray], ArrayLike],
    X: ArrayLike,
    y: ArrayLike,
    metric: Callable[[np.ndarray, np.ndarray], float],
    n_repeats: int = 3,
    seed: int = 0,
    max_rows: int = 20_000,
    *,
    feature_names: Sequence[str] | None = None,
    greater_is_better: bool = True,
) -> PermutationImportance:
    """How much `metric(y, predict(X))` drops when each column of X is shuffled.

    `predict` takes a 2-D numpy array (for a binary classifier, return the probability
    of class 1). With `greater_is_better=False` (a loss), the drop is the rise in loss.
    At most `max_rows` rows are used, drawn with `seed`, which also drives the shuffles.
    """
    import numpy as np

    matrix = np.asarray(X)
    target = np.asarray(y)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise EvaluationError(f"X must be a non-empty 2-D matrix; got shape {matrix.shape}.")
    if len(target) != len(matrix):
        raise EvaluationError(f"X has {len(matrix):,} rows but y has {len(target):,}.")
    if n_repeats < 1:
        raise EvaluationError(f"n_repeats must be at least 1; got {n_repeats}.")
    names = list(feature_names) if feature_names is not None else None
    if names is None:
        names = [f"x{j}" for j in range(matrix.shape[1])]
    if len(names) != matrix.shape[1]:
        raise EvaluationError(
            f"X has {matrix.shape[1]} columns but {len(names)} feature names were given."
        )

    rng = np.random.default_rng(seed)
    if len(matrix) > max_rows:
        keep = np.sort(rng.choice(len(matrix), max_rows, replace=False))
        matrix, target = matrix[keep], target[keep]
    work = matrix.copy()  # shuffled one column at a time, and restored
    sign = 1.0 if greater_is_better else -1.0

    def score() -> float:
        return float(metric(target, np.asarray(predict(work))))

    baseline = score()
    scores = []
    for j, name in enumerate(names):
        original = work[:, j].copy()
        drops = []
        for _ in range(n_repeats):
            work[:, j] = original[rng.permutation(len(original))]
            drops.append(sign * (baseline - score()))
        work[:, j] = original
        scores.append(PermutationScore(name, float(np.mean(drops)), float(np.std(drops))))
    scores.sort(key=lambda s: -s.mean)
    return PermutationImportance(
        metric=getattr(metric, "__name__", "metric"),
        baseline=baseline,
        rows=len(matrix),
        repeats=n_repeats,
        scores=scores,
    )


# ----------------------------------------------------------------------------- contributions


class _MissingShap(MissingDependencyError):
    """shap is no gristmill extra, so the message names its own pip command."""

    def __init__(self) -> None:
        GristmillError.__init__(
            self,
            "Per-row contributions of scikit-learn trees need the 'shap' package: "
            "pip install shap (LightGBM and linear models need nothing more).",
        )


def _by_source(values: np.ndarray, sources: np.ndarray, width: int) -> np.ndarray:
    """Sum the last axis (output columns) into input features."""
    import numpy as np

    mapping = np.zeros((len(sources), width))
    mapping[np.arange(len(sources)), sources] = 1.0
    grouped: np.ndarray = values @ mapping
    return grouped


def _tree_shap(estimator: Any, prepared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SHAP values (rows, classes, columns) and expected values (classes,)."""
    import numpy as np

    try:
        import shap
    except ImportError:
        raise _MissingShap() from None
    explainer = shap.TreeExplainer(estimator)
    values = explainer.shap_values(prepared)
    expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    # Older shap returns a list of (rows, columns) per class; newer (rows, columns, classes).
    if isinstance(values, list):
        stacked = np.stack([np.asarray(v, dtype=float) for v in values], axis=1)
    else:
        array = np.asarray(values, dtype=float)
        stacked = array[:, None, :] if array.ndim == 2 else np.moveaxis(array, 2, 1)
    return stacked, expected


def contributions(
    fitted: Any,
    X: ArrayLike,
    feature_names: Sequence[str],
    *,
    background: ArrayLike | None = None,
) -> np.ndarray:
    """Per-row contributions: shape (rows, features + 1), the last column the bias; for
    a multiclass model (rows, classes, features + 1).

    Each row sums to the raw prediction: LightGBM's raw score (log-odds for binary),
    a linear model's decision function (log-odds for logistic regression), and for
    scikit-learn trees (through shap) the predicted value or class probability (for a
    binary classifier, of class 1).
    Linear models: coefficient x (value - reference), where the reference is the mean of
    `background` (rows standing for the training data) or else of X.
    """
    import numpy as np

    names = list(feature_names)
    matrix = _matrix(X, names)
    if _defined_in_xgboost(fitted):
        import xgboost

        data = xgboost.DMatrix(matrix, feature_types=fitted.feature_types, enable_categorical=True)
        return np.asarray(fitted.predict(data, pred_contribs=True), dtype=float)
    if _is_lightgbm(fitted):
        booster = _booster(fitted)
        if booster.num_feature() != len(names):
            raise EvaluationError(
                f"The LightGBM model has {booster.num_feature()} features but X has "
                f"{len(names)} columns."
            )
        from gristmill.train.estimators.lightgbm import threads_for

        raw = np.asarray(
            booster.predict(matrix, pred_contrib=True, num_threads=threads_for(len(matrix))),
            dtype=float,
        )
        classes = int(booster.num_model_per_iteration())
        return raw if classes == 1 else raw.reshape(len(matrix), classes, len(names) + 1)

    prepare, estimator = _parts(fitted)
    sources = _sources(prepare, len(names))

    def prepared(rows: np.ndarray) -> np.ndarray:
        return _dense(prepare.transform(rows)) if prepare is not None else rows

    z = prepared(matrix)
    if hasattr(estimator, "coef_"):
        coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=float))  # (classes, columns)
        intercept = np.broadcast_to(
            np.asarray(getattr(estimator, "intercept_", 0.0), dtype=float), coef.shape[:1]
        )
        reference = z if background is None else prepared(_matrix(background, names))
        center = reference.mean(axis=0)
        per_column = (z - center)[:, None, :] * coef[None, :, :]
        bias = intercept + coef @ center
    elif hasattr(estimator, "feature_importances_"):
        per_column, bias = _tree_shap(estimator, z)
        if per_column.shape[1] == 2 and len(bias) == 2:  # a binary classifier: class 1
            per_column, bias = per_column[:, 1:, :], bias[1:]
    else:
        raise EvaluationError(
            f"Cannot compute contributions of a {type(estimator).__name__}: expected a "
            "LightGBM model, a scikit-learn tree or forest, or a linear model."
        )
    if per_column.shape[2] != len(sources):
        raise EvaluationError(
            f"The model has {per_column.shape[2]} input columns but {len(sources)} were "
            "traced from the feature names."
        )
    grouped = _by_source(per_column, sources, len(names))
    bias_column = np.broadcast_to(bias, grouped.shape[:2])[:, :, None]
    out = np.concatenate([grouped, bias_column], axis=2)
    result: np.ndarray = out[:, 0, :] if out.shape[1] == 1 else out
    return result

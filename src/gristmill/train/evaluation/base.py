"""What every evaluation shares: checking the arrays it is handed, turning results into
JSON-ready data, and formatting numbers for the terminal summary."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, ClassVar

from gristmill.errors import EvaluationError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike


def jsonable(value: Any) -> Any:
    """Plain dicts, lists, str, int, float, bool and None: numpy scalars unwrapped, and
    NaN or infinity as None (JSON has neither)."""
    import numpy as np

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Result:
    """A mixin for evaluation dataclasses: `to_dict()` gives JSON-ready data."""

    task: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = jsonable(self)
        return {"task": self.task, **data} if self.task else data


# ----------------------------------------------------------------------------- checks


def vector(values: ArrayLike, name: str, *, numeric: bool = True) -> np.ndarray:
    """A 1-D array, refusing empty input and (for numbers) NaN; `name` goes in messages."""
    import numpy as np

    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise EvaluationError(f"{name} must be one-dimensional; got shape {array.shape}.")
    if array.size == 0:
        raise EvaluationError(f"{name} is empty: there is nothing to evaluate.")
    if not numeric:
        return array
    try:
        array = array.astype(np.float64)
    except (TypeError, ValueError):
        raise EvaluationError(f"{name} must hold numbers; got {array.dtype}.") from None
    missing = int(np.isnan(array).sum())
    if missing:
        raise EvaluationError(
            f"{name} holds {missing:,} NaN value{'s' if missing != 1 else ''} "
            f"out of {array.size:,}: drop or impute those rows before evaluating."
        )
    if np.isinf(array).any():
        raise EvaluationError(f"{name} holds infinite values.")
    return array


def same_length(**arrays: np.ndarray) -> int:
    """The shared length of the arrays, or an error naming each length."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} has {n:,}" for name, n in lengths.items())
        raise EvaluationError(f"The arrays differ in length: {listed} rows.")
    return next(iter(lengths.values()))


def binary_labels(y_true: ArrayLike) -> np.ndarray:
    """0/1 labels (booleans accepted) as float64."""
    import numpy as np

    y = vector(y_true, "y_true")
    unexpected = np.setdiff1d(np.unique(y), [0.0, 1.0])
    if unexpected.size:
        shown = ", ".join(f"{v:g}" for v in unexpected[:5])
        raise EvaluationError(
            f"y_true must hold 0 and 1 only (1 = the positive class); it also holds {shown}."
        )
    return y


def probabilities(score: ArrayLike, name: str = "score") -> np.ndarray:
    s = vector(score, name)
    low, high = float(s.min()), float(s.max())
    if low < 0 or high > 1:
        raise EvaluationError(
            f"{name} must be probabilities in [0, 1]; its values run from {low:g} to "
            f"{high:g}. Pass predicted probabilities, not raw margins or log-odds."
        )
    return s


def sample_weights(weights: ArrayLike | None, rows: int) -> np.ndarray | None:
    import numpy as np

    if weights is None:
        return None
    w = vector(weights, "weights")
    same_length(weights=w, y_true=np.empty(rows))
    if (w < 0).any():
        raise EvaluationError(f"weights must not be negative; {int((w < 0).sum()):,} are.")
    if w.sum() <= 0:
        raise EvaluationError("weights sum to 0: no row counts.")
    return w


# ----------------------------------------------------------------------------- formatting


def num(value: float | None, digits: int = 3) -> str:
    """A metric: 0.912, 12.4, 1,204; — when undefined."""
    if value is None or not math.isfinite(value):
        return "—"
    size = abs(value)
    if size >= 1e6 or (0 < size < 1e-3):
        return f"{value:.{digits}g}"
    if size >= 100:
        return f"{value:,.0f}" if size >= 1000 else f"{value:.1f}"
    return f"{value:.{digits}f}"


def share(value: float | None, digits: int = 1) -> str:
    """A rate as a percentage: 12.3%; — when undefined."""
    if value is None or not math.isfinite(value):
        return "—"
    percent = value * 100
    if 0 < percent < 10 ** (-digits):
        return f"<{10 ** (-digits):g}%"
    return f"{percent:.{digits}f}%"


def count(value: float) -> str:
    """A count, or a sum of weights (fractional)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None

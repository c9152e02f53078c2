"""Evaluation of a regression: errors, and the residuals' shape for plots.

A residual is actual minus predicted (y_true - y_pred): positive when the model predicts
too low.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gristmill.train.evaluation.base import Result, count, num, same_length, vector

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike

RESIDUAL_BINS = 10
HISTOGRAM_BINS = 30
SAMPLE_POINTS = 2000
SAMPLE_SEED = 0
TAIL = 0.005
"""The residual histogram spans the 0.5th to 99.5th percentiles, so that a few extreme
residuals do not squeeze everything else into one bar; rows beyond are counted apart."""


@dataclass(frozen=True)
class ResidualBin(Result):
    """Rows in one quantile bin of the prediction, and their residuals."""

    bin: int
    count: int
    min_predicted: float
    max_predicted: float
    mean_predicted: float
    mean_actual: float
    mean_residual: float
    p10_residual: float
    p90_residual: float


@dataclass(frozen=True)
class ResidualHistogram(Result):
    edges: list[float]
    counts: list[int]
    below: int
    """Residuals under the first edge (left out of the bars)."""
    above: int


@dataclass(frozen=True)
class RegressionEvaluation(Result):
    task = "regression"

    rows: int
    rmse: float
    mae: float
    r2: float | None
    """None when y_true is constant (no variance to explain)."""
    mape: float | None
    """Mean absolute percentage error, as a fraction; None when some y_true is 0."""
    bias: float
    """Mean residual: positive when the model predicts too low on average."""
    residual_quantiles: dict[str, float]
    """min, p05, p25, p50, p75, p95, max of the residuals."""
    residual_std: float
    by_predicted: list[ResidualBin]
    histogram: ResidualHistogram
    sample_predicted: list[float]
    """A seeded sample of rows (at most 2,000) for a predicted-vs-actual plot."""
    sample_actual: list[float]
    notes: list[str]

    def summary(self, detail: bool = True) -> list[tuple[str, str]]:
        """(label, value) pairs; `detail=False` leaves out the notes."""
        q = self.residual_quantiles
        rows = [
            ("Rows", count(self.rows)),
            ("RMSE", num(self.rmse)),
            ("MAE", num(self.mae)),
            ("R²", num(self.r2)),
            ("MAPE", "—" if self.mape is None else f"{self.mape * 100:.1f}%"),
            ("Bias (mean residual)", num(self.bias)),
            ("Residual p05 / p50 / p95", f"{num(q['p05'])} / {num(q['p50'])} / {num(q['p95'])}"),
        ]
        return (rows + [("Note", note) for note in self.notes]) if detail else rows


def _by_predicted(y: np.ndarray, p: np.ndarray, r: np.ndarray) -> list[ResidualBin]:
    import numpy as np

    edges = np.unique(np.quantile(p, np.linspace(0, 1, RESIDUAL_BINS + 1)))
    which = np.searchsorted(edges[1:-1], p, side="right")
    bins: list[ResidualBin] = []
    for b in range(max(len(edges) - 1, 1)):
        inside = which == b
        if not inside.any():
            continue
        bins.append(
            ResidualBin(
                bin=len(bins) + 1,
                count=int(inside.sum()),
                min_predicted=float(p[inside].min()),
                max_predicted=float(p[inside].max()),
                mean_predicted=float(p[inside].mean()),
                mean_actual=float(y[inside].mean()),
                mean_residual=float(r[inside].mean()),
                p10_residual=float(np.quantile(r[inside], 0.1)),
                p90_residual=float(np.quantile(r[inside], 0.9)),
            )
        )
    return bins


def _histogram(r: np.ndarray) -> ResidualHistogram:
    import numpy as np

    low, high = (float(v) for v in np.quantile(r, [TAIL, 1 - TAIL]))
    if high - low <= 1e-9 * max(1.0, abs(low)):  # (nearly) constant: bars around the value
        low, high = float(r.min()) - 0.5, float(r.max()) + 0.5
    counts, edges = np.histogram(r, bins=HISTOGRAM_BINS, range=(low, high))
    return ResidualHistogram(
        edges=[float(e) for e in edges],
        counts=[int(c) for c in counts],
        below=int((r < low).sum()),
        above=int((r > high).sum()),
    )


def evaluate_regression(y_true: ArrayLike, y_pred: ArrayLike) -> RegressionEvaluation:
    """RMSE, MAE, R², MAPE (where defined) and the residuals' shape."""
    import numpy as np
    from sklearn import metrics

    y, p = vector(y_true, "y_true"), vector(y_pred, "y_pred")
    rows = same_length(y_true=y, y_pred=p)
    r = y - p
    notes: list[str] = []

    r2 = None
    if np.ptp(y) > 0:
        r2 = float(metrics.r2_score(y, p))
    else:
        notes.append("y_true is constant: R² is undefined.")
    mape = None
    zeros = int((y == 0).sum())
    if zeros:
        notes.append(f"MAPE is undefined: {zeros:,} rows have y_true = 0.")
    else:
        mape = float(metrics.mean_absolute_percentage_error(y, p))

    names = ("min", "p05", "p25", "p50", "p75", "p95", "max")
    levels = np.quantile(r, [0, 0.05, 0.25, 0.5, 0.75, 0.95, 1])
    sample = np.arange(rows)
    if rows > SAMPLE_POINTS:
        rng = np.random.default_rng(SAMPLE_SEED)
        sample = np.sort(rng.choice(rows, SAMPLE_POINTS, replace=False))
    return RegressionEvaluation(
        rows=rows,
        rmse=float(np.sqrt(metrics.mean_squared_error(y, p))),
        mae=float(metrics.mean_absolute_error(y, p)),
        r2=r2,
        mape=mape,
        bias=float(r.mean()),
        residual_quantiles={n: float(v) for n, v in zip(names, levels, strict=True)},
        residual_std=float(r.std()),
        by_predicted=_by_predicted(y, p, r),
        histogram=_histogram(r),
        sample_predicted=[float(v) for v in p[sample]],
        sample_actual=[float(v) for v in y[sample]],
        notes=notes,
    )

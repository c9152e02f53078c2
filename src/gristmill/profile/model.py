"""What a profile holds: plain data, JSON-able, rendered by report.py (HTML) and the CLI
(terminal). Values (min, max, top values) are JSON-able: numbers, or text for dates,
timestamps, decimals and anything else."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ColumnKind = Literal["numeric", "boolean", "text", "temporal", "other"]


@dataclass
class Histogram:
    edges: list[float]
    """len(counts) + 1 bin edges; for temporal columns, epoch seconds."""
    counts: list[int]


@dataclass
class TopValue:
    value: Any
    count: int


@dataclass
class TargetBin:
    """Rows of one bin (numeric) or category, and how often the target is 1 there."""

    label: str
    count: int
    positives: int
    rate: float
    woe: float | None
    """ln(share of the negatives in the bin / share of the positives); None when either is 0."""


@dataclass
class TargetRelation:
    bins: list[TargetBin]
    iv: float
    """Information value: sum over bins of (negatives share - positives share) * woe."""
    strength: str
    """'useless' (< 0.02), 'weak' (< 0.1), 'medium' (< 0.3), 'strong' (< 0.5), 'suspicious'."""
    auc: float
    """The ROC AUC of scoring each row with its bin's target rate, in whichever direction
    ranks better: from 0.5 (the bins say nothing) to 1 (they separate the target)."""


@dataclass
class ColumnProfile:
    name: str
    type: str
    """The warehouse's type."""
    kind: ColumnKind
    count: int
    """Non-missing values."""
    missing: int
    distinct: int
    distinct_exact: bool
    min: Any = None
    max: Any = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float | str] = field(default_factory=dict)
    """'p05', 'p25', 'p50', 'p75', 'p95' (numbers; text for temporal columns)."""
    zeros: int | None = None
    negatives: int | None = None
    histogram: Histogram | None = None
    top: list[TopValue] = field(default_factory=list)
    text_length: dict[str, float] | None = None
    """Text columns: 'min', 'mean', 'max' length in characters."""
    flags: list[str] = field(default_factory=list)
    """constant, all_missing, high_cardinality, candidate_key, leakage, drift."""
    target: TargetRelation | None = None
    psi: float | None = None
    """Population stability index between the first and last periods (or the compared table)."""
    warnings: list[str] = field(default_factory=list)

    @property
    def missing_share(self) -> float:
        total = self.count + self.missing
        return self.missing / total if total else 0.0


@dataclass
class TimeProfile:
    column: str
    grain: str
    """day, week, month or year: the period rows are counted by."""
    periods: list[tuple[str, int]]
    """(period start, rows), in time order."""
    first: str
    last: str
    """The periods the drift (PSI) compares."""


@dataclass
class TableProfile:
    table: str
    rows: int
    columns: list[ColumnProfile]
    duplicate_rows: int
    correlations: dict[str, dict[str, float | None]]
    """Pearson correlation between numeric columns."""
    candidate_keys: list[str]
    warnings: list[str] = field(default_factory=list)
    target: str | None = None
    target_rate: float | None = None
    time: TimeProfile | None = None
    compared_with: str | None = None
    sampled: int | None = None
    """The rows of a sample the profile was computed on, if not the whole table."""
    seconds: float = 0.0

    def column(self, name: str) -> ColumnProfile:
        return next(c for c in self.columns if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_html(self) -> str:
        from gristmill.profile.report import render_html

        return render_html(self)

    def _repr_html_(self) -> str:
        return self.to_html()

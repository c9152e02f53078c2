"""What `gristmill monitor` reports (as a table in the terminal and as --json)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from gristmill.monitor.alerts import Alert
from gristmill.monitor.realized import Realized
from gristmill.profile.drift import DRIFT_PSI


@dataclass
class FeatureDrift:
    name: str
    psi: float | None
    """Of the logged values against the training set (None: the column cannot be binned)."""
    missing_share: float
    """Of the logged predictions, those with no value for the feature."""
    training_missing_share: float
    stale_share: float | None
    """Of the logged predictions, those whose value came from a view past its ttl (None:
    the log predates stale features being logged)."""
    psi_by_day: dict[str, float] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        return self.psi is not None and self.psi > DRIFT_PSI

    def cells(self) -> list[str]:
        """As the terminal and the HTML report show it (`FEATURE_COLUMNS`)."""
        return [
            self.name,
            "-" if self.psi is None else f"{self.psi:.3f}",
            f"{self.missing_share:.1%}",
            f"{self.training_missing_share:.1%}",
            "-" if self.stale_share is None else f"{self.stale_share:.1%}",
        ]


FEATURE_COLUMNS = ["feature", "PSI", "missing", "missing in training", "stale"]


@dataclass
class Window:
    day: str
    """UTC, YYYY-MM-DD."""
    predictions: int
    decisions: dict[str, int]
    latency_ms: dict[str, float | None]
    """p50, p90, p99."""
    score_psi: float | None = None

    def cells(self) -> list[str]:
        """As the terminal and the HTML report show it (`WINDOW_COLUMNS`)."""
        return [
            self.day,
            f"{self.predictions:,}",
            ", ".join(f"{d} {n / self.predictions:.0%}" for d, n in self.decisions.items()),
            _ms(self.latency_ms.get("p50")),
            _ms(self.latency_ms.get("p99")),
            "-" if self.score_psi is None else f"{self.score_psi:.3f}",
        ]


WINDOW_COLUMNS = ["day (UTC)", "predictions", "decisions", "p50 ms", "p99 ms", "score PSI"]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@dataclass
class MonitorReport:
    model: str
    since: str
    start: str
    end: str
    version: int
    """The version whose training set is the reference (the one that made most predictions)."""
    training_set: str
    predictions: int
    versions: dict[int, int]
    features: list[FeatureDrift] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    score_psi: float | None = None
    """Of the logged scores against the training evaluation's score deciles (binary)."""
    score_shares: list[tuple[str, float, float]] = field(default_factory=list)
    """Per score bin: its share of the training evaluation's rows, and of the window's."""
    realized: Realized | None = None
    """Performance on the predictions whose outcomes are known (the spec's `labels`)."""
    warnings: list[str] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    """The thresholds of the model's `Alerts` the report crosses."""
    webhook_error: str | None = None
    """Why posting the alerts to the webhook failed."""

    @property
    def drifted(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def ranked_features(self) -> list[FeatureDrift]:
        """The features, the most shifted first."""
        return sorted(self.features, key=lambda f: -(f.psi or 0.0))

    def flag(self) -> None:
        """Warn of each shift over DRIFT_PSI that no alert already says."""
        alerted = {(a.alert, a.subject) for a in self.alerts}
        for feature in self.features:
            if feature.drifted and ("psi", feature.name) not in alerted:
                self.warnings.append(
                    f"{feature.name} shifted from the training set (PSI {feature.psi:.2f})."
                )
        score = self.score_psi
        if score is not None and score > DRIFT_PSI and ("score_psi", "scores") not in alerted:
            self.warnings.append(f"The scores shifted from training (PSI {score:.2f}).")

    def to_html(self) -> str:
        from gristmill.monitor.report import render

        return render(self)

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["versions"] = {str(k): v for k, v in self.versions.items()}
        document["drifted"] = self.drifted
        document["alerts"] = [a.to_dict() for a in self.alerts]
        for feature, source in zip(document["features"], self.features, strict=True):
            feature["drifted"] = source.drifted
        return document

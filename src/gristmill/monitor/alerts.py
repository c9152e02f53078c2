"""Alerts: the thresholds a model's spec sets for `gristmill monitor` (`Model(alerts=
Alerts(...))`). One that a report crosses makes the command exit 1, and is posted as JSON
to the webhook when one is set."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError

if TYPE_CHECKING:
    from gristmill.monitor.model import MonitorReport

logger = logging.getLogger(__name__)

WEBHOOK_SECONDS = 10.0
"""How long a webhook has to answer."""


@dataclass(frozen=True)
class Alerts:
    """When `gristmill monitor` says a served model needs a look. None: not watched."""

    psi: float | None = 0.25
    """Any feature whose PSI against the training set is above this."""
    score_psi: float | None = 0.25
    """The scores' PSI against the training evaluation's deciles above this."""
    missing: float | None = None
    """Any feature missing in more than this share of predictions (0.2: 20%)."""
    stale: float | None = None
    """Any feature stale (its view past its ttl) in more than this share of predictions."""
    latency_p99_ms: float | None = None
    """A day whose latency p99 is above this many milliseconds."""
    auc_drop: float | None = None
    """The realized AUC below the training evaluation's by more than this (0.05)."""
    min_predictions: int = 500
    """Fewer predictions than this fire no drift alert: a PSI over so few is noise."""
    webhook: str | None = None
    """An http(s) URL the fired alerts are posted to as JSON (a Slack or PagerDuty
    incoming webhook, say)."""

    def __post_init__(self) -> None:
        for name in ("psi", "score_psi", "missing", "stale", "latency_p99_ms", "auc_drop"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ConfigError(f"Alerts({name}={value!r}): give a number of 0 or more.")
        if self.webhook is not None and not self.webhook.startswith(("http://", "https://")):
            raise ConfigError(f"Alerts(webhook={self.webhook!r}): give an http(s) URL.")


@dataclass(frozen=True)
class Alert:
    """One threshold a report crossed."""

    alert: str
    """Which of `Alerts`' thresholds: psi, score_psi, missing, stale, latency_p99_ms,
    auc_drop."""
    subject: str
    """The feature, or the day, or "scores"."""
    value: float
    threshold: float

    @property
    def message(self) -> str:
        shown = {
            "psi": f"{self.subject} shifted from the training set: PSI {self.value:.3f}",
            "score_psi": f"the scores shifted from training: PSI {self.value:.3f}",
            "missing": f"{self.subject} is missing in {self.value:.1%} of predictions",
            "stale": f"{self.subject} is stale in {self.value:.1%} of predictions",
            "latency_p99_ms": f"latency p99 on {self.subject} is {self.value:.1f} ms",
            "auc_drop": f"the realized AUC is {self.value:.3f} below training's",
        }[self.alert]
        return f"{shown} (threshold {self.threshold:g})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "message": self.message}


def fired(report: MonitorReport, alerts: Alerts) -> list[Alert]:
    """The thresholds of `alerts` that `report` crosses."""
    found: list[Alert] = []
    drift_counts = report.predictions >= alerts.min_predictions
    for feature in report.features:
        checks = (
            ("psi", feature.psi if drift_counts else None, alerts.psi),
            ("missing", feature.missing_share, alerts.missing),
            ("stale", feature.stale_share, alerts.stale),
        )
        for name, value, threshold in checks:
            if value is not None and threshold is not None and value > threshold:
                found.append(Alert(name, feature.name, value, threshold))
    score, limit = report.score_psi, alerts.score_psi
    if drift_counts and score is not None and limit is not None and score > limit:
        found.append(Alert("score_psi", "scores", score, limit))
    realized = report.realized
    if realized is not None and alerts.auc_drop is not None:
        auc, trained = realized.overall.auc, realized.training_auc
        if auc is not None and trained is not None and trained - auc > alerts.auc_drop:
            found.append(Alert("auc_drop", "auc", trained - auc, alerts.auc_drop))
    if alerts.latency_p99_ms is not None:
        for window in report.windows:
            p99 = window.latency_ms.get("p99")
            if p99 is not None and p99 > alerts.latency_p99_ms:
                found.append(Alert("latency_p99_ms", window.day, p99, alerts.latency_p99_ms))
    return found


def post(url: str, report: MonitorReport) -> str | None:
    """Post the fired alerts to `url`; the reason it failed (None: it answered 2xx)."""
    import httpx

    document = {
        "model": report.model,
        "since": report.start,
        "predictions": report.predictions,
        "alerts": [a.to_dict() for a in report.alerts],
    }
    try:
        response = httpx.post(url, json=document, timeout=WEBHOOK_SECONDS)
    except httpx.TimeoutException:
        return f"the webhook did not answer within {WEBHOOK_SECONDS:g} s"
    except httpx.HTTPError as exc:
        return f"the webhook could not be reached ({type(exc).__name__}: {exc})"
    if not response.is_success:
        return f"the webhook answered {response.status_code}"
    return None

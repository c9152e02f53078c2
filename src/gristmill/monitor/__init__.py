"""Monitoring a served model from its prediction log (`gristmill monitor MODEL`).

`monitor(project, model, since="7d")` syncs the prediction log into the warehouse
(`raw.predictions`, the `gristmill.predictions` source) and computes there, over the
predictions logged since then:

- per feature of the model, the population stability index of the logged values against
  the model's training set (bins from the training set, the binning of `gristmill
  profile`), overall and per day, and the share of values that were missing or stale;
- the score's PSI against the training evaluation's score deciles (binary models);
- per day (UTC): predictions, decisions by decision, latency percentiles.

The reference is the training set of the version that made most of the predictions.
The thresholds of the model's `Alerts` (`Model(alerts=Alerts(psi=0.25, ...))`) that the
report crosses are its `alerts`; with a webhook, they are posted to it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gristmill.monitor.alerts import Alert, Alerts
from gristmill.monitor.drift import feature_drift, score_bins, windows
from gristmill.monitor.model import MonitorReport

if TYPE_CHECKING:
    from gristmill.project import Project

__all__ = ["Alert", "Alerts", "MonitorReport", "monitor"]

FEW_PREDICTIONS = 500
"""Below this many predictions, the report says its PSI figures are noisy."""


def monitor(
    project: Project, model: str, since: str = "7d", webhook: str | None = None
) -> MonitorReport:
    """How `model`'s inputs, scores, decisions and latency moved over the last `since`
    (a duration such as "7d"), from its prediction log, and the alerts that fired (posted
    to `webhook`, else to the spec's); see the module's text."""
    from gristmill.durations import parse_duration
    from gristmill.monitor.alerts import fired, post
    from gristmill.monitor.gauges import save as save_gauges
    from gristmill.monitor.log import LoggedPredictions
    from gristmill.train.discover import find_model, load_models

    spec = find_model(load_models(project.root), model)

    now = datetime.now(UTC)
    cutoff = now - parse_duration(since)
    with LoggedPredictions.open(project, model, cutoff, spec.label_key) as logged:
        report = MonitorReport(
            model=model,
            since=since,
            start=cutoff.isoformat(timespec="seconds"),
            end=now.isoformat(timespec="seconds"),
            version=logged.version.version,
            training_set=logged.training_set,
            predictions=logged.rows,
            versions=logged.versions,
        )
        if logged.rows == 0:
            report.warnings.append(f"No prediction of {model} was logged since {report.start}.")
            return report
        if logged.rows < FEW_PREDICTIONS:
            report.warnings.append(
                f"Only {logged.rows} predictions: a PSI over so few moves by chance; read it"
                f" over {FEW_PREDICTIONS} or more."
            )
        report.features = feature_drift(logged)
        scores = score_bins(logged.version.metadata)
        report.windows, report.score_psi, report.score_shares = windows(logged, scores)
        if spec.labels is not None:
            from gristmill.monitor.realized import realized

            report.realized = realized(logged, spec, now, scores[0] if scores else None)
    if spec.alerts is not None:
        report.alerts = fired(report, spec.alerts)
    report.flag()
    url = webhook or (spec.alerts.webhook if spec.alerts is not None else None)
    if report.alerts and url:
        report.webhook_error = post(url, report)
    save_gauges(project.root, report)
    return report

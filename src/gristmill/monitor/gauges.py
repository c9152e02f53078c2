"""The monitor's latest figures as Prometheus gauges: each `monitor()` writes them to
`.gristmill/monitor/MODEL.json` (replacing the file whole), and `gristmill serve` shows
them on /metrics, read at each scrape (`MonitorGauges`). Run `gristmill monitor` on a
schedule and the server's /metrics carries what it found."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gristmill.monitor.model import MonitorReport

logger = logging.getLogger(__name__)

GAUGES_DIR = Path(".gristmill") / "monitor"


def save(root: Path, report: MonitorReport) -> None:
    folder = root / GAUGES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "model": report.model,
        "computed_at": time.time(),
        "predictions": report.predictions,
        "score_psi": report.score_psi,
        "alerts": len(report.alerts),
        "features": {
            f.name: {"psi": f.psi, "missing": f.missing_share, "stale": f.stale_share}
            for f in report.features
        },
    }
    # Written aside and renamed: a scrape never reads half a file.
    handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        json.dump(document, out)
    os.replace(temporary, folder / f"{report.model}.json")


class MonitorGauges:
    """A Prometheus collector of the figures `monitor()` last saved for each model."""

    def __init__(self, root: Path) -> None:
        self.folder = root / GAUGES_DIR

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        families = {
            "psi": GaugeMetricFamily(
                "gristmill_monitor_feature_psi",
                "PSI of a feature's served values against the training set, as gristmill"
                " monitor last computed it.",
                labels=["model", "feature"],
            ),
            "missing": GaugeMetricFamily(
                "gristmill_monitor_feature_missing_share",
                "Share of predictions in which a feature had no value.",
                labels=["model", "feature"],
            ),
            "stale": GaugeMetricFamily(
                "gristmill_monitor_feature_stale_share",
                "Share of predictions in which a feature's view was past its ttl.",
                labels=["model", "feature"],
            ),
        }
        model_families = {
            "score_psi": GaugeMetricFamily(
                "gristmill_monitor_score_psi",
                "PSI of the scores against the training evaluation's deciles.",
                labels=["model"],
            ),
            "alerts": GaugeMetricFamily(
                "gristmill_monitor_alerts", "Alerts that fired.", labels=["model"]
            ),
            "predictions": GaugeMetricFamily(
                "gristmill_monitor_predictions", "Predictions monitored.", labels=["model"]
            ),
            "computed_at": GaugeMetricFamily(
                "gristmill_monitor_computed_at_seconds",
                "When gristmill monitor computed these figures (Unix time).",
                labels=["model"],
            ),
        }
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                document = json.loads(path.read_text())
                model = str(document["model"])
                for name, family in model_families.items():
                    if document.get(name) is not None:
                        family.add_metric([model], float(document[name]))
                for feature, values in document["features"].items():
                    for name, family in families.items():
                        if values.get(name) is not None:
                            family.add_metric([model, feature], float(values[name]))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning("Monitor gauges in %s are unreadable: %s", path, exc)
        yield from families.values()
        yield from model_families.values()

"""Prometheus metrics of the server: requests by model and status, latencies, scores and
decisions. Each app has a registry of its own (several apps in one process, as in tests,
do not collide); with several workers /metrics answers their sum (see `exposed`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from prometheus_client import CollectorRegistry

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
SCORE_BUCKETS = tuple(i / 10 for i in range(1, 11))


class ServerMetrics:
    def __init__(self, root: Path | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.monitored = CollectorRegistry()
        """The figures `gristmill monitor` last saved (`monitor/gauges.py`), read per scrape."""
        if root is not None:
            from gristmill.monitor.gauges import MonitorGauges

            self.monitored.register(MonitorGauges(root))  # type: ignore[arg-type]
        self.requests = Counter(
            "gristmill_requests",
            "Requests, by route, model and status.",
            ["route", "model", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gristmill_predict_seconds",
            "Time to answer a predict request.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scores = Histogram(
            "gristmill_scores",
            "Scores given (the probability of the positive class).",
            ["model"],
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "gristmill_decisions",
            "Decisions, by model and action.",
            ["model", "decision"],
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "gristmill_shadow_dropped",
            "Requests the shadow alias did not score because its queue was full.",
            ["model"],
            registry=self.registry,
        )
        self.refused_pushes = Counter(
            "gristmill_refused_pushes",
            "Pushes refused (nothing of them stored), by feature view: a value out of range or"
            " of the wrong type, an event time past the serving clock's allowance.",
            ["view"],
            registry=self.registry,
        )

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        body = generate_latest(exposed(self.registry)) + generate_latest(self.monitored)
        return body, CONTENT_TYPE_LATEST

    def predicted(self, model: str, seconds: float, scored: list[Any]) -> None:
        self.latency.labels(model).observe(seconds)
        for s in scored:
            if s.headline is not None:  # a degraded decision has no score
                self.scores.labels(model).observe(s.headline)
            self.decisions.labels(model, s.decision).inc()


def exposed(own: CollectorRegistry) -> CollectorRegistry:
    """What /metrics shows. A server with several workers sets PROMETHEUS_MULTIPROC_DIR
    before starting them, so that each writes its values to files there (prometheus_client
    decides so when imported): then the sum over every worker, those replaced included,
    read from the files; else this process's own registry."""
    import os

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return own
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry

"""Prometheus metrics of `gristmill stream` (`--metrics-port`): changes and events read and
applied, dead letters, how long batches take to apply, and how far behind each table or
stream is, by name. Served on 127.0.0.1 by prometheus_client's own HTTP server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gristmill.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from gristmill.streams.follow import FollowedStream, FollowedTable

APPLY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class StreamMetrics:
    def __init__(self, port: int) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        except ImportError:
            raise MissingDependencyError("prometheus-client", "serve", "--metrics-port") from None
        self.registry = CollectorRegistry()
        self.read = Counter(
            "gristmill_stream_read",
            "Changes (cdc tables) and messages (streams) read, by name.",
            ["name"],
            registry=self.registry,
        )
        self.applied = Counter(
            "gristmill_stream_applied",
            "Rows upserted and deleted (cdc tables), new events applied (streams), by name.",
            ["name"],
            registry=self.registry,
        )
        self.dead = Counter(
            "gristmill_stream_dead_letters",
            "Messages sent to the dead letters, by stream.",
            ["name"],
            registry=self.registry,
        )
        self.apply_seconds = Histogram(
            "gristmill_stream_apply_seconds",
            "Time to apply a batch (read, check, commit to the warehouse and the online store).",
            ["name"],
            buckets=APPLY_BUCKETS,
            registry=self.registry,
        )
        self.lag = Gauge(
            "gristmill_stream_lag",
            "How far behind: bytes of the source's log (cdc tables), messages (streams).",
            ["name", "unit"],
            registry=self.registry,
        )
        self.failing = Gauge(
            "gristmill_stream_failing",
            "1 while a table or stream fails (and is retried).",
            ["name"],
            registry=self.registry,
        )
        self._seen: dict[tuple[str, str], float] = {}
        from prometheus_client import start_http_server

        try:
            self.server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                f"--metrics-port {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror}):"
                " the port is in use; choose another."
            ) from None

    def _add(self, counter: object, name: str, total: float) -> None:
        """Counters follow running totals: each update adds what is new since the last."""
        key = (str(id(counter)), name)
        delta = total - self._seen.get(key, 0)
        if delta > 0:
            counter.labels(name).inc(delta)  # type: ignore[attr-defined]
        self._seen[key] = total

    def update(self, followed: list[FollowedTable | FollowedStream]) -> None:
        from gristmill.streams.follow import FollowedTable

        for item in followed:
            name = item.key
            if isinstance(item, FollowedTable):
                self._add(self.read, name, item.changes)
                self._add(self.applied, name, item.upserted + item.deleted)
                lag, unit = item.lag_bytes, "bytes"
            else:
                self._add(self.read, name, item.messages)
                self._add(self.applied, name, item.applied)
                self._add(self.dead, name, item.dead)
                lag, unit = item.lag, "messages"
            if (
                item.last_apply_seconds is not None
                and self._seen.get(("batches", name)) != item.batches
            ):
                self.apply_seconds.labels(name).observe(item.last_apply_seconds)
                self._seen[("batches", name)] = item.batches
            if lag is not None:
                self.lag.labels(name, unit).set(lag)
            self.failing.labels(name).set(1 if item.error else 0)

    def close(self) -> None:
        self.server.shutdown()

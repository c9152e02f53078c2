"""Releasing a new version on live traffic, beside the champion.

- `shadow`: every request is scored by the shadow version too, after its answer is sent
  (a bounded queue and one thread; when the queue is full the shadow misses the request,
  counted in `gristmill_shadow_dropped_total`, and the answer never waits). Its score and
  decision are logged with `alias = "shadow"` and `shadow_of`, the champion's
  prediction_id for the same request.
- `canary`: the alias's share (a percentage) of entities gets the canary's decision, the
  rest the champion's. An entity's bucket is the sha256 of its model's first entity key
  (user_id for a fraud model), so one user always meets the same version, on every server
  and worker, until the share changes.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gristmill.errors import GristmillError
from gristmill.registry.api import CANARY, SHADOW

if TYPE_CHECKING:
    from gristmill.serve.log import PredictionLog
    from gristmill.serve.scoring import LoadedModel, Scored, Scorer

logger = logging.getLogger(__name__)

BUCKETS = 10_000
"""A share is kept to a hundredth of a percent."""
SHADOW_QUEUE = 1_000
"""Requests waiting for the shadow at most; past it the shadow misses them."""
SHADOW_BATCH = 256
"""Rows the shadow scores in one call at most."""


def bucket(value: Any) -> int:
    """The canary bucket (0 to BUCKETS - 1) of an entity key value."""
    from gristmill.features.online import entity_key

    digest = hashlib.sha256(entity_key([value]).encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_canary(value: Any, share: float) -> bool:
    return bucket(value) < round(share * BUCKETS / 100)


@dataclass
class Canary:
    model: LoadedModel
    share: float
    key: str
    """The request field whose value decides an entity's bucket."""

    def picks(self, rows: list[dict[str, Any]]) -> list[bool]:
        return [in_canary(row.get(self.key), self.share) for row in rows]


class Releases:
    """The canary and shadow of each model, looked up again every RELOAD_SECONDS (a model
    without them costs one small file read per model and second)."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self._seen: dict[tuple[str, str], tuple[float, Any]] = {}

    def canary(self, name: str) -> Canary | None:
        def load() -> Canary | None:
            share = self.scorer.project.registry.alias_share(name, CANARY)
            loaded = self.scorer.model(name, CANARY)
            return (
                Canary(loaded, share or 0.0, loaded.entity_keys[0]) if loaded.entity_keys else None
            )

        found: Canary | None = self._cached(name, CANARY, load)
        return found

    def shadow(self, name: str) -> LoadedModel | None:
        found: LoadedModel | None = self._cached(
            name, SHADOW, lambda: self.scorer.model(name, SHADOW)
        )
        return found

    def _cached(self, name: str, alias: str, load: Any) -> Any:
        from gristmill.serve.scoring import RELOAD_SECONDS

        now = time.monotonic()
        seen = self._seen.get((name, alias))
        if seen is not None and now - seen[0] < RELOAD_SECONDS:
            return seen[1]
        if alias not in self.scorer.project.registry.aliases(name):
            value = None
        else:
            try:
                value = load()
            except GristmillError as exc:  # a broken release never stops the champion
                logger.error("%s: the %s alias cannot be served: %s", name, alias, exc)
                value = None
        self._seen[(name, alias)] = (now, value)
        return value


class ShadowWorker:
    """Scores shadow requests on its own thread, after their answers were sent."""

    def __init__(self, scorer: Scorer, log: PredictionLog, dropped: Any) -> None:
        self.scorer = scorer
        self.log = log
        self.dropped = dropped
        """A Prometheus counter (labels: model)."""
        self.queue: queue.Queue[tuple[str, list[dict[str, Any]], list[str]] | None] = queue.Queue(
            SHADOW_QUEUE
        )
        self.thread = threading.Thread(target=self._run, name="gristmill-shadow", daemon=True)
        self.thread.start()

    def submit(self, name: str, rows: list[dict[str, Any]], champion_ids: list[str]) -> None:
        try:
            self.queue.put_nowait((name, rows, champion_ids))
        except queue.Full:
            self.dropped.labels(name).inc(len(rows))

    def close(self, seconds: float = 5.0) -> None:
        """Score what waits (for at most `seconds`), then stop."""
        try:
            self.queue.put(None, timeout=seconds)
        except queue.Full:
            return
        self.thread.join(seconds)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            # What waited is scored in one call per model: a batch costs the GIL far less
            # than as many single rows, which the answers being sent need.
            waiting: dict[str, tuple[list[dict[str, Any]], list[str]]] = {}
            stop = False
            while item is not None:
                rows, ids = waiting.setdefault(item[0], ([], []))
                rows += item[1]
                ids += item[2]
                if sum(len(r) for r, _ in waiting.values()) >= SHADOW_BATCH:
                    break
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                stop = item is None
            for name, (rows, ids) in waiting.items():
                self._score(name, rows, ids)
            if stop:
                return

    def _score(self, name: str, rows: list[dict[str, Any]], champion_ids: list[str]) -> None:
        try:
            loaded, scored = self.scorer.score(name, rows, top=0, alias=SHADOW)
        except GristmillError as exc:
            logger.warning("%s: the shadow did not score %d rows: %s", name, len(rows), exc)
            return
        except Exception:  # the shadow's own bug must not end the thread
            logger.exception("%s: the shadow failed", name)
            return
        self.log.write(
            [
                {**record(name, loaded, row, s, latency=None), "shadow_of": champion}
                for row, s, champion in zip(rows, scored, champion_ids, strict=True)
            ]
        )


def record(
    name: str, loaded: LoadedModel, request: dict[str, Any], scored: Scored, latency: float | None
) -> dict[str, Any]:
    """One prediction's line of the log."""
    return {
        "prediction_id": uuid.uuid4().hex,
        "model": name,
        "version": loaded.version.version,
        "alias": loaded.alias,
        "policy_version": loaded.policy_version,
        "request": request,
        "features": scored.features,
        "score": scored.headline,
        "scores": scored.score if isinstance(scored.score, list) else None,
        "decision": scored.decision,
        "stale_features": scored.stale,
        "latency_ms": None if latency is None else round(latency, 3),
    }

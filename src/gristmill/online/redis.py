"""Redis: the online store on a server. Each entity's events are a sorted set scored by
time (µs since the epoch, exact in a double until the year 2255); a write is one
MULTI/EXEC transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gristmill.config import OnlineConfig
from gristmill.errors import ConfigError, ConnectionFailedError, MissingDependencyError
from gristmill.online.base import Events, OnlineStore


class RedisOnlineStore(OnlineStore):
    NAME = "redis"

    def __init__(self, config: OnlineConfig, root: Path) -> None:
        try:
            import redis
        except ImportError:
            raise MissingDependencyError("redis", "redis", "The Redis online store") from None
        if not config.url:
            raise ConfigError(
                'The redis online store needs url = "redis://host:6379/0" under [online].'
            )
        self.prefix = config.prefix
        self._errors = redis.RedisError
        self._redis: Any = redis.Redis.from_url(config.url)
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise ConnectionFailedError(f"Cannot reach the Redis online store: {exc}") from None

    def _events(self, view: str, key: str) -> str:
        return f"{self.prefix}:{view}:e:{key}"

    def _meta(self, view: str) -> str:
        return f"{self.prefix}:{view}:meta"

    def _call(self, what: str, action: Any) -> Any:
        try:
            return action()
        except self._errors as exc:
            raise ConnectionFailedError(f"The Redis online store failed to {what}: {exc}") from None

    def read(self, view: str, keys: Sequence[str]) -> list[list[bytes]]:
        return self.read_views([(view, keys)])[0]

    def read_views(self, lookups: Sequence[tuple[str, Sequence[str]]]) -> list[list[list[bytes]]]:
        pipe = self._redis.pipeline(transaction=False)
        for view, keys in lookups:
            for key in keys:
                pipe.zrange(self._events(view, key), 0, -1)
        found: list[list[bytes]] = self._call("read", pipe.execute)
        answers = iter(found)
        return [[next(answers) for _ in keys] for _, keys in lookups]

    def write(
        self,
        view: str,
        events: Mapping[str, Events],
        forget_before: Mapping[str, int],
        replace: bool = False,
    ) -> None:
        pipe = self._redis.pipeline(transaction=True)
        for key, evs in events.items():
            name = self._events(view, key)
            if replace:
                pipe.delete(name)
            if evs:
                pipe.zadd(name, {event: time for time, event in evs})
        for key, cut in forget_before.items():
            pipe.zremrangebyscore(self._events(view, key), "-inf", f"({cut}")
        self._call("write", pipe.execute)

    def get_meta(self, view: str, name: str) -> str | None:
        value = self._call("read", lambda: self._redis.hget(self._meta(view), name))
        return value.decode() if value is not None else None

    def set_meta(self, view: str, name: str, value: str) -> None:
        self._call("write", lambda: self._redis.hset(self._meta(view), name, value))

    def clear(self, view: str) -> None:
        glob = "".join("\\" + c if c in "\\*?[]" else c for c in self._events(view, ""))
        pattern = glob + "*"
        batch: list[bytes] = []
        for name in self._redis.scan_iter(match=pattern, count=1000):
            batch.append(name)
            if len(batch) == 1000:
                self._redis.unlink(*batch)
                batch.clear()
        self._redis.unlink(self._meta(view), *batch)

    def close(self) -> None:
        self._redis.close()

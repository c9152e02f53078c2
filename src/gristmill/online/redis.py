"""Redis: the online store on a server, one hash per feature view."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gristmill.config import OnlineConfig
from gristmill.errors import ConfigError, ConnectionFailedError, MissingDependencyError
from gristmill.online.base import OnlineStore


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
        self._redis: Any = redis.Redis.from_url(config.url)
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise ConnectionFailedError(f"Cannot reach the Redis online store: {exc}") from None

    def _records(self, view: str) -> str:
        return f"{self.prefix}:{view}:records"

    def _meta(self, view: str) -> str:
        return f"{self.prefix}:{view}:meta"

    def read(self, view: str, keys: Sequence[str]) -> list[bytes | None]:
        if len(keys) == 1:
            return [self._redis.hget(self._records(view), keys[0])]
        values: list[bytes | None] = self._redis.hmget(self._records(view), list(keys))
        return values

    def write(self, view: str, records: Mapping[str, bytes]) -> None:
        if records:
            self._redis.hset(self._records(view), mapping=dict(records))

    def get_meta(self, view: str, name: str) -> str | None:
        value = self._redis.hget(self._meta(view), name)
        return value.decode() if value is not None else None

    def set_meta(self, view: str, name: str, value: str) -> None:
        self._redis.hset(self._meta(view), name, value)

    def clear(self, view: str) -> None:
        self._redis.delete(self._records(view), self._meta(view))

    def close(self) -> None:
        self._redis.close()

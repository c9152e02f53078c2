"""Redis: the online store on a server. Each entity's events are a sorted set scored by
time (µs since the epoch, exact in a double until the year 2255); a write is one
MULTI/EXEC transaction, a read of any number of entities one pipelined round trip.

Every call has the deadline of [online] timeout (connect and each socket read), and is
not retried: a stalled or unreachable Redis fails the call with
OnlineStoreUnavailableError instead of holding a request."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gristmill.config import OnlineConfig
from gristmill.errors import (
    BackendError,
    ConfigError,
    MissingDependencyError,
    OnlineStoreUnavailableError,
)
from gristmill.online.base import Events, OnlineStore, deadline_seconds


class RedisOnlineStore(OnlineStore):
    NAME = "redis"

    def __init__(self, config: OnlineConfig, root: Path) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            raise MissingDependencyError("redis", "redis", "The Redis online store") from None
        if not config.url:
            raise ConfigError(
                'The redis online store needs url = "redis://host:6379/0" under [online].'
            )
        self.prefix = config.prefix
        self.timeout = deadline_seconds(config)
        self._errors = (redis.RedisError, OSError)
        self._url = config.url
        self._async: tuple[Any, Any] | None = None
        # Timeouts, refused and reset connections: the server is unreachable, not wrong.
        self._unreachable = (redis.ConnectionError, redis.TimeoutError, OSError)
        self._where = _without_password(config.url)
        # A retry would double the deadline a caller was promised: the caller decides.
        self._redis: Any = redis.Redis.from_url(
            config.url,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            retry_on_timeout=False,
            retry=Retry(NoBackoff(), 0),
        )
        self._call("connect to", self._redis.ping, "Cannot reach the Redis online store")

    def _events(self, view: str, key: str) -> str:
        return f"{self.prefix}:{view}:e:{key}"

    def _meta(self, view: str) -> str:
        return f"{self.prefix}:{view}:meta"

    def _call(self, what: str, action: Callable[[], Any], lead: str | None = None) -> Any:
        """`action`, with the driver's errors translated at the store's edge."""
        try:
            return action()
        except self._errors as exc:
            raise self._translated(what, exc, lead) from None

    def _translated(self, what: str, exc: Exception, lead: str | None = None) -> Exception:
        if isinstance(exc, self._unreachable):
            return OnlineStoreUnavailableError(
                f"{lead or 'The Redis online store'} ({self._where}): could not {what} it"
                f" (its deadline: {self.timeout:g} s, [online] timeout): {exc}. Check"
                " that Redis is running and reachable at that address, and not stalled"
                " (SLOWLOG, a blocking command, memory), or raise [online] timeout."
            )
        return BackendError(
            f"The Redis online store ({self._where}) refused to {what}: {exc}", str(exc)
        )

    def _async_client(self) -> Any:
        """The asyncio client of the running event loop (made on its first read there),
        with the deadlines of the blocking one."""
        import asyncio

        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            client = redis.asyncio.Redis.from_url(
                self._url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry_on_timeout=False,
                retry=Retry(NoBackoff(), 0),
            )
            self._async = (loop, client)
        return self._async[1]

    def read(self, view: str, keys: Sequence[str]) -> list[list[bytes]]:
        return self.read_views([(view, keys)])[0]

    def read_views(self, lookups: Sequence[tuple[str, Sequence[str]]]) -> list[list[list[bytes]]]:
        names = self._names(lookups)
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.zrange(name, 0, -1)
        found: dict[str, list[bytes]] = dict(
            zip(names, self._call("read from", pipe.execute), strict=True)
        )
        return [[list(found[self._events(view, k)]) for k in keys] for view, keys in lookups]

    async def read_views_async(
        self, lookups: Sequence[tuple[str, Sequence[str]]]
    ) -> list[list[list[bytes]]]:
        names = self._names(lookups)
        try:
            async with self._async_client().pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.zrange(name, 0, -1)
                answers = await pipe.execute()
        except self._errors as exc:
            raise self._translated("read from", exc) from None
        found: dict[str, list[bytes]] = dict(zip(names, answers, strict=True))
        return [[list(found[self._events(view, k)]) for k in keys] for view, keys in lookups]

    def _names(self, lookups: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
        # Each distinct (view, key) is asked once; repeats share its answer.
        return list(dict.fromkeys(self._events(v, k) for v, keys in lookups for k in keys))

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
        self._call("write to", pipe.execute)

    def get_meta(self, view: str, name: str) -> str | None:
        value = self._call("read from", lambda: self._redis.hget(self._meta(view), name))
        return value.decode() if value is not None else None

    def set_meta(self, view: str, name: str, value: str) -> None:
        self._call("write to", lambda: self._redis.hset(self._meta(view), name, value))

    def ping(self) -> None:
        self._call("ping", self._redis.ping)

    def clear(self, view: str) -> None:
        self._call("clear a view of", lambda: self._clear(view))

    def _clear(self, view: str) -> None:
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


def _without_password(url: str) -> str:
    """The URL to name in a message: never its credentials."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2], query="").geturl()

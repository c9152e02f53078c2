"""Redis Streams: XREADGROUP by a consumer group, XACK once a batch is applied. Every call
has a deadline (CALL_SECONDS, a read's block time at most MAX_BLOCK_SECONDS of it); an
unreachable or stalled Redis fails the poll (the stream is retried) instead of holding the
process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gristmill.config import StreamConfig
from gristmill.errors import BackendError, ConnectionFailedError, MissingDependencyError
from gristmill.streams.base import Broker, Message

CONNECT_SECONDS = 5.0
CALL_SECONDS = 30.0
"""The longest any call may take (a read's block time included): a Redis that stalls
fails the poll, and the stream is tried again, instead of holding the process."""
MAX_BLOCK_SECONDS = 10.0


class RedisStreamBroker(Broker):
    NAME = "redis"

    def __init__(self, name: str, config: StreamConfig, consumer: str) -> None:
        super().__init__(name, config, consumer)
        try:
            import redis
        except ImportError:
            raise MissingDependencyError("redis", "redis", "A Redis stream") from None
        self._redis_errors = (redis.RedisError, OSError)
        self._client: Any = redis.Redis.from_url(
            config.url, socket_connect_timeout=CONNECT_SECONDS, socket_timeout=CALL_SECONDS
        )
        self._pending = True
        """Whether messages delivered before (and not acknowledged) may remain."""
        try:
            self._client.xgroup_create(config.stream, config.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise self._translated("create its consumer group", exc) from None
        except self._redis_errors as exc:
            raise self._translated("reach", exc) from None

    def _translated(self, what: str, exc: Exception) -> Exception:
        where = f"Stream '{self.name}' (Redis stream {self.config.stream!r})"
        if (
            isinstance(exc, OSError)
            or "Connection" in type(exc).__name__
            or "Timeout" in type(exc).__name__
        ):
            return ConnectionFailedError(f"{where}: could not {what} Redis: {exc}")
        return BackendError(f"{where}: could not {what}: {exc}", str(exc))

    def read(self, block_seconds: float) -> list[Message]:
        stream, group = self.config.stream, self.config.group
        try:
            if self._pending:
                found = self._client.xreadgroup(
                    group, self.consumer, {stream: "0"}, count=self.config.batch
                )
                entries = found[0][1] if found else []
                if entries:
                    return [_message(i, f) for i, f in entries]
                self._pending = False
            wait = min(block_seconds, MAX_BLOCK_SECONDS)
            block = max(1, int(wait * 1000)) if wait > 0 else None
            found = self._client.xreadgroup(
                group, self.consumer, {stream: ">"}, count=self.config.batch, block=block
            )
        except self._redis_errors as exc:
            raise self._translated("read from", exc) from None
        return [_message(i, f) for i, f in (found[0][1] if found else [])]

    def rewind(self) -> None:
        self._pending = True

    def ack(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        try:
            self._client.xack(self.config.stream, self.config.group, *ids)
        except self._redis_errors as exc:
            raise self._translated("acknowledge messages on", exc) from None

    def lag(self) -> int | None:
        try:
            groups = self._client.xinfo_groups(self.config.stream)
        except self._redis_errors:
            return None
        for group in groups:
            if group.get("name") in (self.config.group, self.config.group.encode()):
                lag = group.get("lag")
                return int(lag) if lag is not None else None
        return None

    def close(self) -> None:
        self._client.close()


def _message(entry_id: bytes, fields: dict[bytes, bytes]) -> Message:
    identity = entry_id.decode()
    try:
        text = {k.decode(): v.decode() for k, v in fields.items()}
    except UnicodeDecodeError as exc:
        return Message(identity, {}, fields, f"a field is not UTF-8 text ({exc.reason})")
    return Message(identity, text, fields)

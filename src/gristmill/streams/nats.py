"""NATS JetStream: a durable pull consumer (named after [streams.NAME] group) on a subject
of an existing stream; each batch fetched, acknowledged once applied. A message not
acknowledged (the consumer was killed) is delivered again after the consumer's ack wait;
one of a batch that failed is given back at once (NAK). In `fields` format an event's
columns are the message's headers; in `json` format its payload.

nats-py is asyncio; the broker runs its own event loop on a thread, and every call waits
for it at most a bounded time."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from gristmill.config import StreamConfig
from gristmill.durations import parse_duration
from gristmill.errors import BackendError, ConnectionFailedError, MissingDependencyError
from gristmill.streams.base import Broker, Message

T = TypeVar("T")
CONNECT_SECONDS = 5.0
CALL_SECONDS = 30.0


class NatsStreamBroker(Broker):
    NAME = "nats"

    def __init__(self, name: str, config: StreamConfig, consumer: str) -> None:
        super().__init__(name, config, consumer)
        try:
            import nats  # noqa: F401
        except ImportError:
            raise MissingDependencyError("nats-py", "nats", "A NATS JetStream stream") from None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"gm-nats-{name}", daemon=True
        )
        self._thread.start()
        self._unacked: list[Any] = []
        try:
            self._call(self._connect())
        except BaseException:
            self._stop_loop()
            raise

    def _where(self) -> str:
        return f"Stream '{self.name}' (NATS subject {self.config.stream!r})"

    def _call(self, work: Coroutine[Any, Any, T], seconds: float = CALL_SECONDS) -> T:
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result(seconds)
        except TimeoutError:
            future.cancel()
            raise ConnectionFailedError(
                f"{self._where()}: NATS did not answer within {seconds:g} s."
            ) from None

    async def _connect(self) -> None:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig
        from nats.js.errors import NotFoundError

        try:
            self._nc = await nats.connect(
                self.config.url,
                connect_timeout=CONNECT_SECONDS,
                max_reconnect_attempts=3,
                allow_reconnect=True,
            )
        except Exception as exc:
            raise ConnectionFailedError(
                f"{self._where()}: cannot reach {self.config.url}: {exc}"
            ) from None
        self._js = self._nc.jetstream(timeout=CONNECT_SECONDS)
        try:
            stream = await self._js.find_stream_name_by_subject(self.config.stream)
        except NotFoundError:
            raise BackendError(
                f"{self._where()}: no JetStream stream holds this subject. Create one"
                f" (nats stream add --subjects '{self.config.stream}'), then start again."
            ) from None
        self._sub = await self._js.pull_subscribe(
            self.config.stream,
            durable=self.config.group,
            stream=stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=parse_duration(self.config.ack_wait).total_seconds(),
                max_ack_pending=max(2 * self.config.batch, 1000),
            ),
        )

    def read(self, block_seconds: float) -> list[Message]:
        async def fetch() -> list[Any]:
            from nats.errors import TimeoutError as NatsTimeout

            try:
                return list(
                    await self._sub.fetch(self.config.batch, timeout=max(block_seconds, 0.05))
                )
            except (TimeoutError, NatsTimeout):
                return []

        messages = self._call(fetch(), block_seconds + CALL_SECONDS)
        self._unacked.extend(messages)
        return [self._message(m) for m in messages]

    def _message(self, received: Any) -> Message:
        identity = str(received.metadata.sequence.stream)
        data: bytes = received.data or b""
        headers = dict(received.headers or {})
        raw = {b"data": data, **{k.encode(): v.encode() for k, v in headers.items()}}
        if self.config.format == "fields":
            return Message(identity, headers, raw)
        try:
            return Message(identity, {"data": data.decode()}, raw)
        except UnicodeDecodeError as exc:
            return Message(identity, {}, raw, f"the payload is not UTF-8 text ({exc.reason})")

    def rewind(self) -> None:
        pending, self._unacked = self._unacked, []

        async def give_back() -> None:
            for message in pending:
                await message.nak()

        self._call(give_back())

    def ack(self, ids: Sequence[str]) -> None:
        done = set(ids)
        acked = [m for m in self._unacked if str(m.metadata.sequence.stream) in done]
        self._unacked = [m for m in self._unacked if str(m.metadata.sequence.stream) not in done]

        async def acknowledge() -> None:
            # Each message on its own (AckAll would also acknowledge what a killed consumer
            # was delivered and never applied, which then would never come again).
            for message in acked:
                await message.ack()
            await self._nc.flush(timeout=int(CALL_SECONDS))

        self._call(acknowledge())

    def lag(self) -> int | None:
        async def pending() -> int:
            info = await self._sub.consumer_info()
            return int(info.num_pending or 0)

        try:
            return self._call(pending(), CONNECT_SECONDS)
        except Exception:
            return None

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a connection that is gone already
            self._call(self._nc.close(), CONNECT_SECONDS)
        self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

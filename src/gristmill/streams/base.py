"""The Broker interface: a stream read by a consumer group, whose acknowledgements say
what has been applied. A message read and not acknowledged (the consumer was killed) is
delivered again, first, to the same consumer: at least once; the event id makes the effect
once (`consume.py`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from gristmill.config import StreamConfig


@dataclass(frozen=True)
class Message:
    id: str
    """The broker's id of the message (Redis: the entry id, "1700000000000-0")."""
    fields: dict[str, str]
    """Field -> value as text; a value that is not UTF-8 makes the message a dead letter."""
    received: dict[bytes, bytes]
    """The message as received."""
    problem: str | None = None
    """Why the message cannot even be read as fields (its dead letter's reason)."""

    @property
    def raw(self) -> str:
        """The message as received, for its dead letter: a JSON object, bytes that are not
        UTF-8 escaped (only a dead letter pays for it)."""
        import json

        return json.dumps(
            {
                k.decode(errors="backslashreplace"): v.decode(errors="backslashreplace")
                for k, v in self.received.items()
            }
        )


class Broker(ABC):
    NAME: ClassVar[str]

    def __init__(self, name: str, config: StreamConfig, consumer: str) -> None:
        self.name = name
        self.config = config
        self.consumer = consumer

    @abstractmethod
    def read(self, block_seconds: float) -> list[Message]:
        """At most `config.batch` messages: those delivered before and never
        acknowledged first, then new ones, waiting up to `block_seconds` for some."""

    @abstractmethod
    def rewind(self) -> None:
        """Deliver again, first, the messages read and not acknowledged (a batch failed)."""

    @abstractmethod
    def ack(self, ids: Sequence[str]) -> None:
        """The messages are applied: never delivered again."""

    @abstractmethod
    def lag(self) -> int | None:
        """Messages in the stream not yet delivered to the group (None: unknown)."""

    def close(self) -> None:  # noqa: B027 - a broker without a connection has nothing to close
        pass

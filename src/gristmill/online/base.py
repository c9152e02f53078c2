"""The OnlineStore interface: append-only event logs by (view, entity key), and a few
metadata values per view (the materialization watermark, the definition's version).

An event is opaque bytes with a time (epoch µs); what it holds is the features module's
business. A push appends an entity's new events and forgets its old ones in the same
write, without reading anything: the cost of a push does not grow with the history an
entity already has. A store keeps an entity's events in time order, reads many entities
at once and writes many at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from gristmill.durations import parse_duration

if TYPE_CHECKING:
    from gristmill.config import OnlineConfig

Events = Sequence[tuple[int, bytes]]
"""(time in epoch µs, encoded event); two events of an entity are never equal as bytes."""


def deadline_seconds(config: OnlineConfig) -> float:
    """The deadline of each call to the store, from [online] timeout."""
    return parse_duration(config.timeout).total_seconds()


class OnlineStore(ABC):
    NAME: ClassVar[str]

    @abstractmethod
    def read(self, view: str, keys: Sequence[str]) -> list[list[bytes]]:
        """The events of each key (empty where there are none), oldest first: one answer
        per entry of `keys`, however many there are and however often a key repeats."""

    def read_views(self, lookups: Sequence[tuple[str, Sequence[str]]]) -> list[list[list[bytes]]]:
        """`read` of several views at once: a server store answers them in one round
        trip, which is most of a served prediction's wait."""
        return [self.read(view, keys) for view, keys in lookups]

    def read_views_now(
        self, lookups: Sequence[tuple[str, Sequence[str]]]
    ) -> list[list[list[bytes]]] | None:
        """`read_views` when the store can answer without waiting (for a lock, or a
        server): None when it cannot, and then nothing was read."""
        return None

    async def read_views_async(
        self, lookups: Sequence[tuple[str, Sequence[str]]]
    ) -> list[list[list[bytes]]]:
        """`read_views` for an event loop, which must never wait: answered at once when
        the store can, else on a worker thread (a server store overrides this with its
        asynchronous client)."""
        found = self.read_views_now(lookups)
        if found is not None:
            return found
        import anyio.to_thread

        return await anyio.to_thread.run_sync(self.read_views, lookups, abandon_on_cancel=True)

    @abstractmethod
    def write(
        self,
        view: str,
        events: Mapping[str, Events],
        forget_before: Mapping[str, int],
        replace: bool = False,
    ) -> None:
        """Append `events` to their keys and drop each key's events older than
        `forget_before[key]` (µs), all at once; with `replace`, each key's earlier events
        are dropped first."""

    @abstractmethod
    def get_meta(self, view: str, name: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, view: str, name: str, value: str) -> None: ...

    def ping(self) -> None:
        """Answer within the store's deadline, or raise OnlineStoreUnavailableError: a
        server is ready only while its online store answers."""
        self.get_meta("_gm", "ping")

    @abstractmethod
    def clear(self, view: str) -> None:
        """Forget every event and metadata value of `view`."""

    @abstractmethod
    def close(self) -> None: ...

"""The OnlineStore interface: opaque records by (view, entity key), and a watermark per
view. What a record holds (an entity's recent events) is the features module's business;
a store only keeps bytes, reads many keys at once and writes many at once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar


class OnlineStore(ABC):
    NAME: ClassVar[str]

    @abstractmethod
    def read(self, view: str, keys: Sequence[str]) -> list[bytes | None]:
        """The records of `keys` (None where there is none), in order."""

    @abstractmethod
    def write(self, view: str, records: Mapping[str, bytes]) -> None:
        """Replace the records of these keys, all at once."""

    @abstractmethod
    def get_meta(self, view: str, name: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, view: str, name: str, value: str) -> None: ...

    @abstractmethod
    def clear(self, view: str) -> None:
        """Forget every record of `view`."""

    @abstractmethod
    def close(self) -> None: ...

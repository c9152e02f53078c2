"""Sources: the operational databases and files gristmill syncs from.

`base.Source` is the interface; each module beside it implements one kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from gristmill import backends

if TYPE_CHECKING:
    from gristmill.config import SourceConfig
    from gristmill.ingest.sources.base import Source


def open_source(name: str, config: SourceConfig, root: Path) -> Source:
    cls = backends.resolve("source", config.type)
    source: Source = cls(name, config, root)
    return source


class SourcesOpenedAhead:
    """Opens the sources one after another on a thread of its own, so that each source's
    connection is made while the warehouse opens or the sources before it sync: a
    PostgreSQL connection reads the server's type catalog first, a tenth of a small
    incremental sync. Sources never taken are closed on exit."""

    def __init__(self, configs: Mapping[str, SourceConfig], root: Path, names: list[str]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gm-open")
        self._opening = {
            name: self._pool.submit(open_source, name, configs[name], root) for name in names
        }

    def take(self, name: str) -> Source:
        return self._opening.pop(name).result()

    def __enter__(self) -> SourcesOpenedAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        for future in self._opening.values():
            if not future.cancel() and future.exception() is None:
                future.result().close()
        self._pool.shutdown()

"""Sources: the operational databases and files gristmill syncs from.

`base.Source` is the interface; each module beside it implements one kind.
"""

from __future__ import annotations

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

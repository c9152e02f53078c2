"""The online store: the recent events of every entity of every feature view, so that
features can be computed as of now, fresh to the second.

`base.OnlineStore` is the interface; `sqlite.py` (the embedded default) and `redis.py`
implement it. `open_online_store` resolves the configured backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gristmill import backends

if TYPE_CHECKING:
    from gristmill.config import OnlineConfig
    from gristmill.online.base import OnlineStore


def open_online_store(config: OnlineConfig, root: Path) -> OnlineStore:
    cls = backends.resolve("online", config.type)
    store: OnlineStore = cls(config, root)
    return store

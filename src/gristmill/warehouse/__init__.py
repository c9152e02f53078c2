"""The warehouse: where raw, derived and feature tables live.

`base.Warehouse` is the interface; `duckdb.py` (the embedded default) and
`postgres.py` implement it. `connect_warehouse` resolves the configured backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gristmill import backends

if TYPE_CHECKING:
    from gristmill.config import WarehouseConfig
    from gristmill.warehouse.base import Warehouse


def connect_warehouse(config: WarehouseConfig, root: Path) -> Warehouse:
    """Open the warehouse configured for the project rooted at `root`."""
    cls = backends.resolve("warehouse", config.type)
    warehouse: Warehouse = cls(config, root)
    return warehouse

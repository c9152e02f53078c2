"""The catalog: gristmill's own metadata (runs, what each sync did, schema history).

`base.Catalog` is the interface; `sqlite.py` is the embedded default. The sync state
that decides what to read next lives in the warehouse, next to the data it describes,
so that both commit in one transaction; the catalog keeps a copy for reporting.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gristmill import backends

if TYPE_CHECKING:
    from gristmill.catalog.base import Catalog
    from gristmill.config import CatalogConfig


def open_catalog(config: CatalogConfig, root: Path) -> Catalog:
    cls = backends.resolve("catalog", config.type)
    catalog: Catalog = cls(config, root)
    return catalog

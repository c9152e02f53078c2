"""The model registry: numbered, immutable model versions with their artifacts and
metadata, and aliases (`champion`, `challenger`) that move atomically.

`api.Registry` is what callers use; it works over a `base.RegistryStorage`, of which
`local.py` (a folder, by default `<project>/.gristmill/registry`) is the first backend.
`artifacts.py` turns fitted estimators into safe files (LightGBM text, skops) and back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gristmill import backends
from gristmill.errors import ConfigError

if TYPE_CHECKING:
    from gristmill.registry.api import Registry
    from gristmill.registry.base import RegistryStorage

DEFAULT_PATH = ".gristmill/registry"


def open_registry(root: Path, url: str | None = None) -> Registry:
    """The registry of the project at `root`: `url` is a folder (relative to `root`), a
    file:// URL, or None for `<root>/.gristmill/registry`."""
    from gristmill.registry.api import Registry

    location = url or DEFAULT_PATH
    scheme = urlsplit(location).scheme
    if scheme in ("", "file"):
        path = Path(location.removeprefix("file://")).expanduser()
        location, kind = str(path if path.is_absolute() else root / path), "local"
    else:
        # Object stores will get an fsspec backend; until then, say so plainly.
        kind = "fsspec"
        if kind not in backends.names("registry"):
            raise ConfigError(
                f"The registry URL '{url}' needs a storage backend for '{scheme}://', "
                "which gristmill does not have yet: use a local folder path."
            )
    storage: RegistryStorage = backends.resolve("registry", kind)(location)
    return Registry(storage)

"""gristmill: from an atomic piece of operational data to a model that decides in production."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gristmill.errors import GristmillError

if TYPE_CHECKING:
    from gristmill.transforms.python import transform

__version__ = "0.1.0"

__all__ = ["GristmillError", "__version__", "transform"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `gristmill --help` does not pay for pydantic.
    if name == "transform":
        from gristmill.transforms.python import transform

        return transform
    raise AttributeError(f"module 'gristmill' has no attribute {name!r}")

"""gristmill: from an atomic piece of operational data to a model that decides in production."""

from gristmill.errors import GristmillError

__version__ = "0.1.0"

__all__ = ["GristmillError", "__version__"]

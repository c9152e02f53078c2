"""One Dialect object per engine: identifiers, literals, column types, casts and the
engine-specific spellings every stage needs (see `base.Dialect`).

`dialect(name)` resolves an engine's dialect through the backend registry; a warehouse,
a source and a diff endpoint each carry the dialect of their engine as `.dialect`.
"""

from __future__ import annotations

from functools import cache

from gristmill import backends
from gristmill.dialects.base import Dialect

__all__ = ["Dialect", "dialect"]


@cache
def dialect(name: str) -> Dialect:
    """The dialect of engine `name` ('duckdb', 'postgres', 'mysql', 'sqlite')."""
    cls: type[Dialect] = backends.resolve("dialect", name)
    return cls()

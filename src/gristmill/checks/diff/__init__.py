"""Reconciliation: which rows differ between two tables, in the same or different databases.

`diff_tables(project, a, b, key)` names each table as the project sees it (`key`: a column,
or a list of the columns of a composite key):

- `SOURCE.TABLE` (or `SOURCE.SCHEMA.TABLE`): a table of a configured postgres or mysql
  source, read in the source database;
- anything else, `[schema.]table`: a warehouse table (default schema: the raw schema).

Checksums of key segments are computed inside each database and only the segments that
disagree are bisected (`bisect.py`); `base.DiffEndpoint` is the interface one module per
database implements.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING

from gristmill import backends
from gristmill.checks.diff.base import DiffEndpoint
from gristmill.checks.diff.bisect import diff
from gristmill.checks.diff.normalise import DEFAULT_FLOAT_TOLERANCE
from gristmill.checks.diff.result import Changed, DiffResult
from gristmill.errors import ConfigError

if TYPE_CHECKING:
    from gristmill.project import Project

__all__ = [
    "DEFAULT_FLOAT_TOLERANCE",
    "Changed",
    "DiffEndpoint",
    "DiffResult",
    "diff",
    "diff_tables",
    "endpoint",
]


def endpoint(project: Project, name: str) -> DiffEndpoint:
    """The endpoint of the table `name` names in `project` (see the module's docstring)."""
    head, _, rest = name.partition(".")
    sources = project.config.sources
    if rest and head in sources:
        source = sources[head]
        cls: type[DiffEndpoint] = _endpoint_class(source.type)
        return cls.for_source(project, name, head, source, rest)
    schema, _, table = name.rpartition(".")
    warehouse = project.config.warehouse
    cls = _endpoint_class(warehouse.type)
    return cls.for_warehouse(project, name, schema or warehouse.raw_schema, table)


def _endpoint_class(backend: str) -> type[DiffEndpoint]:
    """The endpoint class of a source or warehouse type; the base refuses politely."""
    try:
        cls: type[DiffEndpoint] = backends.resolve("diff", backend)
    except ConfigError:
        return DiffEndpoint
    return cls


def diff_tables(
    project: Project,
    a: str,
    b: str,
    key: str | Sequence[str],
    columns: Sequence[str] | None = None,
    float_tolerance: float = DEFAULT_FLOAT_TOLERANCE,
) -> DiffResult:
    """Compare tables `a` and `b` on their unique `key` (a column, or a list of columns):
    keys missing on each side, and rows whose values differ in `columns` (default: every
    column both have). Floats differing by at most `float_tolerance` of the larger value
    are equal (default 0: exactly equal)."""
    with ExitStack() as stack:
        left = endpoint(project, a)
        stack.callback(left.close)
        right = endpoint(project, b)
        stack.callback(right.close)
        return diff(left, right, key, columns, float_tolerance)

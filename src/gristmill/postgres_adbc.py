"""What the PostgreSQL source and the PostgreSQL warehouse share: the ADBC driver, and
how its Arrow output maps to faithful Arrow types."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa

from gristmill.errors import ConnectionFailedError, MissingDependencyError

UNCONSTRAINED_NUMERIC = pa.decimal128(38, 9)
"""What an unconstrained NUMERIC becomes: 29 integer and 9 fractional digits, as dlt does."""


def dbapi(purpose: str) -> Any:
    try:
        import adbc_driver_postgresql.dbapi as module
    except ImportError:
        raise MissingDependencyError("adbc-driver-postgresql", "postgres", purpose) from None
    return module


def describe_url(url: str) -> str:
    """host:port/database, for messages: never the user's password."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def connect(url: str, who: str) -> Any:
    module = dbapi(who)
    try:
        return module.connect(url)
    except module.Error as exc:
        reason = str(exc).split("\n")[0].removeprefix("IO: [libpq] Failed to connect: ")
        raise ConnectionFailedError(
            f"{who}: cannot connect to PostgreSQL at {describe_url(url)}: {reason}. "
            "Check the host, port, user and password in its url."
        ) from None


def numeric_type(typmod: int) -> pa.DataType:
    if typmod < 4:
        return UNCONSTRAINED_NUMERIC
    precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
    if precision > 38:
        return pa.decimal128(38, min(scale, 38))
    return pa.decimal128(precision, scale)


def wire_type(field: pa.Field) -> pa.DataType:
    """The faithful Arrow type for a column as the ADBC driver describes it: NUMERIC
    arrives as an opaque string carrying its typmod, other unknown types as opaque text."""
    dtype = field.type
    if isinstance(dtype, pa.BaseExtensionType) and dtype.extension_name == "arrow.opaque":
        meta = field.metadata or {}
        if meta.get(b"POSTGRESQL:type") == b"numeric":
            return numeric_type(int(meta.get(b"POSTGRESQL:typmod", b"-1")))
        return pa.string()
    return dtype


def to_type(column: pa.Array | pa.ChunkedArray, dtype: pa.DataType) -> Any:
    if isinstance(column.type, pa.BaseExtensionType) and not isinstance(
        dtype, pa.BaseExtensionType
    ):
        column = (
            pa.chunked_array([c.storage for c in column.chunks], column.type.storage_type)
            if isinstance(column, pa.ChunkedArray)
            else column.storage
        )
    if column.type == dtype:
        return column
    return column.cast(dtype)


def faithful(table: pa.Table) -> pa.Table:
    """A query result with opaque NUMERIC columns turned into decimals."""
    types = [wire_type(f) for f in table.schema]
    if all(t == f.type for t, f in zip(types, table.schema, strict=True)):
        return table
    return pa.table(
        [to_type(c, t) for c, t in zip(table.columns, types, strict=True)],
        names=table.column_names,
    )

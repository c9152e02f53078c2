"""Schema evolution: how a warehouse table follows its source table's columns.

A new source column is added; a column whose type widened (int32 -> int64,
numeric(10,2) -> numeric(12,2), float32 -> float64) is widened; a column that
narrowed keeps its wider warehouse type; any other change stops that table with
a `SchemaChangeError` before anything is written. Columns dropped at the source
stay in the warehouse and receive NULL for new rows.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import pyarrow as pa

from gristmill.errors import SchemaChangeError
from gristmill.types import is_numeric_text

_INT_RANK = {pa.int8(): 1, pa.int16(): 2, pa.int32(): 3, pa.int64(): 4}
_INT_DIGITS = {pa.int8(): 3, pa.int16(): 5, pa.int32(): 10, pa.int64(): 19}
_FLOAT_RANK = {pa.float16(): 1, pa.float32(): 2, pa.float64(): 3}
_STRINGS = {pa.string(), pa.large_string(), pa.string_view()}
_BINARIES = {pa.binary(), pa.large_binary()}


def fits(narrow: pa.DataType, wide: pa.DataType) -> bool:
    """Whether every value of type `narrow` is stored without loss by type `wide`."""
    if narrow == wide or pa.types.is_null(narrow):
        return True
    if is_numeric_text(wide) and wide.type_name == "numeric":
        # An unconstrained NUMERIC holds every integer and decimal exactly.
        return bool(narrow in _INT_RANK or pa.types.is_decimal(narrow))
    if isinstance(narrow, pa.BaseExtensionType) or isinstance(wide, pa.BaseExtensionType):
        return False
    if narrow in _INT_RANK and wide in _INT_RANK:
        return _INT_RANK[narrow] <= _INT_RANK[wide]
    if narrow in _FLOAT_RANK and wide in _FLOAT_RANK:
        return _FLOAT_RANK[narrow] <= _FLOAT_RANK[wide]
    if narrow in _INT_RANK and pa.types.is_decimal(wide):
        return bool(wide.precision - wide.scale >= _INT_DIGITS[narrow])
    if pa.types.is_decimal(narrow) and pa.types.is_decimal(wide):
        return bool(
            wide.scale >= narrow.scale
            and wide.precision - wide.scale >= narrow.precision - narrow.scale
        )
    if narrow in _STRINGS and wide in _STRINGS:
        return True
    if narrow in _BINARIES and wide in _BINARIES:
        return True
    if pa.types.is_timestamp(narrow) and pa.types.is_timestamp(wide):
        return bool((narrow.tz is None) == (wide.tz is None))
    if pa.types.is_date(narrow) and pa.types.is_date(wide):
        return True
    if pa.types.is_list(narrow) and pa.types.is_list(wide):
        return fits(narrow.value_type, wide.value_type)
    return False


@dataclass
class SchemaPlan:
    """The DDL-level changes that bring a warehouse table in line with its source."""

    table_schema: pa.Schema
    """The warehouse table's columns after the change."""
    added: list[pa.Field] = field(default_factory=list)
    widened: list[pa.Field] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.widened)

    def describe(self) -> str:
        parts = [f"added {f.name} {f.type}" for f in self.added]
        parts += [f"widened {f.name} to {f.type}" for f in self.widened]
        return "; ".join(parts) or "unchanged"


def plan_evolution(table: str, current: pa.Schema, incoming: pa.Schema) -> SchemaPlan:
    """Compare the warehouse table's schema with the incoming one."""
    fields = {f.name: f for f in current}
    added: list[pa.Field] = []
    widened: list[pa.Field] = []
    for new in incoming:
        old = fields.get(new.name)
        if old is None:
            added.append(new)
            fields[new.name] = new
        elif fits(new.type, old.type):
            continue
        elif fits(old.type, new.type):
            widened.append(new)
            fields[new.name] = new
        else:
            raise SchemaChangeError(
                f"Table '{table}', column '{new.name}' changed type from {old.type} to "
                f"{new.type}, which the warehouse column cannot hold. Nothing was loaded for "
                f"this table. Cast the column at the source, exclude it, or re-sync the table "
                f"in full (gristmill ingest --full-refresh)."
            )
    return SchemaPlan(pa.schema(list(fields.values())), added, widened)


def schema_to_text(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def schema_from_text(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def describe_columns(schema: pa.Schema) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in schema]

"""Schema evolution: how a warehouse table follows its source table's columns.

A new source column is added; a column whose type widened (int32 -> int64,
numeric(10,2) -> numeric(12,2), float32 -> float64) is widened; a column that
narrowed keeps its wider warehouse type; any other change stops that table with
a `SchemaChangeError` before anything is written. A column no longer read from the
source (dropped there, renamed, or excluded) stays in the warehouse, with what it held,
and receives NULL in the rows synced from then on; the table's schema marks it, so that
the change is reported once, and a column that comes back is filled again.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

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


DROPPED = b"gristmill.dropped"
"""Field metadata marking a warehouse column that the source no longer gives."""


def is_dropped(f: pa.Field) -> bool:
    return bool(f.metadata and DROPPED in f.metadata)


def _marked(f: pa.Field) -> pa.Field:
    return f.with_metadata({**(f.metadata or {}), DROPPED: b"true"})


def _unmarked(f: pa.Field) -> pa.Field:
    rest = {k: v for k, v in (f.metadata or {}).items() if k != DROPPED}
    return f.with_metadata(rest) if rest else f.remove_metadata()


@dataclass
class SchemaPlan:
    """How a warehouse table's columns change to follow its source."""

    table_schema: pa.Schema
    """The warehouse table's columns after the change."""
    added: list[pa.Field] = field(default_factory=list)
    widened: list[pa.Field] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    """Columns the source no longer gives, since this sync."""
    restored: list[str] = field(default_factory=list)
    """Columns the source gives again, after they were dropped."""
    retyped: list[pa.Field] = field(default_factory=list)
    """A table reloaded in full: columns whose type changed."""

    @property
    def changed(self) -> bool:
        """Whether the warehouse table's columns change (DDL)."""
        return bool(self.added or self.widened)

    def describe(self) -> str:
        """What changed, or '' when nothing did."""
        parts = [f"added {f.name} {f.type}" for f in self.added]
        parts += [f"widened {f.name} to {f.type}" for f in self.widened]
        parts += [f"retyped {f.name} to {f.type}" for f in self.retyped]
        parts += [f"dropped {name}" for name in self.dropped]
        parts += [f"restored {name}" for name in self.restored]
        return "; ".join(parts)


def plan_evolution(table: str, current: pa.Schema, incoming: pa.Schema) -> SchemaPlan:
    """Compare the warehouse table's schema with the incoming one."""
    fields = {f.name: f for f in current}
    plan = SchemaPlan(current)
    for new in incoming:
        old = fields.get(new.name)
        if old is None:
            plan.added.append(new)
            fields[new.name] = new
            continue
        if is_dropped(old):
            plan.restored.append(new.name)
            old = fields[new.name] = _unmarked(old)
        if fits(new.type, old.type):
            continue
        if fits(old.type, new.type):
            plan.widened.append(new)
            fields[new.name] = new
        else:
            raise SchemaChangeError(
                f"Table '{table}', column '{new.name}' changed type from {old.type} to "
                f"{new.type}, which the warehouse column cannot hold. Nothing was loaded for "
                f"this table. Cast the column at the source, exclude it, or re-sync the table "
                f"in full (gristmill ingest --full-refresh)."
            )
    given = set(incoming.names)
    for name, f in fields.items():
        if name not in given and not is_dropped(f):
            plan.dropped.append(name)
            fields[name] = _marked(f)
    plan.table_schema = pa.schema(list(fields.values()))
    return plan


def replacement_plan(previous: pa.Schema | None, incoming: pa.Schema) -> SchemaPlan:
    """A table reloaded in full takes the incoming columns; what changed since `previous`
    (the table's columns before, when known) is reported."""
    plan = SchemaPlan(incoming)
    if previous is None:
        return plan
    before = {f.name: f for f in previous if not is_dropped(f)}
    for new in incoming:
        old = before.get(new.name)
        if old is None:
            plan.added.append(new)
        elif old.type != new.type:
            plan.retyped.append(new)
    given = set(incoming.names)
    plan.dropped = [name for name in before if name not in given]
    return plan


def schema_to_text(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def schema_from_text(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def describe_columns(schema: pa.Schema) -> list[dict[str, Any]]:
    """Each column's name and type, and `dropped` for a column the source no longer gives."""
    return [
        {"name": f.name, "type": str(f.type), **({"dropped": True} if is_dropped(f) else {})}
        for f in schema
    ]

"""Pushed events checked against their view's source columns before anything is stored.

A pushed event is a row of the view's source table that has not reached the warehouse
yet, so it is held to that table's column types: the same SQL then computes the same
features from it online as the warehouse does in training sets. Every value is checked
and cast here, in Python, so that the view's SQL never meets a value of a type it did not
expect (DuckDB would guess a type from the values and bind the SQL to it, or fail with
its own words), a NaN never reaches the online store (a served prediction could not
answer with it), and a time beyond the serving clock never decides what is current.

The column types come from the online store, where materialize caches them, or else from
the warehouse (an empty query of the source).
"""

from __future__ import annotations

import base64
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation, localcontext
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError, EventProblem, InvalidEventError, did_you_mean
from gristmill.features.online import MICROS, to_micros

if TYPE_CHECKING:
    import pyarrow as pa

    from gristmill.features.definition import FeatureView
    from gristmill.project import Project

TYPES_META = "event_types"
"""The online store's metadata entry that caches a view's source column types."""

_FLOAT32_MAX = 3.4028234663852886e38


class RefusedValue(Exception):
    """A value a column cannot take: why, and how to say it."""

    def __init__(self, reason: EventProblem, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def encode_types(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode()


def decode_types(text: str) -> pa.Schema:
    import pyarrow as pa

    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def source_types(project: Project, view: FeatureView) -> pa.Schema:
    """The column types of a view's source, as the warehouse declares them. A NUMERIC
    declared without a precision (PostgreSQL's `amount / 7`) has no decimal type of its
    own (an empty result gives it the narrowest, DECIMAL(1,0)): its pushed values are
    taken as doubles, any finite number."""
    import pyarrow as pa

    from gristmill.profile import resolve_table

    warehouse = project.warehouse
    schema_name, table = resolve_table(project, view.source)
    relation = warehouse.qualified(schema_name, table)
    schema = warehouse.query_arrow(
        f"SELECT * FROM {relation} LIMIT 0", beyond_decimal="float"
    ).schema
    unbounded = {
        name
        for (name,) in warehouse.fetchall(
            "SELECT column_name FROM information_schema.columns"
            f" WHERE table_schema = {warehouse.literal(schema_name)}"
            f" AND table_name = {warehouse.literal(table)} AND numeric_precision IS NULL"
        )
    }
    for index, field in enumerate(schema):
        if pa.types.is_decimal(field.type) and field.name in unbounded:
            schema = schema.set(index, field.with_type(pa.float64()))
    return schema


def remember_types(project: Project, view: FeatureView) -> None:
    """Cache the source's column types beside the view's online data (materialize does),
    so that a server checks pushed events without asking the warehouse."""
    project.online.set_meta(view.name, TYPES_META, encode_types(source_types(project, view)))


def cached_types(project: Project, view: FeatureView) -> pa.Schema:
    """The source's column types: cached by the last materialize of this definition, or
    else read from the warehouse (and cached)."""
    store = project.online
    cached = store.get_meta(view.name, TYPES_META)
    if cached is not None and store.get_meta(view.name, "version") == view.version:
        return decode_types(cached)
    schema = source_types(project, view)
    store.set_meta(view.name, TYPES_META, encode_types(schema))
    return schema


class EventChecker:
    """Turns a view's pushed events into an Arrow table of its source's column types, or
    refuses the whole push with an InvalidEventError naming the event and the field."""

    def __init__(self, view: FeatureView, schema: pa.Schema, clock_skew: timedelta) -> None:
        self.view = view
        self.schema = schema
        self.skew = clock_skew
        self._casts = {f.name: value_check(f.type) for f in schema}
        self._required = {*view.entity, view.timestamp}
        unknown = sorted(self._required - set(schema.names))
        if unknown:
            raise ConfigError(
                f"Feature view {view.name} ({view.where}): its source {view.source} has no"
                f" column {unknown[0]!r}, which the view names as its entity key or time."
                f"{did_you_mean(unknown[0], schema.names)}"
            )

    def table(self, events: Sequence[Any], now: datetime) -> pa.Table:
        """The events as a table; refused whole (nothing is stored) if any event holds a
        value its column cannot take, or a time later than `now` + the clock skew."""
        import pyarrow as pa

        columns: dict[str, list[Any]] = {name: [] for name in self.schema.names}
        for index, event in enumerate(events):
            if not isinstance(event, Mapping):
                raise self._refuse(index, None, "malformed", "an event must be an object")
            for name in event:
                if name not in columns:
                    hint = did_you_mean(str(name), columns)
                    raise self._refuse(
                        index,
                        str(name),
                        "unknown_field",
                        f"the source of view {self.view.name} has no such column.{hint}",
                    )
            for name, values in columns.items():
                value = event.get(name)
                if value is None:
                    if name in self._required:
                        raise self._refuse(
                            index,
                            name,
                            "missing",
                            "missing: every event needs its entity key and time",
                        )
                    values.append(None)
                    continue
                try:
                    values.append(self._casts[name](value))
                except RefusedValue as refused:
                    raise self._refuse(index, name, refused.reason, refused.detail) from None
        self._refuse_future(columns[self.view.timestamp], now)
        arrays = []
        for field in self.schema:
            try:
                arrays.append(arrow_column(columns[field.name], field.type))
            except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
                raise InvalidEventError(
                    f"View {self.view.name}, field {field.name}: a value does not fit the"
                    f" column's type {field.type} ({exc}). Nothing was stored.",
                    field.name,
                    view=self.view.name,
                    reason="wrong_type",
                ) from None
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _refuse_future(self, times: list[datetime], now: datetime) -> None:
        latest = now.astimezone(UTC).replace(tzinfo=None) + self.skew
        for index, moment in enumerate(times):
            if moment > latest:
                raise InvalidEventError(
                    f"View {self.view.name}, events[{index}].{self.view.timestamp}:"
                    f" {moment.isoformat()}Z is later than the serving clock allows (now"
                    f" {now.astimezone(UTC).replace(tzinfo=None).isoformat(timespec='seconds')}Z"
                    f" plus a clock skew of {_say(self.skew)}). Date events when they happened,"
                    " by a clock in sync with UTC ([online] clock_skew sets the tolerance);"
                    " nothing was stored.",
                    self.view.timestamp,
                    view=self.view.name,
                    reason="future_time",
                    index=index,
                )

    def _refuse(
        self, index: int, field: str | None, reason: EventProblem, detail: str
    ) -> InvalidEventError:
        where = f"events[{index}]" + (f".{field}" if field is not None else "")
        return InvalidEventError(
            f"View {self.view.name}, {where}: {detail.rstrip('.')}"
            f"{'' if detail.endswith('?') else '.'} Nothing was stored.",
            field,
            view=self.view.name,
            reason=reason,
            index=index,
        )


def refuse_not_finite(view: FeatureView, rows: pa.Table) -> None:
    """Refuse computed event rows (as `event_rows_sql` gives them, one per pushed event,
    in order) holding a NaN or an infinity: a feature's own SQL can make one from finite
    values (a square root of a negative number)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for position, feature in enumerate(view.features):
        column = rows.column(f"_gm_in{position}")
        if not pa.types.is_floating(column.type):
            continue
        finite = pc.is_finite(column)
        if pc.all(finite, skip_nulls=True).as_py() is False:
            index = pc.index(finite, False).as_py()
            raise InvalidEventError(
                f"View {view.name}, events[{index}]: the feature {feature.name} computes"
                f" {column[index].as_py()} from it; a feature's value must be a finite"
                " number. Nothing was stored.",
                feature.name,
                view=view.name,
                reason="not_finite",
                index=index,
            )


def _say(skew: timedelta) -> str:
    seconds = skew.total_seconds()
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def arrow_column(values: list[Any], dtype: pa.DataType) -> pa.Array:
    import pyarrow as pa

    if pa.types.is_timestamp(dtype) and dtype.tz is not None:
        # The values are naive UTC: read as such, then labelled with the column's zone.
        return pa.array(values, pa.timestamp(dtype.unit)).cast(dtype)
    return pa.array(values, dtype)


def value_check(dtype: pa.DataType) -> Callable[[Any], Any]:
    """The function that checks one value for a column of `dtype` and returns it in the
    form Arrow takes for that type."""
    import pyarrow as pa

    if pa.types.is_boolean(dtype):
        return _boolean
    if pa.types.is_integer(dtype):
        signed = pa.types.is_signed_integer(dtype)
        bits = dtype.bit_width
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        return lambda value: _integer(value, low, high, str(dtype))
    if pa.types.is_floating(dtype):
        biggest = _FLOAT32_MAX if dtype.bit_width <= 32 else sys.float_info.max
        return lambda value: _float(value, biggest)
    if pa.types.is_decimal(dtype):
        return lambda value: _decimal(value, dtype.precision, dtype.scale)
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return _string
    if pa.types.is_timestamp(dtype):
        return _timestamp
    if pa.types.is_date(dtype):
        return _date
    # Other types (lists, binary, intervals) are left to Arrow's conversion, whose
    # failure still names the column.
    return lambda value: value


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        dict: "an object",
        list: "a list",
    }.get(type(value), f"a {type(value).__name__}")


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise RefusedValue("wrong_type", f"expected true or false, got {_kind(value)}")
    return value


def _integer(value: Any, low: int, high: int, name: str) -> int:
    if type(value) is not int:
        if isinstance(value, float | Decimal) and not _finite(value):
            raise RefusedValue("not_finite", f"{value} is not a number this column can hold")
        raise RefusedValue(
            "wrong_type", f"expected an integer (the column is {name}), got {_shown(value)}"
        )
    if not low <= value <= high:
        raise RefusedValue("out_of_range", f"{_digits(value)} is outside {name}'s [{low}, {high}]")
    return value


def _float(value: Any, biggest: float) -> float:
    if type(value) is bool or not isinstance(value, int | float | Decimal):
        raise RefusedValue("wrong_type", f"expected a number, got {_shown(value)}")
    if not _finite(value):
        raise RefusedValue("not_finite", f"{value} is not a finite number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    # A finite value that becomes infinite as a double overflowed it.
    if math.isinf(number) or abs(number) > biggest:
        raise RefusedValue("out_of_range", f"{_digits(value)} is beyond the column's range")
    return number


def _decimal(value: Any, precision: int, scale: int) -> Decimal:
    if type(value) is bool or not isinstance(value, int | float | Decimal | str):
        raise RefusedValue("wrong_type", f"expected a number, got {_shown(value)}")
    if isinstance(value, float | Decimal) and not _finite(value):
        raise RefusedValue("not_finite", f"{value} is not a finite number")
    try:
        # A float's shortest repr is the number its sender wrote (0.1, not 0.1000000000000000055).
        number = Decimal(repr(value) if isinstance(value, float) else value)
    except (InvalidOperation, ValueError):
        if isinstance(value, str):
            raise RefusedValue("malformed", f"{value[:40]!r} is not a number") from None
        raise RefusedValue("out_of_range", f"{_digits(value)} has too many digits") from None
    if not number.is_finite():
        raise RefusedValue("not_finite", f"{value} is not a finite number")
    if number and number.adjusted() >= precision - scale:
        raise RefusedValue(
            "out_of_range",
            f"{_digits(number)} has more integer digits than DECIMAL({precision},{scale}) holds",
        )
    with localcontext() as context:
        context.prec = precision + 2
        if number != number.quantize(Decimal(1).scaleb(-scale)):
            raise RefusedValue(
                "inexact",
                f"{number} has more than {scale} decimal places; DECIMAL({precision},{scale})"
                " would round it",
            )
    return number


def _string(value: Any) -> str:
    if type(value) is not str:
        raise RefusedValue("wrong_type", f"expected a string, got {_shown(value)}")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise RefusedValue(
            "malformed", "the string is not valid Unicode (a lone surrogate)"
        ) from None
    return value


def _timestamp(value: Any) -> datetime:
    """A moment as a naive UTC datetime (a naive one is UTC already)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise RefusedValue(
                "malformed",
                f"{value[:40]!r} is not an ISO 8601 time, such as 2026-11-26T10:00:00Z",
            ) from None
    if not isinstance(value, datetime):
        raise RefusedValue("wrong_type", f"expected a time, got {_shown(value)}")
    moment: datetime = value
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise RefusedValue("out_of_range", f"{moment} is beyond the years 1 to 9999") from None
    return moment


def _date(value: Any) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise RefusedValue(
                "malformed", f"{value[:40]!r} is not an ISO 8601 date, such as 2026-11-26"
            ) from None
    if isinstance(value, datetime) or not isinstance(value, date):
        raise RefusedValue("wrong_type", f"expected a date, got {_shown(value)}")
    return value


def _finite(value: float | Decimal) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()
    return isinstance(value, int) or math.isfinite(value)


def _shown(value: Any) -> str:
    """A value as a message shows it: its kind, and a short excerpt."""
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, dict | list):
        return _kind(value)
    return f"{_kind(value)} ({_digits(value)})"


def _digits(value: Any) -> str:
    """A number short enough for a message, whatever its size."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        # str() of an integer of more than 4,300 digits raises: its size is told instead.
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def future_cut(now: datetime, clock_skew: timedelta) -> int:
    """The latest event time (epoch µs) the serving clock allows at `now`."""
    return to_micros(now) + int(clock_skew.total_seconds() * MICROS)


def parse_key(view: FeatureView, schema: pa.Schema, name: str, text: str) -> Any:
    """An entity key typed on a command line (`device_id=007`), as a value of the key
    column's declared type: text stays text ('007'), an integer column takes integers."""
    import pyarrow as pa

    dtype = schema.field(name).type
    try:
        if pa.types.is_integer(dtype):
            return int(text)
        if pa.types.is_floating(dtype):
            return float(text)
        if pa.types.is_decimal(dtype):
            return _decimal(text, dtype.precision, dtype.scale)
        if pa.types.is_boolean(dtype):
            return {"true": True, "false": False}[text.lower()]
        if pa.types.is_timestamp(dtype):
            return _timestamp(text)
        if pa.types.is_date(dtype):
            return _date(text)
    except (ValueError, KeyError, RefusedValue):
        raise ConfigError(
            f"Feature view {view.name}: the entity key {name} is of type {dtype};"
            f" {text!r} is not one. Give {name}=VALUE with a value of that type."
        ) from None
    return text

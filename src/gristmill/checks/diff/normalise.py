"""How the two sides of a diff see a column: its kind on each side, the rendering both
share (`Normalise`), and how a value is shown to the user (`display`).

Comparison runs on canonical renderings (the dialects spell them per engine): integers
and decimals as exact decimal text or integer codes, floats as IEEE 754 bit patterns
(shifted right by the tolerance), timestamps as microseconds since 1970 (a timestamp
without time zone read as UTC), dates as ISO text, bytes as hex, JSON as PostgreSQL's
jsonb prints it, arrays as PostgreSQL prints them. What the user sees is each side's own
value written as one would write it: ISO 8601 timestamps (UTC, with its offset, for a
timestamp with time zone), decimals at the column's scale, bytes as \\x hex, floats in
their shortest exact form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from gristmill.dialects.base import INFINITE_US
from gristmill.errors import ConfigError

Kind = Literal[
    "integer",
    "decimal",
    "float",
    "boolean",
    "text",
    "bytes",
    "date",
    "timestamp",
    "timestamptz",
    "uuid",
    "json",
    "array",
    "interval",
    "other",
]

DEFAULT_FLOAT_TOLERANCE = 0.0
"""Floats compare exactly unless the user asks otherwise (-0.0 equals 0.0, NaN equals NaN)."""
MAX_FLOAT_TOLERANCE = 0.01


@dataclass(frozen=True)
class ColumnType:
    """A column as one side's catalog describes it."""

    name: str
    data_type: str
    kind: Kind
    scale: int | None = None
    """decimal: digits after the point; None when unconstrained."""
    single: bool = False
    """float: a single-precision (32-bit) float."""
    element: Kind | None = None
    """array: the kind of its elements."""
    nullable: bool = True
    max_abs: int | None = None
    """integer and decimal: a bound on the absolute value (None: unknown). It tells when
    cheaper integer arithmetic is exact."""
    as_written: bool = True
    """json: the text is kept as written (PostgreSQL's jsonb keeps a normalised form)."""

    @property
    def own_scale(self) -> int:
        """Digits after the point of an integer or a constrained decimal."""
        return self.scale or 0


@dataclass(frozen=True)
class Normalise:
    """How both sides render one column, so that equal values hash the same."""

    kind: Kind
    scale: int | None = 0
    """decimal: the digits after the point both sides are compared at (the larger of the
    two); None: compared without trailing zeros (a side's scale is unconstrained)."""
    shift: int = 0
    """float: the low bits of the bit pattern the codes drop (from the tolerance)."""
    tolerance: float = DEFAULT_FLOAT_TOLERANCE
    canonical_json: bool = True
    """json: both sides render PostgreSQL's jsonb text (else: the text as stored)."""
    trim_decimals: bool = False
    """array: both sides hold decimals, compared without trailing zeros (1.50 = 1.5000),
    as their scales may differ."""

    @classmethod
    def common(
        cls,
        a: ColumnType,
        b: ColumnType,
        tolerance: float = DEFAULT_FLOAT_TOLERANCE,
        canonical_json: bool = True,
    ) -> Normalise:
        """The rendering the column types `a` and `b` are compared under."""
        kinds = {a.kind, b.kind}
        if kinds <= {"integer", "boolean"}:
            return cls("boolean" if kinds == {"boolean"} else "integer")
        if kinds <= {"integer", "decimal"}:
            scales = [0 if t.kind == "integer" else t.scale for t in (a, b)]
            known = [s for s in scales if s is not None]
            return cls("decimal", scale=max(known) if len(known) == 2 else None)
        if "float" in kinds and kinds <= {"integer", "decimal", "float"}:
            return cls("float", shift=float_shift(tolerance), tolerance=tolerance)
        if kinds <= {"timestamp", "timestamptz"}:
            return cls("timestamp")
        if kinds <= {"uuid", "text"} and "uuid" in kinds:
            return cls("uuid")
        if "text" in kinds and len(kinds) == 2:
            # A column loaded as text (a column_types override of values the warehouse
            # cannot hold) against its source: numbers without trailing zeros, arrays and
            # bytes as such.
            (typed,) = kinds - {"text"}
            if typed in ("integer", "decimal"):
                return cls("decimal", scale=None)
            if typed in ("array", "bytes"):
                return cls(typed)
        if "json" in kinds and kinds <= {"json", "array"}:  # an array loaded as JSON
            return cls("json", canonical_json=canonical_json)
        if kinds == {"array"}:
            return cls("array", trim_decimals=a.element == b.element == "decimal")
        if len(kinds) == 1:
            return cls(a.kind)
        return cls("other")

    @staticmethod
    def incomparable(a: ColumnType, b: ColumnType, canonical_json: bool) -> str | None:
        """Why columns of types `a` and `b` cannot be compared; None when they can."""
        as_written = a.as_written and b.as_written
        if {a.kind, b.kind} == {"json"} and not canonical_json and not as_written:
            return (
                "JSON against MySQL is compared as stored, and a jsonb column keeps no text"
                " as written (key order, spacing and numbers change): equal documents would"
                " be reported as changed"
            )
        return None

    @property
    def integer_key(self) -> bool:
        """Whether a key of this rendering is segmented arithmetically (as an integer)."""
        return self.kind in ("integer", "timestamp") or (self.kind == "decimal" and self.scale == 0)


def float_shift(tolerance: float) -> int:
    """The bits float codes drop so that two doubles with one code differ by at most
    `tolerance` of the larger: 2**(shift - 52) <= tolerance."""
    if not (0 <= tolerance <= MAX_FLOAT_TOLERANCE) or math.isnan(tolerance):
        raise ConfigError(
            f"float tolerance {tolerance}: give a relative tolerance between 0 (exact, the"
            f" default) and {MAX_FLOAT_TOLERANCE}, e.g. 1e-9."
        )
    if tolerance == 0:
        return 0
    return max(0, min(52, math.floor(52 + math.log2(tolerance))))


def floats_equal(a: float | None, b: float | None, tolerance: float) -> bool:
    """Whether two floats are the same under the relative `tolerance`: NaN equals NaN,
    an infinity only itself, -0.0 equals 0.0, else |a - b| <= tolerance * max(|a|, |b|)."""
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    if math.isinf(a) or math.isinf(b):
        return False
    return abs(a - b) <= tolerance * max(abs(a), abs(b))


# -- display: each value as the user would write it -------------------------------------
EPOCH = datetime(1970, 1, 1)


def display(own: ColumnType, norm: Normalise, value: Any, shown: Any = None) -> Any:
    """A compared value (its normalised text, or a float) as the user would write it, in
    the type of the side it comes from (`own`); None for NULL. Integers stay ints.
    `shown`: the side's own text of the value, for kinds whose normalised text is no way
    to write it (intervals)."""
    if value is None:
        return None
    if shown is not None:
        return str(shown)
    kind = norm.kind
    if kind == "float":
        return _float_text(float(value), own.single)
    text = str(value)
    if kind == "integer":
        if own.kind == "boolean":
            return "true" if text == "1" else "false"
        return int(text)
    if kind == "decimal":
        return _decimal_text(text, own)
    if kind == "boolean":
        return "true" if text == "1" else "false"
    if kind == "timestamp":
        return _timestamp_text(text, with_zone=own.kind == "timestamptz")
    if kind == "bytes":
        return "\\x" + text
    return text


def _float_text(value: float, single: bool) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if single:
        import numpy as np

        return str(np.float32(value))  # the shortest text that reads back as this float32
    return repr(value)


def _decimal_text(text: str, own: ColumnType) -> str | int:
    if own.kind == "integer":
        whole, _, fraction = text.partition(".")
        return int(whole) if not fraction.strip("0") else text
    if own.scale is None or not text.lstrip("-").replace(".", "", 1).isdigit():
        return text  # unconstrained, or NaN and infinities
    # Compared at the larger scale of the two sides (or trimmed): written at this side's own.
    whole, _, fraction = text.partition(".")
    if fraction[own.scale :].strip("0"):
        return text
    fraction = fraction[: own.scale].ljust(own.scale, "0")
    return f"{whole}.{fraction}" if own.scale else whole


def _timestamp_text(text: str, with_zone: bool) -> str:
    if text.lstrip("-") == "infinity":
        return text
    micros = int(text)
    if abs(micros) == INFINITE_US:  # a key: +-infinity clamped (see Dialect.epoch_us)
        return "infinity" if micros > 0 else "-infinity"
    try:
        moment = EPOCH + timedelta(microseconds=micros)
    except OverflowError:  # beyond year 9999: Python's datetime cannot say it
        return f"{micros} microseconds since 1970-01-01"
    if with_zone:
        return moment.replace(tzinfo=UTC).isoformat()
    return moment.isoformat()

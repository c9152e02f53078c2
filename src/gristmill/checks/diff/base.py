"""The DiffEndpoint interface: one table in one database, as the diff sees it.

An endpoint answers four kinds of queries, all computed inside its database:

- the column types (from information_schema), mapped to a small set of kinds;
- (row count, checksum) per segment of the key, for the rows of some key ranges;
- the key and a hash of every row of some key ranges;
- the normalised values of the rows with some keys.

Segment checksums are sums of integer row codes, not hashes of row text: a number,
date or timestamp column contributes its value as an integer (a decimal at the scale
both sides share, a timestamp in epoch microseconds), a text column a 32-bit hash of
its text, and each column is weighted by a function of the row's key and the column's
place, so a changed value, a value moved to another row or another column, a missing
or an extra row all change the sum. Building and hashing a text per row costs
PostgreSQL several microseconds, which is most of a full scan's time on 10 million rows;
the integer codes cost a few tens of nanoseconds. The text hash is the best scheme both
databases compute (`TEXT_HASHES`): PostgreSQL's own `hashtext` (DuckDB computes the same
function, see hashtext.py), else the first 32 bits of md5.

For the few rows it compares one by one, a row hash is the md5 of the normalised columns
joined with a separator (`Normalise` renders each column as text the same way on every
backend). Backends supply the dialect's spelling of each normalisation; the SQL around
it is built here, once.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from gristmill.errors import BackendError, ConfigError, NotFoundError, did_you_mean

if TYPE_CHECKING:
    from gristmill.config import SourceConfig
    from gristmill.project import Project

Key = int | str
"""A normalised key value: an integer (integer keys, timestamps as epoch µs) or text."""

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
    "other",
]

NULL_SENTINEL = "\x01N"
"""How a NULL is rendered in a row hash: distinct from the empty string."""
SEPARATOR = "\x1f"
"""Between two columns in a row hash (the ASCII unit separator)."""
UNCONSTRAINED_SCALE = 9
"""The scale an unconstrained NUMERIC is compared at (as gristmill's ingest stores it)."""
FLOAT_DIGITS = 15
REAL_DIGITS = 6
CODE_MODULUS = 4_294_967_291
"""The largest prime below 2**32: integer codes are taken modulo it."""
NULL_CODE = 4_294_967_296
"""The code of a NULL: no value's code (below 2**32) equals it."""
WEIGHT_MODULUS = 1_048_573
"""Row weights are below 2**21, so that a code times a weight fits a signed 64-bit integer."""

TextHash = Literal["hashtext", "md5"]


@dataclass(frozen=True)
class ColumnType:
    """A column as one side's information_schema describes it."""

    name: str
    data_type: str
    kind: Kind
    scale: int | None = None
    """decimal: digits after the point; None when unconstrained."""
    digits: int = FLOAT_DIGITS
    """float: the significant digits it holds."""
    nullable: bool = True
    max_abs: int | None = None
    """integer and decimal: a bound on the absolute value (None: unknown). It tells when
    cheaper integer arithmetic is exact."""


@dataclass(frozen=True)
class Normalise:
    """How both sides render one column as text, so that equal values hash the same."""

    kind: Kind
    scale: int = 0
    digits: int = FLOAT_DIGITS

    @classmethod
    def common(cls, a: ColumnType, b: ColumnType) -> Normalise:
        """The rendering two column types are compared under."""
        kinds = {a.kind, b.kind}
        if kinds == {"integer"}:
            return cls("integer")
        if kinds <= {"integer", "decimal"}:
            scales = [_scale(t) for t in (a, b)]
            return cls("decimal", scale=min(scales))
        if "float" in kinds and kinds <= {"integer", "decimal", "float"}:
            return cls("float", digits=min(t.digits for t in (a, b) if t.kind == "float"))
        if kinds <= {"timestamp", "timestamptz"}:
            return cls("timestamp")
        if kinds <= {"uuid", "text"} and "uuid" in kinds:
            return cls("uuid")
        if len(kinds) == 1:
            return cls(a.kind)
        return cls("other")

    @property
    def integer_key(self) -> bool:
        """Whether a key of this rendering is segmented arithmetically (as an integer)."""
        return self.kind in ("integer", "timestamp") or (self.kind == "decimal" and not self.scale)


def _scale(t: ColumnType) -> int:
    if t.kind == "integer":
        return 0
    return UNCONSTRAINED_SCALE if t.scale is None else t.scale


@dataclass(frozen=True)
class Range:
    """The keys lo <= key < hi; None is unbounded."""

    lo: Key | None = None
    hi: Key | None = None

    def contains(self, key: Key) -> bool:
        return (self.lo is None or self.lo <= key) and (self.hi is None or key < self.hi)  # type: ignore[operator]


@dataclass
class Changed:
    """A key present on both sides whose values differ: column -> (value in A, value in B),
    as normalised text (None for NULL)."""

    key: Key
    columns: dict[str, tuple[str | None, str | None]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "columns": {c: {"a": va, "b": vb} for c, (va, vb) in self.columns.items()},
        }


@dataclass
class DiffResult:
    """What differs between tables A and B, and what finding it cost."""

    a: str
    b: str
    key: str
    columns: list[str]
    rows_a: int = 0
    rows_b: int = 0
    missing_in_a: list[Key] = field(default_factory=list)
    """Keys in B that A lacks."""
    missing_in_b: list[Key] = field(default_factory=list)
    """Keys in A that B lacks."""
    changed: list[Changed] = field(default_factory=list)
    only_in_a: list[str] = field(default_factory=list)
    """Columns of A that B lacks (not compared)."""
    only_in_b: list[str] = field(default_factory=list)
    rows_moved: int = 0
    """Result rows both databases sent to this process: checksums, row hashes, values."""
    queries: int = 0
    segments: int = 0
    """Segment checksums compared, over every level."""
    levels: int = 0
    seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def equal(self) -> bool:
        return not (self.missing_in_a or self.missing_in_b or self.changed)

    @property
    def differences(self) -> int:
        return len(self.missing_in_a) + len(self.missing_in_b) + len(self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "key": self.key,
            "columns": self.columns,
            "equal": self.equal,
            "rows_a": self.rows_a,
            "rows_b": self.rows_b,
            "missing_in_a": self.missing_in_a,
            "missing_in_b": self.missing_in_b,
            "changed": [c.to_dict() for c in self.changed],
            "only_in_a": self.only_in_a,
            "only_in_b": self.only_in_b,
            "stats": {
                "rows_moved": self.rows_moved,
                "queries": self.queries,
                "segments": self.segments,
                "levels": self.levels,
                "seconds": round(self.seconds, 3),
            },
        }


@dataclass(frozen=True)
class Column:
    """A compared column: its type on this side and the rendering both sides share."""

    type: ColumnType
    norm: Normalise


class DiffEndpoint(ABC):
    """One table in one database. Queries run on a connection of the endpoint's own, so
    that the two sides of a diff run in parallel threads."""

    NAME: ClassVar[str]
    """The database, for messages ('PostgreSQL')."""
    QUOTE: ClassVar[str] = '"'
    TEXT_TYPE: ClassVar[str] = "TEXT"
    TEXT_HASHES: ClassVar[tuple[TextHash, ...]] = ("md5",)
    """The 32-bit text hashes this database computes, best first (see the module's notes)."""
    HASHTEXT: ClassVar[str] = ""
    """PostgreSQL's hashtext of `{text}` as a non-negative integer."""
    MD5_32: ClassVar[str]
    """The first 32 bits of the md5 hex digest `{md5}` as a non-negative integer."""
    SUM: ClassVar[str] = "CAST(sum({code}) AS {text})"
    """The sum of a segment's row codes, as text (it may exceed 64 bits)."""

    def __init__(self, label: str, schema: str, table: str) -> None:
        self.label = label
        self.schema = schema
        self.table = table
        self.queries = 0
        self.rows_moved = 0
        self.text_hash: TextHash = self.TEXT_HASHES[-1]
        """The text hash both sides of this diff use; set by `diff`."""
        self._columns: dict[str, ColumnType] | None = None

    def rejected(self, sql: str, message: str) -> BackendError:
        """The error for a query this endpoint's database refused, `message` its own words."""
        return BackendError(
            f"{self.label}: {self.NAME} rejected: {sql.strip()[:300]}\n  {message}", message
        )

    # -- where the table lives -----------------------------------------------------
    @classmethod
    def for_source(
        cls, project: Project, label: str, source: str, config: SourceConfig, table: str
    ) -> DiffEndpoint:
        """The endpoint of `table` in the database of a configured source."""
        raise ConfigError(
            f"'{label}': diff reads tables of postgres and mysql sources; source '{source}'"
            f" is of type {config.type}. Diff its warehouse table instead."
        )

    @classmethod
    def for_warehouse(cls, project: Project, label: str, schema: str, table: str) -> DiffEndpoint:
        """The endpoint of a table of the project's warehouse."""
        raise ConfigError(f"diff does not support the {cls.NAME} warehouse.")

    # -- what each backend provides ------------------------------------------------
    @abstractmethod
    def _fetch(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one query on the endpoint's own connection."""

    @abstractmethod
    def _describe(self) -> list[ColumnType]:
        """The table's columns in order; empty when the table does not exist."""

    @abstractmethod
    def _tables(self) -> list[str]:
        """'schema.table' of every table, for 'Did you mean'."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def decimal_text(self, column: str, own: ColumnType, scale: int) -> str: ...

    @abstractmethod
    def float_text(self, column: str, digits: int) -> str:
        """Scientific notation with `digits` significant digits, NaN and infinities by name."""

    @abstractmethod
    def epoch_us(self, column: str, own: ColumnType) -> str:
        """Microseconds since 1970-01-01 UTC, a naive timestamp read as UTC (an integer)."""

    @abstractmethod
    def bytes_text(self, column: str) -> str: ...

    @abstractmethod
    def to_bigint(self, expr: str) -> str: ...

    @abstractmethod
    def int_div(self, left: str, right: str) -> str:
        """Integer division of non-negative integers."""

    def days_since_epoch(self, column: str) -> str:
        """Days from 1970-01-01 to the date `column` (an integer)."""
        return f"({column} - DATE '1970-01-01')"

    def decimal_code(self, column: str, scale: int, fits_bigint: bool) -> str:
        """The value of `column` rounded to `scale` digits, times 10**scale, modulo
        CODE_MODULUS (a signed 64-bit integer); `fits_bigint`: the product always fits a
        signed 64-bit integer, so a backend may take a cheaper path."""
        return f"{self.to_bigint(f'(round({column}, {scale}) * {10**scale}) % {CODE_MODULUS}')}"

    def epoch_us_code(self, column: str, own: ColumnType) -> str:
        """`epoch_us` as a segment checksum reads it (where a cheaper form exists)."""
        return self.epoch_us(column, own)

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS {self.TEXT_TYPE})"

    def ordered_text(self, expr: str) -> str:
        """A text expression that compares byte-wise (code point order), as Python does."""
        return expr

    def boolean_text(self, column: str) -> str:
        return self.text(f"CAST({column} AS INTEGER)")

    def estimate_rows(self) -> int:
        """The number of rows, or a close estimate when counting would cost a scan."""
        return int(self.fetch(f"SELECT count(*) FROM {self.ref}")[0][0])

    # -- shared behaviour ------------------------------------------------------------
    def quote(self, identifier: str) -> str:
        q = self.QUOTE
        return q + identifier.replace(q, q + q) + q

    @property
    def ref(self) -> str:
        return f"{self.quote(self.schema)}.{self.quote(self.table)}"

    @property
    def where(self) -> str:
        return f"{self.schema}.{self.table}"

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        rows = self._fetch(sql)
        self.queries += 1
        self.rows_moved += len(rows)
        return rows

    def columns(self) -> dict[str, ColumnType]:
        """The table's columns by lower-cased name; NotFoundError if the table is missing."""
        if self._columns is None:
            described = self._describe()
            if not described:
                raise NotFoundError(
                    f"{self.label}: {self.NAME} has no table '{self.where}'."
                    f"{did_you_mean(self.where, self._tables())}"
                )
            self._columns = {c.name.lower(): c for c in described}
        return self._columns

    def column(self, name: str) -> ColumnType:
        columns = self.columns()
        found = columns.get(name.lower())
        if found is None:
            names = [c.name for c in columns.values()]
            raise NotFoundError(
                f"{self.label}: table '{self.where}' has no column '{name}'."
                f"{did_you_mean(name, names)} Its columns: {', '.join(names)}."
            )
        return found

    def literal(self, value: Key) -> str:
        if isinstance(value, int):
            return str(value)
        return "'" + value.replace("'", "''") + "'"

    def normalised(self, column: Column) -> str:
        """The text rendering of a column under its shared rendering; NULL stays NULL."""
        own, norm = column.type, column.norm
        name = self.quote(own.name)
        if norm.kind == "decimal":
            return self.decimal_text(name, own, norm.scale)
        if norm.kind == "float":
            return self.float_text(name, norm.digits)
        if norm.kind == "timestamp":
            return self.text(self.epoch_us(name, own))
        if norm.kind == "boolean":
            return self.boolean_text(name)
        if norm.kind == "bytes":
            return self.bytes_text(name)
        if norm.kind == "uuid":
            return f"lower({self.text(name)})"
        if norm.kind == "text":
            return name if own.data_type.lower() in ("text", "varchar") else self.text(name)
        return self.text(name)

    def key_sql(self, key: Column) -> str:
        """The key as an integer (integer keys) or byte-ordered text (any other key)."""
        own, norm = key.type, key.norm
        name = self.quote(own.name)
        if not norm.integer_key:
            return self.ordered_text(self.normalised(key))
        if norm.kind == "timestamp":
            return self.epoch_us(name, own)
        if own.kind == "integer":
            return name
        return self.to_bigint(name)

    def row_sql(self, key: Column, columns: Sequence[Column]) -> str:
        """The text a row hash is the md5 of: key and columns, normalised and separated
        (one concat call: far cheaper than a chain of || on PostgreSQL)."""
        parts = [self.text(self.key_sql(key)) if key.norm.integer_key else self.normalised(key)]
        null = self.literal(NULL_SENTINEL)
        parts += [f"coalesce({self.normalised(c)}, {null})" for c in columns]
        return "concat(" + f", {self.literal(SEPARATOR)}, ".join(parts) + ")"

    def ranges_sql(self, key: str, ranges: Sequence[Range]) -> str:
        """A condition selecting the keys in any of `ranges`."""
        terms = []
        for r in ranges:
            bounds = []
            if r.lo is not None:
                bounds.append(f"{key} >= {self.literal(r.lo)}")
            if r.hi is not None:
                bounds.append(f"{key} < {self.literal(r.hi)}")
            if not bounds:
                return f"{key} IS NOT NULL"
            terms.append("(" + " AND ".join(bounds) + ")")
        return " OR ".join(terms) if terms else "FALSE"

    def key_bounds(self, key: Column) -> tuple[Key | None, Key | None]:
        expr = self.key_sql(key)
        low, high = self.fetch(f"SELECT min({expr}), max({expr}) FROM {self.ref}")[0]
        return _key(low), _key(high)

    def text_code(self, text: str) -> str:
        """The 32-bit hash of a text expression, under the diff's text hash."""
        if self.text_hash == "hashtext":
            return self.HASHTEXT.format(text=text)
        return self.MD5_32.format(md5=f"md5({text})")

    def code(self, column: Column) -> str:
        """The integer code of a column's value (see the module's notes); never NULL."""
        own, norm = column.type, column.norm
        name = self.quote(own.name)
        if norm.kind == "integer":
            # Below the modulus the remainder is the value itself: spare the operation.
            small = own.max_abs is not None and own.max_abs <= CODE_MODULUS
            value = name if small else f"({name} % {CODE_MODULUS})"
        elif norm.kind == "decimal":
            fits = own.max_abs is not None and own.max_abs * 10**norm.scale < 2**63
            value = self.decimal_code(name, norm.scale, fits)
        elif norm.kind == "timestamp":
            value = f"({self.epoch_us_code(name, own)} % {CODE_MODULUS})"
        elif norm.kind == "date":
            value = self.days_since_epoch(name)
        elif norm.kind == "boolean":
            value = self.boolean_code(name)
        else:
            value = self.text_code(self.normalised(column))
        return f"coalesce({value}, {NULL_CODE})" if own.nullable else value

    def boolean_code(self, column: str) -> str:
        return f"(CASE WHEN {column} THEN 1 ELSE 0 END)"

    def row_code(self, key: Column, columns: Sequence[Column]) -> str:
        """key code + weight(key) * (sum of (place + 1) * column code, modulo CODE_MODULUS),
        a signed 64-bit integer."""
        key_code = self.code(key)
        # Consecutive keys get distinct, positive weights (negative keys too), so values
        # swapped between two rows of a segment (of fewer than WEIGHT_MODULUS rows) change
        # its sum.
        weight = f"({key_code} % {WEIGHT_MODULUS} + {WEIGHT_MODULUS + 1})"
        if not columns:
            return key_code
        placed = " + ".join(f"{place + 1} * {self.code(c)}" for place, c in enumerate(columns))
        return f"({key_code} + {weight} * (({placed}) % {CODE_MODULUS}))"

    def checksums(
        self, key: Column, columns: Sequence[Column], index: str, ranges: Sequence[Range]
    ) -> dict[int, tuple[int, int]]:
        """segment -> (rows, checksum) of the rows in `ranges`, segment = `index` (SQL over
        the key expression `{key}`)."""
        expr = self.key_sql(key)
        where = self.ranges_sql(expr, ranges)
        total = self.SUM.format(code=self.row_code(key, columns), text=self.TEXT_TYPE)
        rows = self.fetch(
            f"SELECT {index.format(key=expr)} AS seg, count(*), {total}"
            f" FROM {self.checksum_source(where)} WHERE {where} GROUP BY 1"
        )
        return {int(seg): (int(n), int(s)) for seg, n, s in rows}

    def checksum_source(self, where: str) -> str:
        """The FROM clause of a checksum query whose rows satisfy `where`."""
        return self.ref

    def boundaries(self, key: Column, ranges: Sequence[Range], step: int) -> list[Key]:
        """Every `step`-th key of the rows in `ranges`, in order."""
        expr = self.key_sql(key)
        rows = self.fetch(
            f"SELECT k FROM (SELECT {expr} AS k, row_number() OVER (ORDER BY {expr}) AS rn"
            f" FROM {self.ref} WHERE {self.ranges_sql(expr, ranges)}) s"
            f" WHERE rn % {int(step)} = 0 ORDER BY k"
        )
        return [_key(r[0]) for r in rows if r[0] is not None]  # type: ignore[misc]

    def row_hashes(
        self, key: Column, columns: Sequence[Column], ranges: Sequence[Range]
    ) -> list[tuple[Key, str]]:
        expr = self.key_sql(key)
        rows = self.fetch(
            f"SELECT {expr}, md5({self.row_sql(key, columns)}) FROM {self.ref}"
            f" WHERE {self.ranges_sql(expr, ranges)}"
        )
        return [(_key(k), h) for k, h in rows]  # type: ignore[misc]

    def values(
        self, key: Column, columns: Sequence[Column], keys: Sequence[Key]
    ) -> dict[Key, tuple[str | None, ...]]:
        expr = self.key_sql(key)
        select = ", ".join(self.normalised(c) for c in columns) or "NULL"
        rows = self.fetch(
            f"SELECT {expr}, {select} FROM {self.ref}"
            f" WHERE {expr} IN ({', '.join(self.literal(k) for k in keys)})"
        )
        return {_key(r[0]): tuple(r[1:]) for r in rows}  # type: ignore[misc]


def _key(value: Any) -> Key | None:
    if value is None or isinstance(value, int | str):
        return value
    return int(value)

"""The DiffEndpoint interface: one table in one database, as the diff sees it.

An endpoint answers four kinds of queries, all computed inside its database:

- the column types (from information_schema), mapped to a small set of kinds;
- (row count, checksum) per segment of the key, for the rows of some key ranges;
- the key and a hash of every row of some key ranges;
- the compared values of the rows with some keys.

Segment checksums are sums of integer row codes, not hashes of row text: a number,
date or timestamp column contributes its value as an integer (a decimal at the scale
both sides share, a timestamp in epoch microseconds, a float its bit pattern), a text
column a 32-bit hash of its text, and each column is weighted by a function of the row's
key and the column's place, so a changed value, a value moved to another row or another
column, a missing or an extra row all change the sum. Building and hashing a text per
row costs PostgreSQL several microseconds, which is most of a full scan's time on 10
million rows; the integer codes cost a few tens of nanoseconds. The text hash is the
best scheme both databases compute (`Dialect.TEXT_HASHES`): PostgreSQL's own `hashtext`
(DuckDB computes the same function, see hashtext.py), else the first 32 bits of md5.

For the few rows it compares one by one, a row hash is the md5 of the normalised columns
joined with a separator. Each engine's dialect (gristmill.dialects) spells every
normalisation; the SQL around them is built here, once.

A key is one column or several (a composite key). A single integer key (or timestamp,
as epoch microseconds) is segmented arithmetically; any other key by its *position*, the
byte-ordered text of its normalised parts joined with a separator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from gristmill.checks.diff.normalise import ColumnType, Kind, Normalise
from gristmill.dialects import Dialect, dialect
from gristmill.dialects.base import CODE_MODULUS
from gristmill.errors import BackendError, ConfigError, NotFoundError, did_you_mean

if TYPE_CHECKING:
    from gristmill.config import SourceConfig
    from gristmill.project import Project

Key = int | str
"""A key's position: an integer (a single integer key, timestamps as epoch µs) or text."""
Identity = tuple[Key, ...]
"""A key's normalised parts, one per key column."""

NULL_SENTINEL = "\x01N"
"""How a NULL is rendered in a row hash: distinct from the empty string."""
SEPARATOR = "\x1f"
"""Between two columns in a row hash (the ASCII unit separator)."""
NULL_CODE = 4_294_967_296
"""The code of a NULL: no value's code (below 2**32 in absolute value) equals it."""
WEIGHT_MODULUS = 1_048_573
"""Row weights are below 2**21, so that a code times a weight fits a signed 64-bit integer."""


@dataclass(frozen=True)
class Range:
    """The keys lo <= key < hi; None is unbounded."""

    lo: Key | None = None
    hi: Key | None = None

    def contains(self, key: Key) -> bool:
        return (self.lo is None or self.lo <= key) and (self.hi is None or key < self.hi)  # type: ignore[operator]


@dataclass(frozen=True)
class Column:
    """A compared column: its type on this side and the rendering both sides share."""

    type: ColumnType
    norm: Normalise


KeyColumns = Sequence[Column]
"""The key's columns on one side (one, or several for a composite key)."""


def positional(key: KeyColumns) -> bool:
    """Whether a key is segmented by the byte order of its text (not arithmetically)."""
    return len(key) > 1 or not key[0].norm.integer_key


class DiffEndpoint(ABC):
    """One table in one database. Queries run on a connection of the endpoint's own, so
    that the two sides of a diff run in parallel threads."""

    NAME: ClassVar[str]
    """The database, for messages ('PostgreSQL')."""
    DIALECT: ClassVar[str]
    """The engine's dialect (gristmill.dialects), which spells every normalisation."""

    def __init__(self, label: str, schema: str, table: str) -> None:
        self.label = label
        self.schema = schema
        self.table = table
        self.dialect: Dialect = dialect(self.DIALECT)
        self.queries = 0
        self.rows_moved = 0
        self.text_hash = self.dialect.TEXT_HASHES[-1]
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

    def column_sql(self, own: ColumnType) -> str:
        """The column as an expression of its kind (where the raw column is not one)."""
        return self.dialect.quote(own.name)

    def estimate_rows(self) -> int:
        """The number of rows, or a close estimate when counting would cost a scan."""
        return int(self.fetch(f"SELECT count(*) FROM {self.ref}")[0][0])

    def text_code(self, text: str) -> str:
        """The 32-bit hash of a text expression, under the diff's text hash."""
        if self.text_hash == "hashtext":
            return self.dialect.HASHTEXT_SQL.format(text=text)
        return self.dialect.MD5_32_SQL.format(md5=self.dialect.md5_hex(text))

    def checksum_source(self, where: str) -> str:
        """The FROM clause of a checksum query whose rows satisfy `where`."""
        return self.ref

    # -- shared behaviour ------------------------------------------------------------
    @property
    def ref(self) -> str:
        return self.dialect.qualified(self.schema, self.table)

    @property
    def where(self) -> str:
        return f"{self.schema}.{self.table}"

    def literal(self, value: Key) -> str:
        return self.dialect.literal(value)

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

    def normalised(self, column: Column) -> str:
        """The canonical text of a column under its shared rendering; NULL stays NULL."""
        own, norm, d = column.type, column.norm, self.dialect
        name = self.column_sql(own)
        kind = norm.kind
        if own.kind == "text" and kind in ("decimal", "array", "bytes"):
            return self.text_as(kind, name)
        if kind == "integer" and own.kind == "boolean":
            return d.boolean_text(name)
        if kind == "decimal":
            return d.decimal_text(name, own.own_scale, norm.scale)
        if kind == "float":
            return d.hash_text(d.float_code(name, norm.shift))
        if kind == "timestamp":
            return d.timestamp_text(name)
        if kind == "date":
            return d.date_text(name)
        if kind == "boolean":
            return d.boolean_text(name)
        if kind == "bytes":
            return d.bytes_text(name)
        if kind == "uuid":
            return d.uuid_text(name)
        if kind == "json":
            if own.kind == "array":
                name = d.array_json(name)
            return d.json_text(name) if norm.canonical_json else d.hash_text(name)
        if kind == "array":
            return d.array_text(name, own.data_type, norm.trim_decimals)
        if kind == "interval":
            return d.interval_text(name)
        if kind == "text" and own.data_type.lower() in ("text", "varchar"):
            return name
        return d.hash_text(name)

    def text_as(self, kind: Kind, name: str) -> str:
        """A text column compared with a column of `kind` (a column loaded as text by a
        column_types override, against its source): a decimal's digits without trailing
        zeros, bytes as the UTF-8 bytes of the text, an array as its text (PostgreSQL's,
        as the source printed it)."""
        d = self.dialect
        if kind == "decimal":
            return d.trim_decimal_text(d.hash_text(name))
        if kind == "bytes":
            return d.utf8_hex(name)
        return d.hash_text(name)

    def code(self, column: Column) -> str:
        """The integer code of a column's value (see the module's notes); never NULL."""
        own, norm, d = column.type, column.norm, self.dialect
        name = self.column_sql(own)
        if norm.kind == "integer" and own.kind == "boolean":
            value = d.boolean_code(name)
        elif norm.kind == "integer":
            # Below the modulus the remainder is the value itself: spare the operation.
            small = own.max_abs is not None and own.max_abs <= CODE_MODULUS
            value = name if small else f"({name} % {CODE_MODULUS})"
        elif norm.kind == "decimal" and norm.scale is not None:
            fits = own.max_abs is not None and own.max_abs * 10**norm.scale < 2**63
            value = d.decimal_code(name, own.own_scale, norm.scale, fits)
        elif norm.kind == "float":
            value = f"({d.float_code(name, norm.shift)} % {CODE_MODULUS})"
        elif norm.kind == "timestamp":
            value = f"({d.epoch_us_code(name)} % {CODE_MODULUS})"
        elif norm.kind == "date":
            value = d.date_code(name)
        elif norm.kind == "boolean":
            value = d.boolean_code(name)
        else:
            value = self.text_code(self.normalised(column))
        return f"coalesce({value}, {NULL_CODE})" if own.nullable else value

    def value_sql(self, column: Column) -> str:
        """What `values` fetches to compare a column: floats as doubles (compared within
        the tolerance in Python), anything else its canonical text."""
        if column.norm.kind == "float":
            return self.dialect.float_value(self.column_sql(column.type))
        return self.normalised(column)

    def shown_sql(self, column: Column) -> str | None:
        """The side's own text of a value, where its canonical text is no way to write it."""
        if column.norm.kind == "interval" or (
            column.norm.kind == "bytes" and column.type.kind == "text"
        ):
            return self.dialect.hash_text(self.column_sql(column.type))
        return None

    # -- keys ----------------------------------------------------------------------------
    def key_part_sql(self, part: Column) -> str:
        """One key column as an integer (integer renderings) or its canonical text."""
        own, norm, d = part.type, part.norm, self.dialect
        if not norm.integer_key:
            return self.normalised(part)
        name = self.column_sql(own)
        if norm.kind == "timestamp":
            return d.epoch_us(name)
        if own.kind == "integer":
            return name
        return d.to_bigint(name)

    def key_sql(self, key: KeyColumns) -> str:
        """The key's position: an integer (one integer key) or byte-ordered text."""
        if not positional(key):
            return self.key_part_sql(key[0])
        if len(key) == 1:
            return self.dialect.ordered_text(self.normalised(key[0]))
        null, separator = self.literal(NULL_SENTINEL), self.literal(SEPARATOR)
        parts = [f"coalesce({self.normalised(p)}, {null})" for p in key]
        return self.dialect.ordered_text(self.dialect.concat_text(_joined(parts, separator)))

    def identity_sql(self, key: KeyColumns) -> list[str]:
        """The key's parts as the rows' identities carry them (none for a single key: its
        position is its identity)."""
        return [self.key_part_sql(p) for p in key] if len(key) > 1 else []

    def key_bounds(self, key: KeyColumns) -> tuple[Key | None, Key | None]:
        expr = self.key_sql(key)
        low, high = self.fetch(f"SELECT min({expr}), max({expr}) FROM {self.ref}")[0]
        return _key(low), _key(high)

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

    # -- the queries -----------------------------------------------------------------------
    def row_sql(self, key: KeyColumns, columns: Sequence[Column]) -> str:
        """The text a row hash is the md5 of: key and columns, normalised and separated."""
        d = self.dialect
        parts = [
            d.hash_text(self.key_part_sql(p)) if p.norm.integer_key else self.normalised(p)
            for p in key
        ]
        null = self.literal(NULL_SENTINEL)
        parts += [f"coalesce({self.normalised(c)}, {null})" for c in columns]
        return d.concat_text(_joined(parts, self.literal(SEPARATOR)))

    def row_code(self, key: KeyColumns, columns: Sequence[Column]) -> str:
        """key code + weight(key) * (sum of (place + 1) * column code, modulo CODE_MODULUS),
        a signed 64-bit integer."""
        if len(key) == 1:
            key_code = self.code(key[0])
        else:
            placed_key = " + ".join(f"{i + 1} * {self.code(p)}" for i, p in enumerate(key))
            key_code = f"(({placed_key}) % {CODE_MODULUS})"
        # Consecutive keys get distinct, positive weights (negative keys too), so values
        # swapped between two rows of a segment (of fewer than WEIGHT_MODULUS rows) change
        # its sum.
        weight = f"({key_code} % {WEIGHT_MODULUS} + {WEIGHT_MODULUS + 1})"
        if not columns:
            return key_code
        placed = " + ".join(f"{place + 1} * {self.code(c)}" for place, c in enumerate(columns))
        return f"({key_code} + {weight} * (({placed}) % {CODE_MODULUS}))"

    def checksums(
        self, key: KeyColumns, columns: Sequence[Column], index: str, ranges: Sequence[Range]
    ) -> dict[int, tuple[int, int]]:
        """segment -> (rows, checksum) of the rows in `ranges`, segment = `index` (SQL over
        the key expression `{key}`)."""
        expr = self.key_sql(key)
        where = self.ranges_sql(expr, ranges)
        total = self.dialect.SEGMENT_SUM_SQL.format(
            code=self.row_code(key, columns), text=self.dialect.TEXT_TYPE
        )
        rows = self.fetch(
            f"SELECT {index.format(key=expr)} AS seg, count(*), {total}"
            f" FROM {self.checksum_source(where)} WHERE {where} GROUP BY 1"
        )
        return {int(seg): (int(n), int(s)) for seg, n, s in rows}

    def boundaries(self, key: KeyColumns, ranges: Sequence[Range], step: int) -> list[Key]:
        """Every `step`-th key of the rows in `ranges`, in order."""
        expr = self.key_sql(key)
        rows = self.fetch(
            f"SELECT k FROM (SELECT {expr} AS k, row_number() OVER (ORDER BY {expr}) AS rn"
            f" FROM {self.ref} WHERE {self.ranges_sql(expr, ranges)}) s"
            f" WHERE rn % {int(step)} = 0 ORDER BY k"
        )
        return [_key(r[0]) for r in rows if r[0] is not None]  # type: ignore[misc]

    def row_hashes(
        self, key: KeyColumns, columns: Sequence[Column], ranges: Sequence[Range]
    ) -> list[tuple[Key, Identity, str]]:
        """(position, identity, row hash) of the rows in `ranges`."""
        expr = self.key_sql(key)
        parts = self.identity_sql(key)
        select = ", ".join([expr, *parts, self.dialect.md5_hex(self.row_sql(key, columns))])
        rows = self.fetch(f"SELECT {select} FROM {self.ref} WHERE {self.ranges_sql(expr, ranges)}")
        out: list[tuple[Key, Identity, str]] = []
        for row in rows:
            position = _key(row[0])
            assert position is not None
            identity = tuple(_key(v) for v in row[1:-1]) if parts else (position,)
            out.append((position, identity, row[-1]))  # type: ignore[arg-type]
        return out

    def values(
        self, key: KeyColumns, columns: Sequence[Column], keys: Sequence[Key]
    ) -> dict[Key, list[tuple[Any, Any]]]:
        """position -> (compared value, own text or None) of each column, for the rows
        at the positions `keys`."""
        expr = self.key_sql(key)
        select = [expr]
        for c in columns:
            select += [self.value_sql(c), self.shown_sql(c) or "NULL"]
        rows = self.fetch(
            f"SELECT {', '.join(select)} FROM {self.ref}"
            f" WHERE {expr} IN ({', '.join(self.literal(k) for k in keys)})"
        )
        return {
            _key(r[0]): [(r[i], r[i + 1]) for i in range(1, len(r), 2)]  # type: ignore[misc]
            for r in rows
        }


def _joined(parts: list[str], separator: str) -> list[str]:
    out: list[str] = []
    for i, part in enumerate(parts):
        if i:
            out.append(separator)
        out.append(part)
    return out


def _key(value: Any) -> Key | None:
    if value is None or isinstance(value, int | str):
        return value
    if isinstance(value, bytes | bytearray):  # MySQL's byte-ordered text (utf8mb4)
        return bytes(value).decode()
    return int(value)

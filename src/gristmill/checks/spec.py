"""A validated check (`CheckSpec`) and the SQL that finds its failing rows.

Checks are declared in TOML or Python and validated by `gristmill.checks.parse`.
Column and table names are used exactly as written (they are double-quoted in the
SQL), so they match the names the warehouse stores.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from typing import Any

import sqlglot
from sqlglot import exp

from gristmill.dialects import Dialect
from gristmill.durations import parse_duration

KINDS = (
    "not_null",
    "unique",
    "accepted_values",
    "relationships",
    "row_count",
    "freshness",
    "expression",
    "sql",
)
SEVERITIES = ("error", "warn")
THIS = "{this}"
"""Stands for the relation under check in a `sql` check."""

THIS_PLACEHOLDER = "__gm_this__"
_DIALECTS: tuple[str | None, ...] = (None, "duckdb", "postgres")

Value = str | int | float | bool
"""One entry of `accepted_values.values`."""

# -- durations ------------------------------------------------------------------------

# -- table names ----------------------------------------------------------------------


_NAME_PART = re.compile(r'"((?:[^"]|"")+)"|([^\s."]+)')


def split_table_name(name: str) -> tuple[str, ...]:
    """The parts of `schema.table` (or `table`, `catalog.schema.table`); a part may be
    double-quoted to hold dots or spaces. Raises ValueError on anything else."""
    parts: list[str] = []
    position = 0
    while True:
        match = _NAME_PART.match(name, position)
        if not match:
            break
        parts.append(match.group(1).replace('""', '"') if match.group(1) else match.group(2))
        position = match.end()
        if position < len(name) and name[position] == ".":
            position += 1
            continue
        break
    if position != len(name) or not 1 <= len(parts) <= 3:
        raise ValueError(
            f"'{name}' is not a table name; write it as schema.table, such as raw.users"
        )
    return tuple(parts)


def parse_sql(text: str, what: str) -> exp.Expr:
    """`text` parsed by sqlglot in the first dialect that reads it as one statement."""
    problem = ""
    for dialect in _DIALECTS:
        try:
            statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
        except sqlglot.errors.SqlglotError as exc:
            problem = problem or str(exc).splitlines()[0]
            continue
        if len(statements) == 1:
            return statements[0]
        problem = f"it holds {len(statements)} statements, and a {what} must be exactly one"
    raise ValueError(f"not valid SQL ({problem})")


def _tables_read(tree: exp.Expr) -> list[str]:
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    found: list[str] = []
    for table in tree.find_all(exp.Table):
        if not table.name or table.name == THIS_PLACEHOLDER:
            continue
        if not table.db and table.name in ctes:
            continue
        dotted = ".".join(p for p in (table.catalog, table.db, table.name) if p)
        if dotted not in found:
            found.append(dotted)
    return found


def strip_semicolon(sql: str) -> str:
    return sql.strip().rstrip(";").rstrip()


def _one_line(text: str, limit: int = 60) -> str:
    collapsed = " ".join(text.split())
    return collapsed if len(collapsed) <= limit else collapsed[: limit - 1] + "…"


# -- the spec ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CheckSpec:
    """One validated check. Build it with `parse_checks`; the fields a kind does not use
    keep their defaults."""

    kind: str
    severity: str = "error"
    name: str = ""
    columns: tuple[str, ...] = ()
    """not_null, unique: the columns."""
    column: str | None = None
    """accepted_values, relationships, freshness: the column."""
    values: tuple[Value, ...] = ()
    """accepted_values: the accepted values."""
    to: str | None = None
    """relationships: the referenced table, as declared (such as raw.users)."""
    to_field: str | None = None
    """relationships: the referenced column (declared as `field`; defaults to `column`)."""
    min_rows: int | None = None
    max_rows: int | None = None
    max_age: str | None = None
    """freshness: the declared duration (see `max_age_delta`)."""
    expression: str | None = None
    sql: str | None = None
    where: str = dataclasses.field(default="", compare=False)
    """Where the check was declared, for messages; not part of its identity."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown check kind {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")
        if self.kind == "relationships" and self.to_field is None:
            object.__setattr__(self, "to_field", self.column)
        if not self.name:
            object.__setattr__(self, "name", self._default_name())

    def _default_name(self) -> str:
        kind = self.kind
        if kind in ("not_null", "unique"):
            return f"{kind}({', '.join(self.columns)})"
        if kind == "accepted_values":
            return f"accepted_values({self.column})"
        if kind == "relationships":
            return f"relationships({self.column} -> {self.to}.{self.to_field})"
        if kind == "row_count":
            pairs = (("min", self.min_rows), ("max", self.max_rows))
            return f"row_count({', '.join(f'{k}={v}' for k, v in pairs if v is not None)})"
        if kind == "freshness":
            return f"freshness({self.column}, {self.max_age})"
        if kind == "expression":
            return f"expression({_one_line(self.expression or '')})"
        return f"sql({_one_line(self.sql or '')})"

    @property
    def max_age_delta(self) -> timedelta:
        """freshness: the maximum age as a timedelta."""
        return parse_duration(self.max_age or "")

    def params(self) -> dict[str, Any]:
        """The kind's own settings, normalised, JSON-able."""
        kind = self.kind
        if kind in ("not_null", "unique"):
            return {"columns": list(self.columns)}
        if kind == "accepted_values":
            return {"column": self.column, "values": list(self.values)}
        if kind == "relationships":
            return {"column": self.column, "to": self.to, "field": self.to_field}
        if kind == "row_count":
            return {"min": self.min_rows, "max": self.max_rows}
        if kind == "freshness":
            return {"column": self.column, "max_age": self.max_age}
        if kind == "expression":
            return {"expression": self.expression}
        return {"sql": self.sql}

    def to_dict(self) -> dict[str, Any]:
        """Stable and JSON-able: kind, name, severity and the kind's settings."""
        return {"kind": self.kind, "name": self.name, "severity": self.severity, **self.params()}

    # -- SQL ------------------------------------------------------------------------
    def failing_rows_sql(self, relation: str, dialect: Dialect) -> str | None:
        """A query returning the failing rows of `relation` (already quoted) in `dialect`,
        or None for freshness, which `run_checks` decides in Python."""
        q = dialect.quote
        kind = self.kind
        if kind == "not_null":
            nulls = " OR ".join(f"{q(c)} IS NULL" for c in self.columns)
            return f"SELECT * FROM {relation} WHERE {nulls}"
        if kind == "unique":
            keys = ", ".join(q(c) for c in self.columns)
            any_key = " OR ".join(f"{q(c)} IS NOT NULL" for c in self.columns)
            n = q(self.count_column)
            return (
                f"SELECT {keys}, count(*) AS {n} FROM {relation} WHERE {any_key}"
                f" GROUP BY {keys} HAVING count(*) > 1 ORDER BY count(*) DESC, {keys}"
            )
        if kind == "accepted_values":
            column = q(self.column or "")
            values = ", ".join(dialect.literal(v) for v in self.values)
            n = q(self.count_column)
            return (
                f"SELECT {column}, count(*) AS {n} FROM {relation}"
                f" WHERE {column} IS NOT NULL AND {column} NOT IN ({values})"
                f" GROUP BY {column} ORDER BY count(*) DESC, {column}"
            )
        if kind == "relationships":
            parent = ".".join(q(p) for p in split_table_name(self.to or ""))
            child_key = f"gm_child.{q(self.column or '')}"
            return (
                f"SELECT gm_child.* FROM {relation} AS gm_child WHERE {child_key} IS NOT NULL"
                f" AND NOT EXISTS (SELECT 1 FROM {parent} AS gm_parent"
                f" WHERE gm_parent.{q(self.to_field or '')} = {child_key})"
            )
        if kind == "row_count":
            bounds = []
            if self.min_rows is not None:
                bounds.append(f"row_count < {self.min_rows}")
            if self.max_rows is not None:
                bounds.append(f"row_count > {self.max_rows}")
            return (
                f"SELECT row_count FROM (SELECT count(*) AS row_count FROM {relation}) AS gm_n"
                f" WHERE {' OR '.join(bounds)}"
            )
        if kind == "freshness":
            return None
        if kind == "expression":
            # The newline ends a trailing -- comment in the expression.
            return f"SELECT * FROM {relation} WHERE ({self.expression}\n) IS NOT TRUE"
        return strip_semicolon(self.sql or "").replace(THIS, relation)

    def latest_sql(self, relation: str, dialect: Dialect) -> str:
        """freshness: the query for the latest value of the column, as `latest`."""
        return f"SELECT max({dialect.quote(self.column or '')}) AS latest FROM {relation}"

    @property
    def count_column(self) -> str:
        """unique, accepted_values: the name of the count column of the failing rows."""
        return "n_rows" if "count" in (*self.columns, self.column) else "count"

    def referenced_tables(self) -> list[str]:
        """Tables other than the one checked that the check reads, as dotted names
        (such as raw.users), so that the asset graph can add them as upstream edges."""
        if self.kind == "relationships":
            return [".".join(split_table_name(self.to or ""))]
        if self.kind == "sql":
            text = strip_semicolon(self.sql or "").replace(THIS, THIS_PLACEHOLDER)
            return _tables_read(parse_sql(text, "check query"))
        return []

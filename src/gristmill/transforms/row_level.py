"""Row-level SQL transforms, run on each micro-batch of a change log or a stream.

A SQL transform that reads one table row by row (filters, projections, casts: no join, no
aggregation, no window, nothing that depends on when it runs) gives, over a subset of its
input's rows, exactly the subset of its output those rows make. So the same SELECT that
`gristmill run` builds over the whole table is run over each micro-batch: in the warehouse
over the batch's rows (change data capture: `features/live.py`), and in an in-process
DuckDB over a stream's events (`streams/consume.py`). A feature view reading such a
transform is kept live as its input changes.

A transform that cannot run per batch is refused with the reason, naming its file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError
from gristmill.transforms.sql import TableRef, _parse

if TYPE_CHECKING:
    import pyarrow as pa

    from gristmill.project import Project
    from gristmill.transforms.definition import Transform

BATCH = "_gm_batch"
"""The name the batch's rows have where the transform read its input."""
ROW = "_gm_row"
"""A column carried through the transform: which input row an output row comes from."""

_VOLATILE = {
    "rand", "random", "now", "today", "uuid", "gen_random_uuid", "nextval", "clock_timestamp",
    "statement_timestamp", "transaction_timestamp", "get_current_timestamp", "currval",
    "currenttimestamp", "currentdate", "currenttime", "currentdatetime", "currenttimestampltz",
}  # fmt: skip
"""Functions whose value depends on when (or how often) the query runs: sqlglot's class
names and, for the functions it does not know, their names."""


@dataclass
class RowTransform:
    """A SQL transform checked to be row-level, with its one input resolved."""

    transform: Transform
    input: TableRef
    """(schema, table) of the table it reads."""
    relation: TableRef
    """(schema, table) of what it makes."""
    dialect: str
    """The warehouse's SQL dialect, the one the transform is written in."""
    keeps_star: bool
    """Whether its projection holds `*` (every input column, `_gm_row` included)."""

    @property
    def name(self) -> str:
        return self.transform.name

    @property
    def stored(self) -> bool:
        """Whether the warehouse holds its rows (a table) rather than its query (a view)."""
        return self.transform.options.materialized != "view"

    def over(self, rows_sql: str) -> str:
        """The transform's SELECT, in the warehouse's dialect, reading the query `rows_sql`
        in place of its input table."""
        placeholder = "_gm_rows_placeholder"
        return self._reading(placeholder, self.dialect, carry_row=False).replace(
            placeholder, f"({rows_sql})", 1
        )

    def with_row(self) -> str:
        """The transform in DuckDB, reading `_gm_batch` and carrying `_gm_row` through."""
        return self._reading(BATCH, "duckdb", carry_row=True)

    def _reading(self, relation: str, dialect: str, carry_row: bool) -> str:
        from sqlglot import exp

        tree = _parse(self.transform.sql, self.dialect, self.transform.where)
        table = next(tree.find_all(exp.Table))
        # The input's name (or alias), as written, stays the name its columns are read by.
        name = (table.args["alias"].this if table.alias else table.this).copy()
        table.replace(exp.Table(this=exp.to_identifier(relation), alias=exp.TableAlias(this=name)))
        if carry_row and not self.keeps_star:
            row = exp.Column(this=exp.to_identifier(ROW, quoted=True), table=name.copy())
            tree.select(row, copy=False)
        rendered: str = tree.sql(dialect=dialect)
        return rendered

    def keeps_columns(self, columns: list[str]) -> list[str]:
        """Those of `columns` (input columns) the output does not carry through unchanged,
        under the same name."""
        from sqlglot import exp

        if self.keeps_star:
            return []
        tree = _parse(self.transform.sql, self.dialect, self.transform.where)
        kept = set()
        for projection in tree.expressions:
            inner = projection.this if isinstance(projection, exp.Alias) else projection
            if isinstance(inner, exp.Column) and inner.name == projection.alias_or_name:
                kept.add(inner.name)
        return [c for c in columns if c not in kept]


def row_level_problem(transform: Transform, dialect: str) -> str | None:
    """Why `transform` cannot run on a batch of its input's rows (None: it can)."""
    from sqlglot import exp

    if transform.kind != "sql":
        return "it is a Python transform (only a SQL SELECT runs on each batch)"
    tree = _parse(transform.sql, dialect, transform.where)
    if not isinstance(tree, exp.Select):
        return "it combines queries (UNION, INTERSECT or EXCEPT)"
    if tree.find(exp.With) is not None:
        return "it has a WITH clause"
    if any(s is not tree for s in tree.find_all(exp.Select)):
        return "it has a subquery"
    tables = list(tree.find_all(exp.Table))
    if tree.args.get("joins") or len(tables) > 1:
        others = ", ".join(t.sql(dialect=dialect) for t in tables[1:])
        return f"it joins {others or 'tables'}"
    if not tables or isinstance(tables[0].this, exp.Func):
        return "it reads no table (a table function or no FROM)"
    clauses = {
        "group": "GROUP BY",
        "having": "HAVING",
        "qualify": "QUALIFY",
        "distinct": "DISTINCT",
        "order": "ORDER BY",
        "limit": "LIMIT",
        "offset": "OFFSET",
    }
    for key, words in clauses.items():
        if tree.args.get(key):
            return f"it uses {words}"
    aggregate = next(tree.find_all(exp.AggFunc), None)
    if aggregate is not None:
        return f"it aggregates ({aggregate.sql(dialect=dialect)})"
    if next(tree.find_all(exp.Window), None) is not None:
        return "it uses a window function (OVER)"
    for node in tree.walk():
        called = node.name if isinstance(node, exp.Anonymous) else type(node).__name__
        if isinstance(node, exp.Func) and called.lower() in _VOLATILE:
            return f"it depends on when it runs ({node.sql(dialect=dialect)})"
    return None


def project_transforms(project: Project) -> dict[str, Transform]:
    """The project's transforms by name, for `find_row_transform`."""
    from gristmill.graph.load import discover_transforms

    return {t.name: t for t in discover_transforms(project)}


def find_row_transform(
    project: Project,
    transforms: dict[str, Transform],
    relation_name: str,
    input_table: TableRef,
    purpose: str,
) -> RowTransform | None:
    """The transform of `transforms` (`project_transforms`) named by `relation_name` (as a
    feature view's source is written) when it reads `input_table`; None when
    `relation_name` is not a transform reading it. A transform reading it that cannot run
    per batch is a ConfigError saying why (`purpose` says what needs it to)."""
    derived = project.config.transforms.schema_name
    raw = project.config.warehouse.raw_schema
    schema, _, name = relation_name.rpartition(".")
    if schema not in ("", derived):
        return None
    transform = transforms.get(name)
    if transform is None:
        return None

    def resolved(written: str) -> TableRef:
        ref_schema, _, ref_name = written.rpartition(".")
        if not ref_schema and ref_name in transforms:
            return derived, ref_name
        return ref_schema or raw, ref_name

    if input_table not in map(resolved, transform.inputs):
        return None
    dialect = project.warehouse.DIALECT
    problem = row_level_problem(transform, dialect)
    if problem is None and len(transform.inputs) != 1:
        problem = f"it reads {len(transform.inputs)} tables"
    if problem is not None:
        raise ConfigError(
            f"{transform.where}: transform '{transform.name}' cannot run on each micro-batch"
            f" of {'.'.join(input_table)}: {problem}. {purpose} needs it to read one table row"
            " by row (filters, projections, casts). Make the feature view read a row-level"
            " transform, and do the rest in the view's features or in a transform that"
            " `gristmill run` builds."
        )
    from sqlglot import exp

    tree = _parse(transform.sql, dialect, transform.where)
    star = any(isinstance(p, exp.Star) or p.is_star for p in tree.expressions)
    return RowTransform(transform, input_table, (derived, transform.name), dialect, star)


def run_on_batch(transform: RowTransform, rows: pa.Table, connection: Any) -> pa.Table:
    """The transform's output over `rows` (the input's columns and `_gm_row`), computed in
    the DuckDB `connection`; each output row carries `_gm_row`."""
    connection.register(BATCH, rows)
    try:
        return connection.sql(transform.with_row()).to_arrow_table()
    finally:
        connection.unregister(BATCH)

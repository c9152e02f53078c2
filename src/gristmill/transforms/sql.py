"""What a SQL transform reads, found by parsing it (sqlglot): tables, and column lineage."""

from __future__ import annotations

from typing import Any

from gristmill.errors import ConfigError

TableRef = tuple[str, str]
"""(schema, table) as written; schema is '' when the query leaves it out."""


def _parse(sql: str, dialect: str, where: str) -> Any:
    import sqlglot
    from sqlglot import exp

    try:
        statements = sqlglot.parse(sql, dialect=dialect)
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        line = first.get("line")
        place = f":{line}:{first.get('col')}" if line else ""
        description = first.get("description") or str(exc)
        raise ConfigError(f"{where}{place}: SQL does not parse: {description}") from None
    statements = [s for s in statements if s is not None]
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise ConfigError(
            f"{where}: a SQL transform holds exactly one SELECT (found "
            f"{len(statements)} statement(s)); the file name names the table it makes."
        )
    return statements[0]


def table_references(sql: str, dialect: str, where: str) -> dict[TableRef, int]:
    """The tables `sql` reads, without CTE names, each with the line it first appears on."""
    from sqlglot import exp

    tree = _parse(sql, dialect, where)
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found: list[tuple[int, TableRef]] = []
    for table in tree.find_all(exp.Table):
        if not table.name or isinstance(table.this, exp.Func):
            continue  # table functions such as read_parquet(...)
        if not table.db and table.name.lower() in ctes:
            continue
        found.append((int(table.this.meta.get("line", 1)), (table.db, table.name)))
    references: dict[TableRef, int] = {}
    for line, ref in sorted(found):
        references.setdefault(ref, line)
    return references


def column_lineage(
    sql: str,
    dialect: str,
    where: str,
    schema: dict[str, dict[str, dict[str, str]]],
    resolved: dict[TableRef, TableRef],
) -> dict[str, list[str]]:
    """For each output column, the `schema.table.column` inputs that feed it.

    `schema` maps schema -> table -> column -> type, and lets `SELECT *` expand;
    `resolved` maps each table reference as written to the table it names.
    """
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.lineage import lineage
    from sqlglot.optimizer.qualify import qualify

    tree = _parse(sql, dialect, where)
    for table in tree.find_all(exp.Table):
        target = resolved.get((table.db, table.name))
        if target is not None:
            table.set("db", exp.to_identifier(target[0]))
            table.set("this", exp.to_identifier(target[1]))
    try:
        qualified = qualify(
            tree, schema=dict(schema), dialect=dialect, validate_qualify_columns=False
        )
    except SqlglotError:
        qualified = tree
    result: dict[str, list[str]] = {}
    for column in qualified.named_selects:
        try:
            node = lineage(column, qualified, schema=dict(schema), dialect=dialect)
        except SqlglotError:
            result[column] = []
            continue
        inputs: dict[str, None] = {}
        for step in node.walk():
            if isinstance(step.expression, exp.Table):
                table = step.expression
                name = step.name.rsplit(".", 1)[-1].strip('"`')
                inputs.setdefault(".".join(p for p in (table.db, table.name, name) if p), None)
        result[column] = list(inputs)
    return result


def with_qualified_tables(
    sql: str, dialect: str, where: str, resolved: dict[TableRef, TableRef]
) -> str:
    """`sql` with every table reference written as schema.table.

    Views need it: DuckDB binds a view's names when it is queried, with the search
    path of whoever queries it.
    """
    from sqlglot import exp

    tree = _parse(sql, dialect, where)
    for table in tree.find_all(exp.Table):
        target = resolved.get((table.db, table.name))
        if target is not None:
            table.set("db", exp.to_identifier(target[0], quoted=True))
            table.set("this", exp.to_identifier(target[1], quoted=True))
    rendered: str = tree.sql(dialect=dialect, pretty=True)
    return rendered

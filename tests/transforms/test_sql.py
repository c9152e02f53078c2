"""What a SQL transform reads, and what each of its columns comes from."""

from __future__ import annotations

import pytest

from gristmill.errors import ConfigError
from gristmill.transforms.sql import column_lineage, table_references, with_qualified_tables


def refs(sql: str) -> set[tuple[str, str]]:
    return set(table_references(sql, "duckdb", "t.sql"))


def test_each_reference_knows_its_first_line() -> None:
    sql = "SELECT *\nFROM orders\nJOIN raw.users ON true\nJOIN orders AS o2 ON true"
    assert table_references(sql, "duckdb", "t.sql") == {("", "orders"): 2, ("raw", "users"): 3}


def test_ctes_are_not_tables() -> None:
    sql = """
        WITH recent AS (SELECT * FROM raw.orders WHERE amount > 0),
             per_user AS (SELECT user_id, count(*) AS n FROM recent GROUP BY 1)
        SELECT * FROM per_user JOIN users ON users.id = per_user.user_id
    """
    assert refs(sql) == {("raw", "orders"), ("", "users")}


def test_subqueries_joins_and_set_operations() -> None:
    sql = """
        SELECT o.id FROM orders AS o
        LEFT JOIN (SELECT id FROM analytics.refunds) AS r ON r.id = o.id
        WHERE o.user_id IN (SELECT id FROM raw.users WHERE EXISTS (SELECT 1 FROM flags))
        UNION ALL SELECT id FROM archive.orders
    """
    assert refs(sql) == {
        ("", "orders"),
        ("analytics", "refunds"),
        ("raw", "users"),
        ("", "flags"),
        ("archive", "orders"),
    }


def test_quoted_names_keep_their_case_and_spaces() -> None:
    assert refs('SELECT * FROM "raw"."Order Items" JOIN "Users" USING (id)') == {
        ("raw", "Order Items"),
        ("", "Users"),
    }


def test_a_cte_named_like_a_table_shadows_it_but_a_qualified_name_does_not() -> None:
    sql = "WITH orders AS (SELECT * FROM raw.orders) SELECT * FROM orders"
    assert refs(sql) == {("raw", "orders")}


def test_table_functions_are_not_tables() -> None:
    assert refs("SELECT * FROM range(10) AS r JOIN raw.orders ON true") == {("raw", "orders")}


def test_parse_errors_name_file_line_and_column() -> None:
    with pytest.raises(ConfigError, match=r"t\.sql:3:\d+: SQL does not parse"):
        table_references("SELECT a\nFROM orders\nWHERE (", "duckdb", "t.sql")


def test_one_select_only() -> None:
    with pytest.raises(ConfigError, match="exactly one SELECT"):
        table_references("SELECT 1; SELECT 2", "duckdb", "t.sql")
    with pytest.raises(ConfigError, match="exactly one SELECT"):
        table_references("DELETE FROM orders", "duckdb", "t.sql")


def test_column_lineage_through_ctes_joins_and_star() -> None:
    sql = """
        WITH totals AS (SELECT user_id, sum(amount) AS spent FROM orders GROUP BY user_id)
        SELECT u.id, u.name, t.spent * 2 AS doubled, x.*
        FROM raw.users AS u JOIN totals AS t ON t.user_id = u.id
        CROSS JOIN (SELECT * FROM extra) AS x
    """
    schema = {
        "raw": {
            "orders": {"user_id": "INT", "amount": "DOUBLE"},
            "users": {"id": "INT", "name": "TEXT"},
        },
        "analytics": {"extra": {"flag": "BOOLEAN"}},
    }
    resolved = {("", "orders"): ("raw", "orders"), ("", "extra"): ("analytics", "extra")}
    lineage = column_lineage(sql, "duckdb", "t.sql", schema, resolved)
    assert lineage == {
        "id": ["raw.users.id"],
        "name": ["raw.users.name"],
        "doubled": ["raw.orders.amount"],
        "flag": ["analytics.extra.flag"],
    }


def test_views_get_qualified_names() -> None:
    sql = 'WITH o AS (SELECT * FROM orders) SELECT * FROM o JOIN "Users" AS u ON true'
    rewritten = with_qualified_tables(
        sql, "duckdb", "t.sql", {("", "orders"): ("raw", "orders"), ("", "Users"): ("raw", "Users")}
    )
    assert '"raw"."orders"' in rewritten and '"raw"."Users"' in rewritten
    assert refs(rewritten) == {("raw", "orders"), ("raw", "Users")}

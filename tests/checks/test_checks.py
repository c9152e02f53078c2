"""Data checks: every kind passing and failing, on every warehouse backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gristmill.checks import CheckResult, CheckSpec, parse_checks, run_checks
from gristmill.config import WarehouseConfig
from gristmill.dialects import dialect
from gristmill.errors import ConfigError
from gristmill.warehouse import connect_warehouse
from gristmill.warehouse.base import Warehouse
from tests.conftest import PG_URL, require_server

NOW = datetime(2024, 1, 3, 0, 0, 0, tzinfo=UTC)


@dataclass
class Env:
    wh: Warehouse
    schema: str

    def rel(self, table: str) -> str:
        return self.wh.qualified(self.schema, table)

    def table(self, name: str, columns: str, rows: list[str] | None = None) -> str:
        relation = self.rel(name)
        with self.wh.transaction() as tx:
            tx.execute(f"CREATE TABLE {relation} ({columns})")
            if rows:
                tx.execute(f"INSERT INTO {relation} VALUES {', '.join(rows)}")
        return relation

    def run(self, relation: str, raw: list[dict[str, Any]], **kw: Any) -> list[CheckResult]:
        checks = parse_checks(raw, "transforms/test.sql:1")
        return run_checks(self.wh, relation, checks, now=NOW, **kw)

    def one(self, relation: str, check: dict[str, Any]) -> CheckResult:
        [result] = self.run(relation, [check])
        json.dumps(result.to_dict())  # always JSON-able
        return result


@pytest.fixture(params=["duckdb", "postgres"])
def env(request: Any, tmp_path: Path, unique_name: str) -> Iterator[Env]:
    if request.param == "duckdb":
        config = WarehouseConfig(type="duckdb", path=str(tmp_path / "wh.duckdb"))
    else:
        require_server("PostgreSQL", "127.0.0.1", 5432)
        config = WarehouseConfig(type="postgres", url=PG_URL, raw_schema=unique_name)
    wh = connect_warehouse(config, tmp_path)
    wh.ensure_schema(unique_name)
    yield Env(wh, unique_name)
    wh.close()
    if request.param == "postgres":
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as db:
            db.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')


@pytest.fixture
def orders(env: Env) -> str:
    return env.table(
        "orders",
        "id INTEGER, user_id INTEGER, status VARCHAR, amount DECIMAL(10,2), note VARCHAR",
        [
            "(1, 10, 'ok', 5.50, 'héllo 世界')",
            "(2, 10, 'failed', 0.00, NULL)",
            "(3, 20, 'ok', 12.25, NULL)",
            "(4, NULL, NULL, 1.00, NULL)",
        ],
    )


# -- not_null ---------------------------------------------------------------------------


def test_not_null(env: Env, orders: str) -> None:
    passed = env.one(orders, {"not_null": ["id", "amount"]})
    assert (passed.status, passed.failing, passed.sample, passed.blocking) == ("pass", 0, [], False)

    failed = env.one(orders, {"not_null": "note"})
    assert (failed.status, failed.failing, failed.blocking) == ("fail", 3, True)
    assert failed.message == "3 rows with NULL in note"
    assert len(failed.sample) == 3 and all(row["note"] is None for row in failed.sample)
    assert failed.check.name == "not_null(note)"

    either = env.one(orders, {"not_null": ["user_id", "status"]})
    assert either.failing == 1 and either.sample[0]["id"] == 4
    assert either.sample[0]["amount"] == "1.00"  # decimals as str


def test_sample_holds_at_most_five_rows(env: Env) -> None:
    relation = env.table("many", "id INTEGER, v INTEGER", [f"({i}, NULL)" for i in range(12)])
    result = env.one(relation, {"not_null": "v"})
    assert result.failing == 12 and len(result.sample) == 5


# -- unique -----------------------------------------------------------------------------


def test_unique(env: Env, orders: str) -> None:
    assert env.one(orders, {"unique": "id"}).status == "pass"
    # user_id 10 twice; the NULL user_id is ignored
    failed = env.one(orders, {"unique": "user_id"})
    assert failed.status == "fail" and failed.failing == 1
    assert failed.sample == [{"user_id": 10, "count": 2}]
    assert failed.message == "1 value of user_id appears more than once"


def test_unique_over_several_columns(env: Env) -> None:
    relation = env.table(
        "pairs",
        "a INTEGER, b VARCHAR",
        [
            "(1, 'x')",
            "(1, 'y')",
            "(2, 'x')",
            "(NULL, NULL)",
            "(NULL, NULL)",  # keys all NULL: ignored
            "(3, 'z')",
            "(3, 'z')",
            "(3, 'z')",
        ],
    )
    result = env.one(relation, {"unique": ["a", "b"]})
    assert result.check.name == "unique(a, b)"
    assert (result.status, result.failing) == ("fail", 1)
    assert result.sample == [{"a": 3, "b": "z", "count": 3}]
    assert "(a, b)" in result.message

    partial = env.table(
        "partial", "a INTEGER, b VARCHAR", ["(1, NULL)", "(2, NULL)", "(NULL, NULL)"]
    )
    assert env.one(partial, {"unique": ["a", "b"]}).status == "pass"


def test_unique_over_a_column_named_count(env: Env) -> None:
    relation = env.table("counted", '"count" INTEGER', ["(1)", "(1)"])
    result = env.one(relation, {"unique": "count"})
    assert result.sample == [{"count": 1, "n_rows": 2}]


# -- accepted_values ----------------------------------------------------------------------


def test_accepted_values(env: Env, orders: str) -> None:
    # NULL passes, as in dbt
    ok = env.one(orders, {"accepted_values": {"column": "status", "values": ["ok", "failed"]}})
    assert ok.status == "pass"

    failed = env.one(orders, {"accepted_values": {"column": "status", "values": ["ok"]}})
    assert (failed.status, failed.failing) == ("fail", 1)
    assert failed.sample == [{"status": "failed", "count": 1}]
    assert failed.message == "1 unexpected value in status: 'failed' (1 row)"

    numbers = env.one(orders, {"accepted_values": {"column": "user_id", "values": [10, 30]}})
    assert numbers.failing == 1 and numbers.sample == [{"user_id": 20, "count": 1}]


def test_accepted_values_with_unicode_and_quotes(env: Env) -> None:
    relation = env.table(
        "words", "w VARCHAR", ["('café')", "('世界')", "('it''s')", "('naïve')", "('naïve')"]
    )
    values = ["café", "世界", "it's"]
    failed = env.one(relation, {"accepted_values": {"column": "w", "values": values}})
    assert failed.sample == [{"w": "naïve", "count": 2}]
    assert "'naïve' (2 rows)" in failed.message
    values.append("naïve")
    assert env.one(relation, {"accepted_values": {"column": "w", "values": values}}).passed


# -- relationships ------------------------------------------------------------------------


def test_relationships(env: Env, orders: str) -> None:
    env.table("users", "uid INTEGER, name VARCHAR", ["(10, 'ann')", "(30, 'bob')"])
    check = {"column": "user_id", "to": f"{env.schema}.users", "field": "uid"}
    failed = env.one(orders, {"relationships": check})
    assert (failed.status, failed.failing) == ("fail", 1)  # 20 is an orphan, NULL is not
    assert failed.sample[0]["id"] == 3 and failed.sample[0]["user_id"] == 20
    assert failed.message == f"1 row whose user_id is not in {env.schema}.users.uid"
    assert failed.check.referenced_tables() == [f"{env.schema}.users"]

    with env.wh.transaction() as tx:
        tx.execute(f"INSERT INTO {env.rel('users')} VALUES (20, 'cy')")
    assert env.one(orders, {"relationships": check}).status == "pass"


def test_relationships_field_defaults_to_column(env: Env, orders: str) -> None:
    env.table("people", "user_id INTEGER", ["(10)", "(20)"])
    result = env.one(orders, {"relationships": {"column": "user_id", "to": f"{env.schema}.people"}})
    assert result.status == "pass"
    assert result.check.to_field == "user_id"


# -- row_count ------------------------------------------------------------------------------


def test_row_count(env: Env, orders: str) -> None:
    assert env.one(orders, {"row_count": {"min": 1, "max": 4}}).status == "pass"

    too_many = env.one(orders, {"row_count": {"max": 3}})
    assert (too_many.status, too_many.failing) == ("fail", 1)
    assert too_many.sample == [{"row_count": 4}]
    assert too_many.message == "4 rows, more than the maximum of 3"

    empty = env.table("empty", "id INTEGER")
    none = env.one(empty, {"row_count": {"min": 1}})
    assert none.status == "fail" and none.message == "0 rows, fewer than the minimum of 1"


# -- freshness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column_type", "value"),
    [
        ("TIMESTAMPTZ", "'2024-01-02 03:04:05+00'"),
        ("TIMESTAMP", "'2024-01-02 03:04:05'"),
        ("DATE", "'2024-01-02'"),
    ],
)
def test_freshness(env: Env, column_type: str, value: str) -> None:
    relation = env.table(
        "events", f"id INTEGER, created_at {column_type}", [f"(1, {value})", "(2, NULL)"]
    )
    fresh = env.one(relation, {"freshness": {"column": "created_at", "max_age": "2 days"}})
    assert fresh.status == "pass", fresh.message

    stale = env.one(relation, {"freshness": {"column": "created_at", "max_age": "12h"}})
    assert (stale.status, stale.failing) == ("fail", 1)
    assert stale.message.startswith("latest created_at 2024-01-02")
    assert stale.message.endswith("is older than 12h")
    assert stale.sample[0]["cutoff"] == "2024-01-02 12:00:00+00:00"


def test_freshness_of_an_empty_or_null_column_fails(env: Env) -> None:
    empty = env.table("no_events", "created_at TIMESTAMP")
    result = env.one(empty, {"freshness": {"column": "created_at", "max_age": "7d"}})
    assert result.status == "fail" and "empty" in result.message

    nulls = env.table("null_events", "created_at TIMESTAMP", ["(NULL)", "(NULL)"])
    result = env.one(nulls, {"freshness": {"column": "created_at", "max_age": "7d"}})
    assert result.status == "fail" and "all NULL" in result.message


def test_freshness_of_a_text_column_is_an_error(env: Env, orders: str) -> None:
    result = env.one(orders, {"freshness": {"column": "status", "max_age": "1d"}})
    assert result.status == "error" and "timestamp or date" in result.message


# -- expression and sql ------------------------------------------------------------------------


def test_expression(env: Env, orders: str) -> None:
    assert env.one(orders, {"expression": "amount >= 0"}).status == "pass"
    failed = env.one(orders, {"expression": "amount > 0"})
    assert (failed.status, failed.failing) == ("fail", 1)
    assert failed.sample[0]["id"] == 2
    assert failed.message == "1 row where amount > 0 is not true"
    assert failed.check.name == "expression(amount > 0)"

    # NULL is not true: it fails
    nulls = env.one(orders, {"expression": "user_id > 0 -- a trailing comment"})
    assert nulls.failing == 1 and nulls.sample[0]["id"] == 4


def test_custom_sql(env: Env, orders: str) -> None:
    env.table("limits", "user_id INTEGER, cap DECIMAL(10,2)", ["(10, 6.00)", "(20, 10.00)"])
    sql = (
        "SELECT o.* FROM {this} AS o JOIN " + env.rel("limits") + " AS l"
        " ON l.user_id = o.user_id WHERE o.amount > l.cap;"
    )
    failed = env.one(orders, {"sql": sql})
    assert (failed.status, failed.failing) == ("fail", 1)
    assert failed.sample[0]["id"] == 3
    assert failed.check.referenced_tables() == [f"{env.schema}.limits"]

    passed = env.one(orders, {"sql": "SELECT * FROM {this} WHERE amount > 100"})
    assert passed.status == "pass"


# -- severity, errors and transactions ----------------------------------------------------------


def test_warn_does_not_block(env: Env, orders: str) -> None:
    warn, error = env.run(
        orders,
        [
            {"not_null": "note", "severity": "warn", "name": "notes present"},
            {"not_null": "note"},
        ],
    )
    assert (warn.status, warn.blocking, warn.check.name) == ("fail", False, "notes present")
    assert (error.status, error.blocking) == ("fail", True)
    assert warn.to_dict()["check"]["severity"] == "warn"
    assert error.to_dict()["blocking"] is True


def test_a_broken_check_is_an_error_and_the_next_still_runs(env: Env, orders: str) -> None:
    broken, nulls, unique = env.run(
        orders,
        [
            {"expression": "no_such_column > 0", "severity": "warn"},
            {"not_null": "note"},
            {"unique": "id"},
        ],
    )
    assert broken.status == "error" and "no_such_column" in broken.message
    assert "\n" not in broken.message
    assert broken.blocking is False  # a warning, even when broken
    assert (nulls.status, nulls.failing) == ("fail", 3)
    assert unique.status == "pass"


def test_runtime_errors_do_not_stop_later_checks(env: Env, orders: str) -> None:
    results = env.run(
        orders,
        [
            {"expression": "CAST(status AS INTEGER) > 0"},
            {"freshness": {"column": "nope", "max_age": "1d"}},
            {"sql": "SELECT 1 / (id - id) AS boom FROM {this}"},
            {"not_null": "note"},
        ],
    )
    assert [r.status for r in results][:2] == ["error", "error"]
    assert "nope" in results[1].message
    # Division by zero is an error on PostgreSQL; DuckDB returns NULL (no failing row).
    assert results[2].status == ("error" if env.wh.NAME == "postgres" else "fail")
    assert results[3].failing == 3
    assert env.wh.row_count(env.schema, "orders") == 4  # checks never write


def test_search_path_resolves_unqualified_tables(env: Env, orders: str) -> None:
    env.table("users", "id INTEGER", ["(10)", "(20)"])
    [result] = env.run(
        orders,
        [{"relationships": {"column": "user_id", "to": "users", "field": "id"}}],
        search_path=[env.schema],
    )
    assert result.status == "pass", result.message


def test_a_missing_relation_is_an_error(env: Env) -> None:
    results = env.run(env.rel("nowhere"), [{"not_null": "a"}, {"row_count": {"min": 1}}])
    assert [r.status for r in results] == ["error", "error"]
    assert "nowhere" in results[0].message


def test_null_only_columns(env: Env) -> None:
    relation = env.table(
        "blank", "id INTEGER, v VARCHAR, ref INTEGER", ["(1, NULL, NULL)", "(2, NULL, NULL)"]
    )
    env.table("refs", "ref INTEGER")
    results = env.run(
        relation,
        [
            {"not_null": "v"},
            {"unique": "v"},
            {"accepted_values": {"column": "v", "values": ["a"]}},
            {"relationships": {"column": "ref", "to": f"{env.schema}.refs"}},
            {"expression": "v = 'a'"},
        ],
    )
    assert [(r.status, r.failing) for r in results] == [
        ("fail", 2),
        ("pass", 0),
        ("pass", 0),
        ("pass", 0),
        ("fail", 2),
    ]


# -- parsing --------------------------------------------------------------------------------


def test_unknown_kind_names_where_and_suggests() -> None:
    with pytest.raises(ConfigError) as info:
        parse_checks([{"not_null": "a"}, {"not_nul": "b"}], "transforms/clean.sql:3")
    message = str(info.value)
    assert message.startswith("transforms/clean.sql:3: check 2")
    assert "Did you mean 'not_null'?" in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"accepted_values": {"column": "s"}}, "'accepted_values.values' is missing"),
        ({"accepted_values": {"column": "s", "value": ["a"]}}, "Did you mean 'values'?"),
        ({"not_null": 5}, "'not_null': Input should be a valid list"),
        ({"not_null": []}, "at least 1 item"),
        ({"row_count": {}}, "row_count needs min, max or both"),
        ({"row_count": {"min": 3, "max": 1}}, "min (3) is greater than max (1)"),
        ({"freshness": {"column": "c", "max_age": "soon"}}, "'soon' is not a duration"),
        ({"freshness": {"column": "c"}}, "'freshness.max_age' is missing"),
        ({"relationships": {"column": "c", "to": "a b"}}, "not a table name"),
        ({"expression": "amount >="}, "not valid SQL"),
        ({"expression": "a > 0; DROP TABLE t"}, "2 statements"),
        ({"sql": "DELETE FROM t"}, "SELECT query"),
        ({"not_null": "a", "severity": "warning"}, "Did you mean 'warn'?"),
        ({"not_null": "a", "unique": "a"}, "declare one check per entry"),
        ({"severity": "warn"}, "names no kind of check"),
        ("not_null", "a check is a table"),
    ],
)
def test_parse_errors(raw: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_checks([raw], "gristmill.toml sources.app.tables.transactions")
    message = str(info.value)
    assert message.startswith("gristmill.toml sources.app.tables.transactions: check 1")
    assert expected in message


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(ConfigError, match="both named 'not_null\\(a\\)'"):
        parse_checks([{"not_null": "a"}, {"not_null": ["a"], "severity": "warn"}], "x.sql:1")


def test_parsed_specs() -> None:
    assert parse_checks(None, "x") == []
    specs = parse_checks(
        [
            {"not_null": ["a", "b"]},
            {"unique": "a", "severity": "warn"},
            {"accepted_values": {"column": "s", "values": ["ok", 1, True, 2.5]}},
            {"relationships": {"column": "u", "to": '"raw"."Users"'}},
            {"row_count": {"min": 1}},
            {"freshness": {"column": "c", "max_age": "1h30m"}},
            {"expression": "amount >= 0"},
            {
                "sql": "WITH x AS (SELECT * FROM raw.a) SELECT * FROM {this} t"
                " JOIN x USING (id) WHERE id IN (SELECT id FROM s.c)",
                "name": "custom",
            },
        ],
        "x.sql:1",
    )
    assert [s.name for s in specs] == [
        "not_null(a, b)",
        "unique(a)",
        "accepted_values(s)",
        'relationships(u -> "raw"."Users".u)',
        "row_count(min=1)",
        "freshness(c, 1h30m)",
        "expression(amount >= 0)",
        "custom",
    ]
    assert specs[1].to_dict() == {
        "kind": "unique",
        "name": "unique(a)",
        "severity": "warn",
        "columns": ["a"],
    }
    assert json.loads(json.dumps([s.to_dict() for s in specs])) == [s.to_dict() for s in specs]
    assert specs[5].max_age_delta.total_seconds() == 5400
    assert specs[3].referenced_tables() == ["raw.Users"]
    assert specs[7].referenced_tables() == ["raw.a", "s.c"]
    assert specs[0].referenced_tables() == []
    assert specs[2].failing_rows_sql('"t"', dialect("duckdb")) is not None
    assert "'ok', 1, TRUE, CAST('2.5' AS DOUBLE)" in (
        specs[2].failing_rows_sql('"t"', dialect("duckdb")) or ""
    )
    assert '"raw"."Users"' in (specs[3].failing_rows_sql('"t"', dialect("duckdb")) or "")
    assert specs[5].failing_rows_sql('"t"', dialect("duckdb")) is None
    assert CheckSpec(kind="not_null", columns=("a",)) == parse_checks([{"not_null": "a"}], "y")[0]

"""`gristmill run` over every warehouse: builds, skips, increments, fails safely, checks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gristmill.project import Project
from tests.graph.conftest import GraphProject

USER_TOTALS = """
    -- checks = [{ unique = "user_id" }, { not_null = ["user_id"] }]
    SELECT o.user_id, u.name, count(*) AS orders, sum(o.amount) AS spent
    FROM orders AS o JOIN users AS u ON u.id = o.user_id
    GROUP BY o.user_id, u.name
"""
BIG_SPENDERS = """
    -- materialized = "view"
    SELECT user_id, spent FROM user_totals WHERE spent > 50
"""
USER_SCORES = """
    import pyarrow as pa
    import pyarrow.compute as pc

    from gristmill import transform


    @transform(inputs=["user_totals", "users"], checks=[{"not_null": "score"}])
    def user_scores(user_totals: pa.Table, users: pa.Table) -> pa.Table:
        spent = pc.cast(user_totals["spent"], pa.float64())
        return pa.table({"user_id": user_totals["user_id"], "score": pc.multiply(spent, 2.0)})
"""


def _basic(p: GraphProject) -> None:
    p.write("user_totals.sql", USER_TOTALS)
    p.write("big_spenders.sql", BIG_SPENDERS)
    p.write("user_scores.py", USER_SCORES)


def test_builds_in_order_then_skips_what_is_up_to_date(graph_project: GraphProject) -> None:
    p = graph_project
    _basic(p)
    first = p.run()
    assert first.ok, [s.error for s in first.steps]
    order = [s.name for s in first.steps]
    assert order.index("user_totals") < order.index("big_spenders")
    assert order.index(f"{p.raw}.orders") < order.index("user_totals") < order.index("user_scores")
    assert p.rows("user_totals") == [
        {"user_id": 1, "name": "Ana", "orders": 2, "spent": Decimal("14.75")},
        {"user_id": 2, "name": "Bo", "orders": 1, "spent": Decimal("100.00")},
    ]
    assert p.rows("big_spenders") == [{"user_id": 2, "spent": Decimal("100.00")}]
    assert [r["score"] for r in p.rows("user_scores")] == pytest.approx([29.5, 200.0])

    again = p.status(p.run())
    # users is reloaded in full each time, with the same rows: nothing to rebuild.
    assert again["user_totals"] == again["big_spenders"] == again["user_scores"] == "up_to_date"

    p.app_sql("INSERT INTO orders VALUES (4, 3, 7, '2026-01-03 08:00:00', '2026-01-03 08:00:00')")
    changed = p.status(p.run(f"{p.raw}.orders+"))
    assert changed == {
        f"{p.raw}.orders": "ok",
        "user_totals": "ok",
        "big_spenders": "ok",
        "user_scores": "ok",
    }
    assert [r["user_id"] for r in p.rows("user_totals")] == [1, 2, 3]

    p.write("big_spenders.sql", BIG_SPENDERS.replace("> 50", "> 10"))
    edited = p.status(p.run("big_spenders", "user_totals"))
    assert edited == {"user_totals": "up_to_date", "big_spenders": "ok"}
    assert [r["user_id"] for r in p.rows("big_spenders")] == [1, 2]


def test_incremental_merge_takes_new_and_late_rows(graph_project: GraphProject) -> None:
    p = graph_project
    p.write(
        "daily.sql",
        """
        -- materialized = "incremental"
        -- unique_key = ["user_id", "day"]
        -- time_column = "day"
        -- checks = [{ unique = ["user_id", "day"] }]
        SELECT user_id, CAST(created_at AS DATE) AS day, sum(amount) AS amount
        FROM orders GROUP BY user_id, CAST(created_at AS DATE)
        """,
    )
    p.write(
        "log.sql",
        """
        -- materialized = "incremental"
        -- strategy = "append"
        -- time_column = "created_at"
        SELECT id, user_id, created_at FROM orders
        """,
    )
    first = p.run()
    assert first.ok and {s.name: s.mode for s in first.steps}["daily"] == "full"
    # A late order on the latest day, and one on a new day.
    p.app_sql("INSERT INTO orders VALUES (4, 2, 1, '2026-01-02 11:00:00', '2026-01-04 00:00:00')")
    p.app_sql("INSERT INTO orders VALUES (5, 1, 2, '2026-01-05 01:00:00', '2026-01-05 01:00:00')")
    second = p.run()
    modes = {s.name: (s.mode, s.rows) for s in second.steps}
    assert modes["daily"] == ("incremental", 3)  # the latest day (2 users) again, a new one
    assert modes["log"] == ("incremental", 1)  # append takes only rows past the latest time
    daily = {(r["user_id"], str(r["day"])): r["amount"] for r in p.rows("daily")}
    assert daily == {
        (1, "2026-01-01"): Decimal("10.50"),
        (1, "2026-01-02"): Decimal("4.25"),
        (2, "2026-01-02"): Decimal("101.00"),
        (1, "2026-01-05"): Decimal("2.00"),
    }
    assert [r["id"] for r in p.rows("log")] == [1, 2, 3, 5]
    rebuilt = p.run("daily", full_refresh=True)
    assert rebuilt.steps[0].mode == "full"
    assert {(r["user_id"], str(r["day"])): r["amount"] for r in p.rows("daily")} == daily


def test_a_sync_that_finds_nothing_new_rebuilds_nothing(graph_project: GraphProject) -> None:
    import tomllib

    import tomli_w

    p = graph_project
    p.app_sql("ALTER TABLE orders ADD COLUMN deleted_at TIMESTAMP")
    # At the last cursor value: a tied row, and a row deleted there. Each sync reads both
    # again (and everything within the lookback window).
    last = "2026-01-02 12:00:00"
    p.app_sql("INSERT INTO orders VALUES (4, 2, 5, ?, ?, NULL)", (last, last))
    p.app_sql("INSERT INTO orders VALUES (5, 2, 9, ?, ?, ?)", (last, last, last))
    config = tomllib.loads((p.root / "gristmill.toml").read_text())
    orders = config["sources"]["app"]["tables"]["orders"]
    orders.update(soft_delete_column="deleted_at", lookback="1d")
    (p.root / "gristmill.toml").write_text(tomli_w.dumps(config))
    p.write("user_totals.sql", USER_TOTALS)
    assert p.run().ok

    for _ in range(2):
        again = {s.name: (s.status, s.rows) for s in p.run().steps}
        assert again[f"{p.raw}.orders"] == ("ok", 0)
        assert again["user_totals"][0] == "up_to_date"

    p.app_sql("UPDATE orders SET deleted_at = ?, updated_at = ? WHERE id = 4", (last, last))
    changed = {s.name: s.status for s in p.run().steps}
    assert changed["user_totals"] == "ok"
    assert [r["orders"] for r in p.rows("user_totals") if r["user_id"] == 2] == [1]


def test_a_failing_step_keeps_its_table_and_skips_downstream(graph_project: GraphProject) -> None:
    p = graph_project
    _basic(p)
    p.write("country_counts.sql", "SELECT country, count(*) AS n FROM users GROUP BY country")
    assert p.run().ok
    before = p.rows("user_totals")
    p.write("user_totals.sql", USER_TOTALS.replace("sum(o.amount)", "sum(o.amount_typo)"))
    p.app_sql("INSERT INTO users VALUES (4, 'Dee', 'TZ')")
    summary = p.run()
    status = p.status(summary)
    assert status["user_totals"] == "failed"
    assert status["big_spenders"] == status["user_scores"] == "skipped"
    assert status["country_counts"] == "ok"  # independent steps go on
    error = next(s.error for s in summary.steps if s.name == "user_totals")
    assert error is not None and "transforms/user_totals.sql:2" in error
    assert "amount_typo" in error
    assert p.rows("user_totals") == before
    with Project.load(p.root) as project:
        tables = {name for (schema, name) in project.warehouse.relations() if schema == p.derived}
    assert not any(t.startswith("_gm_") for t in tables)


def test_blocking_checks_stop_publication_and_warnings_do_not(graph_project: GraphProject) -> None:
    p = graph_project
    p.write("named.sql", '-- checks = [{ not_null = "country" }]\nSELECT * FROM users')
    p.write("downstream.sql", "SELECT * FROM named")
    p.write(
        "warned.sql",
        '-- checks = [{ not_null = "country", severity = "warn" }]\nSELECT * FROM users',
    )
    summary = p.run()
    status = p.status(summary)
    assert status == {
        f"{p.raw}.users": "ok",
        f"{p.raw}.orders": "ok",
        "named": "failed",
        "downstream": "skipped",
        "warned": "ok",
    }
    failed = next(s for s in summary.steps if s.name == "named")
    assert failed.checks[0]["status"] == "fail" and failed.checks[0]["failing"] == 1
    assert failed.checks[0]["sample"][0]["name"] == "Chidi"
    warned = next(s for s in summary.steps if s.name == "warned")
    assert warned.checks[0]["status"] == "fail" and not warned.checks[0]["blocking"]
    with Project.load(p.root) as project:
        relations = project.warehouse.relations()
        stored = project.catalog.check_results("named")
    assert (p.derived, "named") not in relations and (p.derived, "warned") in relations
    assert stored[0]["status"] == "fail"


def test_python_errors_name_the_line(graph_project: GraphProject) -> None:
    p = graph_project
    p.write(
        "broken.py",
        """
        from gristmill import transform


        @transform(inputs=["users"])
        def broken(users):
            return users.column("no_such_column")
        """,
    )
    summary = p.run("+broken")
    broken = next(s for s in summary.steps if s.name == "broken")
    assert broken.status == "failed"
    assert "transforms/broken.py:6" in (broken.error or "")


def test_parallel_workers_build_independent_tables(graph_project: GraphProject) -> None:
    p = graph_project
    for i in range(8):
        p.write(f"part_{i}.sql", f"SELECT id, amount * {i} AS x FROM orders")
    p.write("total.sql", " UNION ALL ".join(f"SELECT * FROM part_{i}" for i in range(8)))
    summary = p.run(workers=4)
    assert summary.ok, [s.error for s in summary.steps]
    assert len(p.rows("total")) == 24
    with Project.load(p.root) as project:
        steps = project.catalog.steps(summary.run_id or 0)
    assert {s["asset"] for s in steps} >= {f"part_{i}" for i in range(8)} | {"total"}
    assert all(s["status"] == "ok" for s in steps)


@pytest.mark.parametrize("graph_project", ["duckdb"], indirect=True)
def test_reading_a_table_never_built_says_how_to_build_it(graph_project: GraphProject) -> None:
    p = graph_project
    p.write("first.sql", "SELECT * FROM users")
    p.write("second.sql", "SELECT * FROM first")
    summary = p.run("second")
    assert summary.steps[0].status == "failed"
    assert "gristmill run +second" in (summary.steps[0].error or "")


@pytest.mark.parametrize("graph_project", ["duckdb"], indirect=True)
def test_checks_on_a_source_table_gate_what_reads_it(graph_project: GraphProject) -> None:
    import tomllib

    import tomli_w

    p = graph_project
    config = tomllib.loads((p.root / "gristmill.toml").read_text())
    config["sources"]["app"]["tables"]["users"]["checks"] = [{"not_null": "country"}]
    (p.root / "gristmill.toml").write_text(tomli_w.dumps(config))
    p.write("countries.sql", "SELECT DISTINCT country FROM users")
    summary = p.run()
    status = p.status(summary)
    assert status[f"{p.raw}.users"] == "failed" and status["countries"] == "skipped"
    users = next(s for s in summary.steps if s.name == f"{p.raw}.users")
    assert users.checks[0]["failing"] == 1 and "loaded" in (users.error or "")
    assert len(p.rows(f"{p.raw}.users")) == 3  # the sync itself committed


@pytest.mark.parametrize("graph_project", ["duckdb"], indirect=True)
def test_a_run_killed_mid_build_leaves_the_published_table(graph_project: GraphProject) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    p = graph_project
    p.write("big.sql", "SELECT id, user_id FROM orders")
    assert p.run().ok
    before = p.rows("big")
    # A build that takes seconds, killed while it writes.
    p.write(
        "big.sql",
        "SELECT o.id, o.user_id, r.range AS n FROM orders AS o, range(20000000) AS r"
        " WHERE r.range % 7 <> 0",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gristmill", "run", "big", "-p", str(p.root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(2.5)
    assert process.poll() is None, "the build finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert p.rows("big") == before
    p.write("big.sql", "SELECT id, user_id, 1 AS n FROM orders")
    again = p.run("big")
    assert again.ok, again.steps[0].error
    assert [r["n"] for r in p.rows("big")] == [1, 1, 1]
    with Project.load(p.root) as project:
        leftovers = [n for (s, n) in project.warehouse.relations() if n.startswith("_gm_")]
    assert leftovers == []


@pytest.mark.parametrize("graph_project", ["duckdb"], indirect=True)
@pytest.mark.parametrize("frame", ["pandas", "polars"])
def test_python_transforms_take_and_return_pandas_or_polars(
    graph_project: GraphProject, frame: str
) -> None:
    p = graph_project
    body = {
        "pandas": "orders.groupby('user_id', as_index=False)['amount'].count()",
        "polars": "orders.group_by('user_id').agg(polars.col('amount').count()).sort('user_id')",
    }[frame]
    p.write(
        "counts.py",
        f"""
        import polars

        from gristmill import transform


        @transform(inputs=["orders"], frame="{frame}", checks=[{{"unique": "user_id"}}])
        def counts(orders):
            return {body}
        """,
    )
    summary = p.run()
    assert summary.ok, [s.error for s in summary.steps]
    assert [(r["user_id"], r["amount"]) for r in p.rows("counts")] == [(1, 2), (2, 1)]

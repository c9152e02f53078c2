"""Which relations a source syncs when gristmill.toml names none: tables, never twice.

PostgreSQL's declarative partitions are the storage of their parent: the parent is
synced, not each partition (which would land every row twice). Views, materialized
views and foreign tables are synced only when named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import run_ingest, warehouse_rows, write_project
from tests.ingest.harness import PostgresHarness


@pytest.fixture
def pg(pg_url: str, unique_name: str) -> Iterator[PostgresHarness]:
    harness = PostgresHarness(pg_url, unique_name)
    other = f"{unique_name}_other"
    harness.execute(f'CREATE SCHEMA "{other}"')
    yield harness
    harness.execute(f'DROP SCHEMA "{other}" CASCADE')
    harness.close()


def test_a_partitioned_table_syncs_once_through_its_parent(
    pg: PostgresHarness, project_dir: Path
) -> None:
    other = f"{pg.schema}_other"
    pg.execute(
        "CREATE TABLE sales (id int, day date, amount int, PRIMARY KEY (id, day))"
        " PARTITION BY RANGE (day)"
    )
    pg.execute(
        "CREATE TABLE sales_2024 PARTITION OF sales FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"
    )
    # Partitioned again: its own partitions are storage of the same parent.
    pg.execute(
        "CREATE TABLE sales_2025 PARTITION OF sales FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')"
        " PARTITION BY RANGE (day)"
    )
    pg.execute(
        "CREATE TABLE sales_2025_h1 PARTITION OF sales_2025"
        " FOR VALUES FROM ('2025-01-01') TO ('2025-07-01')"
    )
    pg.execute(
        "CREATE TABLE sales_2025_h2 PARTITION OF sales_2025"
        " FOR VALUES FROM ('2025-07-01') TO ('2026-01-01')"
    )
    # A partition kept in another schema still belongs to this schema's parent.
    pg.execute(
        f'CREATE TABLE "{other}".sales_2023 PARTITION OF sales'
        " FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')"
    )
    # A partition here of a parent elsewhere: only this schema's sync can bring its rows.
    pg.execute(f'CREATE TABLE "{other}".visits (id int, day date) PARTITION BY RANGE (day)')
    pg.execute(
        f'CREATE TABLE visits_2024 PARTITION OF "{other}".visits'
        " FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"
    )
    pg.execute(
        "INSERT INTO sales VALUES (1, '2024-03-01', 10), (2, '2025-02-01', 20),"
        " (3, '2025-09-01', 30), (4, '2023-05-05', 40)"
    )
    pg.execute(f"INSERT INTO \"{other}\".visits VALUES (7, '2024-06-01')")
    pg.execute("CREATE VIEW big_sales AS SELECT * FROM sales WHERE amount > 15")
    pg.execute("CREATE MATERIALIZED VIEW sales_total AS SELECT sum(amount) AS total FROM sales")
    write_project(project_dir, {"app": pg.source_config()})

    summary = run_ingest(project_dir)

    assert summary.ok, summary.to_dict()
    assert sorted(t.key for t in summary.tables) == ["app.sales", "app.visits_2024"]
    assert [r["id"] for r in warehouse_rows(project_dir, "sales")] == [1, 2, 3, 4]
    assert [r["id"] for r in warehouse_rows(project_dir, "visits_2024")] == [7]

    # Named, a partition or a view is synced like any table.
    asked = run_ingest(project_dir, "app.sales_2024")
    write_project(
        project_dir,
        {"app": {**pg.source_config(), "tables": {"big_sales": {}, "sales_total": {}}}},
    )
    named = run_ingest(project_dir)

    assert asked.ok and named.ok, (asked.to_dict(), named.to_dict())
    assert [r["id"] for r in warehouse_rows(project_dir, "sales_2024")] == [1]
    assert [r["id"] for r in warehouse_rows(project_dir, "big_sales")] == [2, 3, 4]
    assert warehouse_rows(project_dir, "sales_total", "total") == [{"total": 100}]

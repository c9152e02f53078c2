"""Ingest on Dask workers (`engine = "dask"`): a read split into key ranges, each read by
a worker into Parquet in staging, applied by the driver. Every test compares against the
local engine by content: the same warehouse tables, the same sync results."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gristmill.project import Project
from tests.helpers import run_ingest, write_project
from tests.ingest.harness import MySQLHarness, PostgresHarness, SourceHarness
from tests.ingest.type_table import TABLES
from tests.ingest.typed_source import TypedSource

if TYPE_CHECKING:
    from tests.conftest import ObjectStoreStaging

pytest.importorskip("distributed", reason="the dask extra is not installed")

PARTITIONS = 3


def _projects(
    tmp_path: Path,
    sources: dict[str, Any],
    scheduler: str,
    partitions: int = PARTITIONS,
    staging: str | None = None,
) -> tuple[Path, Path]:
    """Two projects over the same sources: one local, one on the Dask cluster."""
    local, dask = tmp_path / "local", tmp_path / "dask"
    for root in (local, dask):
        root.mkdir(exist_ok=True)
    write_project(local, sources)
    execution: dict[str, Any] = {"engine": "dask", "scheduler": scheduler, "partitions": partitions}
    if staging:
        execution["staging"] = staging
    write_project(dask, sources, execution=execution)
    return local, dask


def _content(root: Path, table: str) -> tuple[str, str]:
    """A table's column types and rows, in key order, as comparable text."""
    with Project.load(root) as project:
        schema = project.config.warehouse.raw_schema
        found = project.warehouse.query_arrow(f'SELECT * FROM "{schema}"."{table}" ORDER BY id')
    found = found.combine_chunks()
    # Arrow's own printing: NaN equals NaN, and a date at infinity has no Python value.
    text = [
        f"{n}: {c.to_string(window=10**6, container_window=10**6)}"
        for n, c in zip(found.column_names, found.columns, strict=True)
    ]
    return str(found.schema), "\n".join(text)


def _outcomes(summary: Any) -> list[tuple[Any, ...]]:
    """What a sync reports, but its timing, and of an error, the value it names first
    (ranges read in another order may meet another bad value of the same column first)."""
    return sorted(
        (
            t.key,
            t.status,
            t.rows,
            t.rows_read,
            t.deleted_rows,
            t.cursor,
            t.error and t.error.split(": the value")[0],
            t.outcome,
        )
        for t in summary.tables
    )


def _staging(root: Path) -> list[str]:
    folder = root / ".gristmill" / "staging"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class _Said(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.said: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.said.append(record.getMessage())


def _both(local: Path, dask: Path, *on_workers: str) -> Any:
    """Sync both projects: the same results; the tables `on_workers` read by workers."""
    expected = run_ingest(local)
    logger = logging.getLogger("gristmill.ingest.distributed")
    said, level = _Said(), logger.level
    logger.addHandler(said)
    logger.setLevel(logging.INFO)
    try:
        summary = run_ingest(dask)
    finally:
        logger.removeHandler(said)
        logger.setLevel(level)
    assert _outcomes(summary) == _outcomes(expected)
    assert _staging(dask) == [], "the job's staging folder is removed"
    for key in on_workers:
        assert any(m.startswith(f"{key}: read on the Dask workers") for m in said.said), said.said
    return summary


@pytest.fixture(params=["postgres", "mysql"])
def typed_source(request: Any, tmp_path: Path, unique_name: str) -> Iterator[TypedSource]:
    source = TypedSource(request.param, tmp_path, unique_name + "_src")
    yield source
    source.close()


def test_the_type_table_arrives_as_from_a_local_read(
    typed_source: TypedSource, tmp_path: Path, dask_scheduler: str
) -> None:
    """Hostile values through Parquet: every type of the table loads as a local read loads
    it, and a value the warehouse cannot keep fails its table with the local error, the
    other tables going on."""
    rows = TABLES[typed_source.kind]
    loading = [r for r in rows if "duckdb" not in r.stops]
    typed_source.create("typed", loading)
    stopping = [r for r in rows if "duckdb" in r.stops]
    for row in stopping:
        typed_source.create(f"s_{row.column}", [row])
    sources = {"src": {**typed_source.config(), "tables": typed_source.tables}}
    local, dask = _projects(tmp_path, sources, dask_scheduler)

    summary = _both(local, dask, "src.typed")

    results = {t.table: t for t in summary.tables}
    assert results["typed"].status == "ok"
    assert _content(dask, "typed") == _content(local, "typed")
    for row in stopping:
        assert results[f"s_{row.column}"].status == "failed"
        assert f"column '{row.column}'" in (results[f"s_{row.column}"].error or "")


@pytest.fixture(params=["postgres", "mysql"])
def harness(request: Any, unique_name: str) -> Iterator[SourceHarness]:
    from tests.conftest import MYSQL_URL, PG_URL, require_server

    if request.param == "postgres":
        require_server("PostgreSQL", "127.0.0.1", 5432)
        h: SourceHarness = PostgresHarness(PG_URL, unique_name)
    else:
        require_server("MariaDB/MySQL", "127.0.0.1", 3306)
        h = MySQLHarness(MYSQL_URL, unique_name)
    yield h
    h.close()


ORDERS = {"id": "bigint", "amount": "decimal(12,2)", "note": "text", "updated_at": "timestamp"}


def _order(i: int, day: int, note: str = "") -> dict[str, Any]:
    from datetime import datetime, timedelta
    from decimal import Decimal

    moment = datetime(2024, 1, 1) + timedelta(days=day, seconds=i)
    return {"id": i, "amount": Decimal(i) / 4, "note": note or f"order {i} ✓", "updated_at": moment}


def test_full_then_incremental_merge_with_updates_and_deletes(
    harness: SourceHarness, tmp_path: Path, dask_scheduler: str
) -> None:
    harness.create_table("orders", ORDERS)
    harness.insert("orders", [_order(i, day=i % 5) for i in range(1, 61)])
    table = {"mode": "merge", "cursor": "updated_at", "detect_deletes": True}
    sources = {"src": {**harness.source_config(), "tables": {"orders": table}}}
    local, dask = _projects(tmp_path, sources, dask_scheduler)
    _both(local, dask, "src.orders")
    assert _content(dask, "orders") == _content(local, "orders")

    # Updates (some tied at the last cursor value), new rows, deleted rows.
    q = harness.QUOTE
    harness.execute(
        f"UPDATE {q}orders{q} SET note = 'changed', updated_at = '2024-02-01 00:00:00'"
        " WHERE id % 7 = 0"
    )
    harness.insert("orders", [_order(i, day=40) for i in range(61, 70)])
    harness.execute(f"DELETE FROM {q}orders{q} WHERE id IN (3, 30, 61)")

    summary = _both(local, dask, "src.orders")

    (result,) = summary.tables
    assert result.rows == 8 + 9 - 1 and result.deleted_rows == 2
    assert _content(dask, "orders") == _content(local, "orders")
    unchanged = _both(local, dask)
    assert unchanged.tables[0].outcome == "unchanged"


@pytest.mark.parametrize("count", [PARTITIONS * 2 - 1, PARTITIONS * 2, PARTITIONS * 2 + 1])
def test_rows_around_the_range_boundaries_are_read_once(
    harness: SourceHarness, tmp_path: Path, dask_scheduler: str, count: int
) -> None:
    """N-1, N and N+1 rows over the ranges' bounds, both of the key (a full table) and of
    the cursor (an incremental one, with rows tied at the bounds)."""
    harness.create_table("orders", ORDERS)
    harness.insert("orders", [_order(i, day=i // 2) for i in range(1, count + 1)])
    by_cursor = {"mode": "append", "cursor": "updated_at", "target": "by_cursor"}
    sources = {
        "src": {**harness.source_config(), "tables": {"orders": {}}},
        "inc": {**harness.source_config(), "tables": {"orders": by_cursor}},
    }
    local, dask = _projects(tmp_path, sources, dask_scheduler)

    _both(local, dask, "src.orders", "inc.orders")

    for target in ("orders", "by_cursor"):
        with Project.load(dask) as project:
            ids = project.warehouse.fetchall(f"SELECT id FROM raw.{target} ORDER BY id")
        assert [i for (i,) in ids] == list(range(1, count + 1)), target
        assert _content(dask, target) == _content(local, target)


def _worker_pids(scheduler: str) -> dict[str, int]:
    from distributed import Client

    with Client(scheduler, timeout=10) as client:
        return dict(client.run(os.getpid))


def _wait_for_a_range(root: Path, timeout: float = 60) -> bool:
    """Wait until a worker is writing a range into the project's staging."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list((root / ".gristmill" / "staging").glob("*/ranges/*.partial")):
            return True
        time.sleep(0.005)
    return False


@pytest.fixture
def big_orders(pg_url: str, unique_name: str) -> Iterator[PostgresHarness]:
    """A PostgreSQL table large enough that its ranges take a while to read."""
    h = PostgresHarness(pg_url, unique_name)
    h.create_table("orders", ORDERS)
    h.execute(
        "INSERT INTO orders SELECT g, g / 4.0, repeat('x', 200) || g,"
        " timestamp '2024-01-01' + g * interval '1 second' FROM generate_series(1, 300000) g"
    )
    yield h
    h.close()


def test_a_real_scheduler_and_workers_over_tcp_read_the_ranges(
    big_orders: PostgresHarness,
    tmp_path: Path,
    dask_tcp_cluster: tuple[str, list[subprocess.Popen[bytes]]],
) -> None:
    """`dask scheduler` and two `dask worker` processes, as on machines of their own: the
    ranges are read by the workers (each connects to PostgreSQL itself) and land in
    staging; the driver publishes the table the local engine publishes."""
    address, _ = dask_tcp_cluster
    table = {"mode": "merge", "cursor": "updated_at"}
    sources = {"src": {**big_orders.source_config(), "tables": {"orders": table}}}
    local, dask = _projects(tmp_path, sources, address, partitions=4)
    _both(local, dask, "src.orders")
    assert _content(dask, "orders") == _content(local, "orders")
    big_orders.execute(
        "UPDATE orders SET updated_at = updated_at + interval '1 year' WHERE id % 7 = 0"
    )
    _both(local, dask, "src.orders")
    assert _content(dask, "orders") == _content(local, "orders")


def test_staging_on_an_object_store(
    big_orders: PostgresHarness, tmp_path: Path, s3_staging: ObjectStoreStaging
) -> None:
    """The workers' ranges land in S3 and the driver loads them from there."""
    sources = {"src": {**big_orders.source_config(), "tables": {"orders": {}}}}
    local, dask = _projects(tmp_path, sources, s3_staging.scheduler, 4, s3_staging.url)
    _both(local, dask, "src.orders")
    assert _content(dask, "orders") == _content(local, "orders")
    assert s3_staging.objects() == [], "the job's objects are removed"


def test_a_worker_killed_mid_read_gives_the_same_table(
    big_orders: PostgresHarness, tmp_path: Path, dask_scheduler: str
) -> None:
    sources = {"src": {**big_orders.source_config(), "tables": {"orders": {}}}}
    local, dask = _projects(tmp_path, sources, dask_scheduler, partitions=8)
    before = _worker_pids(dask_scheduler)
    killed: list[int] = []

    def kill_a_worker() -> None:
        if _wait_for_a_range(dask):
            pid = sorted(before.values())[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    try:
        summary = run_ingest(dask)
    finally:
        killer.join()
    assert killed, "no range was read while the test watched"
    expected = run_ingest(local)
    assert _outcomes(summary) == _outcomes(expected)
    assert _content(dask, "orders") == _content(local, "orders")
    assert _staging(dask) == []
    # The nanny restarts the worker, for the tests after this one.
    from distributed import Client

    with Client(dask_scheduler, timeout=10) as client:
        client.wait_for_workers(2, timeout=30)


def test_a_driver_killed_mid_run_converges_on_rerun_and_its_staging_is_removed(
    big_orders: PostgresHarness, tmp_path: Path, dask_scheduler: str
) -> None:
    table = {"mode": "merge", "cursor": "updated_at"}
    sources = {"src": {**big_orders.source_config(), "tables": {"orders": table}}}
    local, dask = _projects(tmp_path, sources, dask_scheduler, partitions=8)
    driver = subprocess.Popen(
        [sys.executable, "-m", "gristmill", "ingest", "--engine", "dask", "-p", str(dask)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert _wait_for_a_range(dask), "the driver never handed a range to a worker"
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.wait(30)
    left = _staging(dask)
    assert len(left) == 1 and left[0].startswith(f"ingest.{driver.pid}.")
    with Project.load(dask) as project:
        assert project.warehouse.read_state("src", "orders") is None, "nothing was committed"

    # Dated before now: a transaction another test holds open on the server would cap a
    # cursor at now() (late commits), at a different moment for each of the two syncs.
    big_orders.execute(
        "UPDATE orders SET note = 'later', updated_at = timestamp '2025-06-01 12:00:00'"
        " WHERE id % 1000 = 0"
    )

    summary = _both(local, dask, "src.orders")
    assert summary.ok
    assert _content(dask, "orders") == _content(local, "orders")
    assert _staging(dask) == [], "the killed driver's staging folder is removed"

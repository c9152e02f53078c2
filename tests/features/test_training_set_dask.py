"""Training sets built on Dask workers equal the local build, content compared: same
rows in the same order, same columns and types, same values (decimals exact); views of
different entities, NULL keys, events tied with the spine's time, dense entities; any
number of partitions; a killed worker; a worker memory limit smaller than the data."""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill.graph.run import RunSummary, run
from gristmill.project import Project

if TYPE_CHECKING:
    from tests.conftest import ObjectStoreStaging

pytest.importorskip("distributed", reason="the dask extra is not installed")

FEATURES = """
from gristmill.features import Dataset, FeatureView, aggregate, expression

payer = FeatureView(
    name="payer",
    entity=["user_id"],
    timestamp="paid_at",
    source="raw.payments",
    ttl="2d",
    features=[
        aggregate("paid", "sum", "amount", windows=["1h", "1d"]),
        aggregate("paid_mean", "mean", "amount", windows=["1d"]),
        aggregate("paid_max", "max", "amount", windows=["1d"]),
        aggregate("paid_min", "min", "amount", windows=["7d"]),
        aggregate("payments", "count", windows=["1h", "1d"]),
        aggregate("big", "count", windows=["1d"], filter="amount > 50"),
        aggregate("shops", "count_distinct", "shop", windows=["1d"]),
        aggregate("units", "sum", "units", windows=["1d"]),
        expression("last_amount", "amount"),
        expression("last_shop", "shop"),
    ],
)

device = FeatureView(
    name="device",
    entity=["device_id"],
    timestamp="seen_at",
    source="raw.logins",
    features=[
        aggregate("logins", "count", windows=["1d"]),
        expression("last_ip", "ip"),
    ],
)

pair = FeatureView(
    name="pair",
    entity=["user_id", "device_id"],
    timestamp="seen_at",
    source="raw.logins",
    features=[aggregate("pair_logins", "count", windows=["7d"])],
)

training = Dataset(
    name="training",
    spine="SELECT * FROM raw.decisions",
    timestamp="decided_at",
    features=["payer", "device", "pair"],
)

users_only = Dataset(
    name="users_only",
    spine="SELECT user_id, decided_at, asked FROM raw.decisions WHERE label",
    timestamp="decided_at",
    features=["payer.paid_1d", "payer.last_amount", "payer.shops_1d"],
    inclusive=True,
)
"""

START = datetime(2026, 3, 1)


def make_data(db: duckdb.DuckDBPyConnection, seed: int, users: int, spine: int) -> None:
    """Payments (decimals, a dense user 0, NULL keys), logins (string device keys) and a
    spine with NULL keys and times equal to events' times."""
    db.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for table in ("payments", "logins", "decisions"):
        db.execute(f"DROP TABLE IF EXISTS raw.{table}")
    db.execute(
        "CREATE TABLE raw.payments AS SELECT"
        f" CASE WHEN n % 97 = 5 THEN NULL WHEN n % 3 = 0 THEN 0 ELSE (n * {seed + 7}) % {users} END"
        " AS user_id,"
        f" TIMESTAMP '{START}' + INTERVAL (((n * 7919 + {seed}) % 20000) * 30) SECOND AS paid_at,"
        " CAST(((n * 31) % 10000) / 100.0 AS DECIMAL(12, 2)) AS amount,"
        " 'shop_' || (n % 7) AS shop, CAST(n % 5 AS BIGINT) AS units"
        " FROM range(3000) AS r(n)"
    )
    db.execute(
        "CREATE TABLE raw.logins AS SELECT"
        f" (n * 13) % {users} AS user_id,"
        " CASE WHEN n % 50 = 1 THEN NULL ELSE 'dev-' || (n % 23) END AS device_id,"
        f" TIMESTAMPTZ '{START}+00' + INTERVAL (((n * 104729) % 20000) * 30) SECOND AS seen_at,"
        " '10.0.0.' || (n % 250) AS ip FROM range(1500) AS r(n)"
    )
    # Half of the spine's times are those of payments: ties at the spine time.
    db.execute(
        "CREATE TABLE raw.decisions AS SELECT"
        f" CASE WHEN n % 41 = 3 THEN NULL ELSE (n * {seed + 3}) % {users} END AS user_id,"
        " CASE WHEN n % 37 = 2 THEN NULL ELSE 'dev-' || (n % 29) END AS device_id,"
        f" TIMESTAMP '{START}' + INTERVAL (CASE WHEN n % 2 = 0"
        f"  THEN ((((n * 11) % 3000) * 7919 + {seed}) % 20000) * 30"
        "  ELSE ((n * 7907) % 20000) * 30 + 15 END) SECOND AS decided_at,"
        " n % 3 = 0 AS label, CAST(n / 7.0 AS DECIMAL(10, 3)) AS asked"
        f" FROM range({spine}) AS r(n)"
    )


def make_project(
    root: Path,
    scheduler: str | None,
    *,
    partitions: int | None = None,
    staging: str | None = None,
    seed: int = 1,
    users: int = 40,
    spine: int = 400,
) -> Path:
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / ".gristmill").mkdir(exist_ok=True)
    (root / "features" / "views.py").write_text(FEATURES)
    execution: dict[str, Any] = {"engine": "local"}
    if scheduler:
        execution["scheduler"] = scheduler
    if partitions:
        execution["partitions"] = partitions
    if staging:
        execution["staging"] = staging
    config = {"name": "dasksets", "execution": execution}
    (root / "gristmill.toml").write_text(tomli_w.dumps(config))
    with duckdb.connect(str(root / ".gristmill" / "warehouse.duckdb")) as db:
        make_data(db, seed, users, spine)
    return root


def build(root: Path, engine: str, datasets: tuple[str, ...] = ("training",)) -> RunSummary:
    with Project.load(root) as project:
        summary = run(project.use_engine(engine), list(datasets), full_refresh=True)
    assert summary.ok, [s.error for s in summary.steps]
    return summary


def content(root: Path, table: str) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
    """The table's columns and types, and its rows in its stored order."""
    with duckdb.connect(str(root / ".gristmill" / "warehouse.duckdb"), read_only=True) as db:
        columns = [(r[0], r[1]) for r in db.execute(f"DESCRIBE analytics.{table}").fetchall()]
        rows = db.execute(f"SELECT * FROM analytics.{table}").fetchall()
    return columns, rows


def assert_same(local: Any, dask: Any) -> None:
    """Equal tables: doubles (means) to the last few bits, everything else exactly."""
    (local_columns, local_rows), (dask_columns, dask_rows) = local, dask
    assert dask_columns == local_columns
    assert len(dask_rows) == len(local_rows)
    for expected, got in zip(local_rows, dask_rows, strict=True):
        for (name, _), a, b in zip(local_columns, expected, got, strict=True):
            if isinstance(a, float) and isinstance(b, float):
                assert math.isclose(a, b, rel_tol=1e-12), (name, expected, got)
            else:
                assert a == b and type(a) is type(b), (name, expected, got)


def test_dask_build_equals_the_local_build(tmp_path: Path, dask_scheduler: str) -> None:
    root = make_project(tmp_path, dask_scheduler, partitions=3)
    build(root, "local", ("training", "users_only"))
    local = {t: content(root, t) for t in ("training", "users_only")}
    summary = build(root, "dask", ("training", "users_only"))
    assert {s.name: s.mode for s in summary.steps} == {
        "training": "table, on workers",
        "users_only": "table, on workers",
    }
    assert {s.name: s.rows for s in summary.steps} == {
        "training": 400,
        "users_only": len(local["users_only"][1]),
    }
    for table, expected in local.items():
        assert_same(expected, content(root, table))
    columns = dict(local["training"][0])
    assert columns["paid_1d"].startswith("DECIMAL") and columns["units_1d"] == "HUGEINT"
    # The data has what the comparison is meant to cover.
    rows = local["training"][1]
    names = [c for c, _ in local["training"][0]]
    assert any(r[names.index("user_id")] is None for r in rows)
    assert any(r[names.index("payments_1h")] > 0 for r in rows)
    assert any(r[names.index("last_ip")] is not None for r in rows)
    # Staging is cleaned once the build is published.
    assert not any((root / ".gristmill" / "staging").glob("dataset.*"))


def test_staging_on_an_object_store(tmp_path: Path, s3_staging: ObjectStoreStaging) -> None:
    """Spine, events and results handed over through S3, as between machines: the
    warehouse's DuckDB and the workers' read and write s3:// through s3fs."""
    root = make_project(
        tmp_path, s3_staging.scheduler, partitions=3, staging=s3_staging.url, spine=120
    )
    build(root, "local")
    local = content(root, "training")
    summary = build(root, "dask")
    assert [s.mode for s in summary.steps] == ["table, on workers"]
    assert_same(local, content(root, "training"))
    assert not (root / ".gristmill" / "staging").exists(), "nothing staged on the local disk"
    assert s3_staging.objects() == [], "the job's objects are removed"


def test_dataset_build_engine_dask_on_the_command_line(tmp_path: Path, dask_scheduler: str) -> None:
    from tests.cli.test_cli import gristmill

    root = make_project(tmp_path, dask_scheduler, partitions=2, spine=50)
    build(root, "local")
    local = content(root, "training")
    done = gristmill(
        "dataset",
        "build",
        "training",
        "--engine",
        "dask",
        "--full-refresh",
        "--json",
        "-p",
        str(root),
    )
    assert done.returncode == 0, done.stderr
    [step] = [s for s in json.loads(done.stdout)["steps"] if s["name"] == "training"]
    assert (step["status"], step["mode"], step["rows"]) == ("ok", "table, on workers", 50)
    assert_same(local, content(root, "training"))


@pytest.mark.slow
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    partitions=st.sampled_from([1, 2, 3, 5, 39, 40, 41, 64]),
    seed=st.integers(0, 1000),
    users=st.integers(1, 40),
    spine=st.integers(0, 120),
)
def test_any_partition_count_gives_the_local_build(
    tmp_path_factory: pytest.TempPathFactory,
    dask_scheduler: str,
    partitions: int,
    seed: int,
    users: int,
    spine: int,
) -> None:
    root = make_project(
        tmp_path_factory.mktemp("p"),
        dask_scheduler,
        partitions=partitions,
        seed=seed,
        users=users,
        spine=spine,
    )
    build(root, "local")
    local = content(root, "training")
    build(root, "dask")
    assert_same(local, content(root, "training"))


@pytest.fixture
def own_cluster(request: pytest.FixtureRequest) -> Any:
    """A LocalCluster of its own (two worker processes), for a test that kills workers or
    limits their memory: `request.param` holds its settings."""
    import dask
    from distributed import Client

    from gristmill.execution.dask import local_cluster

    options = {"memory_limit": "2GB", "allowed_failures": 3, **getattr(request, "param", {})}
    failures = {"distributed.scheduler.allowed-failures": options["allowed_failures"]}
    with (
        dask.config.set(failures),
        local_cluster(2, 1, options["memory_limit"]) as cluster,
        Client(cluster) as client,
    ):
        yield cluster.scheduler_address, client


def build_while(root: Path, during: Any) -> tuple[RunSummary | None, BaseException | None]:
    """Build with the dask engine while `during()` runs in this thread."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            with Project.load(root) as project:
                outcome["summary"] = run(
                    project.use_engine("dask"), ["training"], full_refresh=True
                )
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    try:
        during(thread)
    finally:
        thread.join(300)
    return outcome.get("summary"), outcome.get("error")


def kill_a_busy_worker(client: Any, times: int = 1) -> Any:
    """SIGKILL the process of a worker running a partition of the dataset (`times` times,
    each time once a partition runs again)."""

    def during(thread: threading.Thread) -> None:
        killed = 0
        while thread.is_alive() and killed < times:
            busy = [
                w
                for w, keys in client.processing().items()
                if any("dataset training" in k for k in keys)
            ]
            if busy:
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed += 1
                time.sleep(0.5)
            time.sleep(0.01)
        assert killed == times, "the build ended before a worker could be killed"

    return during


def test_a_killed_worker_still_gives_the_local_build(tmp_path: Path, own_cluster: Any) -> None:
    address, client = own_cluster
    root = make_project(tmp_path, address, partitions=12, spine=4000, users=400)
    build(root, "local")
    local = content(root, "training")
    summary, error = build_while(root, kill_a_busy_worker(client))
    assert error is None and summary is not None and summary.ok, summary
    assert_same(local, content(root, "training"))


@pytest.mark.parametrize("own_cluster", [{"allowed_failures": 0}], indirect=True)
def test_a_build_that_loses_its_workers_fails_clearly_and_publishes_nothing(
    tmp_path: Path, own_cluster: Any
) -> None:
    address, client = own_cluster
    root = make_project(tmp_path, address, partitions=12, spine=4000, users=400)
    build(root, "local")
    local = content(root, "training")
    # Other data: a half-published dask build would show.
    with duckdb.connect(str(root / ".gristmill" / "warehouse.duckdb")) as db:
        db.execute("DELETE FROM raw.payments WHERE user_id % 2 = 0")
    summary, error = build_while(root, kill_a_busy_worker(client))
    assert error is None and summary is not None and not summary.ok
    [step] = summary.steps
    assert step.error is not None and "the workers that ran it died" in step.error
    assert "partition" in step.error and "payer" in step.error
    assert_same(local, content(root, "training"))
    with duckdb.connect(str(root / ".gristmill" / "warehouse.duckdb"), read_only=True) as db:
        tables = [r[0] for r in db.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    assert not [t for t in tables if t.startswith("_gm_")]
    assert not any((root / ".gristmill" / "staging").glob("dataset.*"))
    # A rerun converges on the local build of the data as it now is.
    client.wait_for_workers(2, timeout=60)
    build(root, "local")
    changed = content(root, "training")
    assert changed != local
    build(root, "dask")
    assert_same(changed, content(root, "training"))


class PeakMemory:
    """The peak RSS of each worker process of a cluster, sampled every 20 ms."""

    def __init__(self, client: Any) -> None:
        import psutil

        self.processes = [psutil.Process(pid) for pid in client.run(os.getpid).values()]
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stop.is_set():
            for process in self.processes:
                try:
                    self.peak = max(self.peak, process.memory_info().rss)
                except Exception:  # a worker that died: the build's outcome says so
                    continue
            time.sleep(0.02)

    def __enter__(self) -> PeakMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


LIMIT = 300 * 2**20


@pytest.mark.slow
@pytest.mark.parametrize("own_cluster", [{"memory_limit": LIMIT}], indirect=True)
def test_a_training_set_larger_than_a_workers_memory_builds(
    tmp_path: Path, own_cluster: Any
) -> None:
    address, client = own_cluster
    root = make_project(tmp_path, address, partitions=16)
    events, spine = 7_000_000, 300_000
    with duckdb.connect(str(root / ".gristmill" / "warehouse.duckdb")) as db:
        db.execute(
            "CREATE OR REPLACE TABLE raw.payments AS SELECT (n * 7919) % 50000 AS user_id,"
            f" TIMESTAMP '{START}' + INTERVAL ((n * 104729) % 2000000) SECOND AS paid_at,"
            " CAST((n * 31) % 10000 / 100 AS DECIMAL(12, 2)) AS amount,"
            " 'shop_' || (n % 500) AS shop, n % 5 AS units"
            f" FROM range({events}) AS r(n)"
        )
        db.execute(
            "CREATE OR REPLACE TABLE raw.decisions AS SELECT (n * 104723) % 50000 AS user_id,"
            f" TIMESTAMP '{START}' + INTERVAL ((n * 7907) % 2000000) SECOND AS decided_at,"
            f" TRUE AS label, CAST(n AS DECIMAL(10, 3)) AS asked FROM range({spine}) AS r(n)"
        )
        # What the query reads, in memory in one piece, is more than a worker may hold.
        size = (
            db.sql("SELECT user_id, paid_at, amount, shop, units FROM raw.payments")
            .to_arrow_table()
            .nbytes
        )
        assert size > LIMIT
        expected = db.execute(
            "SELECT count(*), sum(s.paid), count(s.last_amount), sum(s.shops) FROM ("
            " SELECT (SELECT sum(amount) FROM raw.payments AS p WHERE p.user_id = d.user_id"
            "  AND p.paid_at >= d.decided_at - INTERVAL 1 DAY AND p.paid_at <= d.decided_at) AS paid,"
            " NULL AS last_amount, NULL AS shops FROM raw.decisions AS d) AS s"
        ).fetchone()
    with PeakMemory(client) as memory:
        summary = build(root, "dask", ("users_only",))
    assert summary.steps[0].rows == spine
    print(f"peak worker RSS: {memory.peak / 2**20:.0f} MB of {LIMIT / 2**20:.0f} MB")
    assert memory.peak < LIMIT, f"a worker reached {memory.peak / 2**20:.0f} MB"
    with duckdb.connect(str(root / ".gristmill" / "warehouse.duckdb"), read_only=True) as db:
        got = db.execute("SELECT count(*), sum(paid_1d) FROM analytics.users_only").fetchone()
    assert got == expected[:2]


def test_tasks_share_their_hosts_cores(tmp_path: Path, dask_scheduler: str) -> None:
    from gristmill.config import ExecutionConfig
    from gristmill.execution import open_executor
    from gristmill.features.distributed import duckdb_threads

    executor = open_executor(ExecutionConfig(engine="dask", scheduler=dask_scheduler), tmp_path)
    try:
        # Two workers of one thread on this host: its cores split between them.
        assert duckdb_threads(executor) == max(1, (os.cpu_count() or 1) // 2)
    finally:
        executor.close()
    assert duckdb_threads(open_executor(ExecutionConfig(), tmp_path)) is None


def test_the_quickstart_training_set_on_dask_equals_local(
    tmp_path: Path, dask_scheduler: str
) -> None:
    """Its views have different entities (user, merchant): each is partitioned by its own."""
    from gristmill.quickstart.project import create_quickstart
    from tests.cli.test_cli import gristmill

    root = create_quickstart(tmp_path / "demo", rows=3_000)
    config = (root / "gristmill.toml").read_text()
    assert "[execution]" not in config
    execution = f'\n[execution]\nscheduler = "{dask_scheduler}"\npartitions = 3\n'
    (root / "gristmill.toml").write_text(config + execution)
    done = gristmill("ingest", "-p", str(root))
    assert done.returncode == 0, done.stderr
    with Project.load(root) as project:
        summary = run(project, ["+fraud_training"], kinds={"transform", "dataset"})
        assert summary.ok, [s.error for s in summary.steps]
        views = {s.view.name: s.view.entity for s in project_selections(project)}
    assert len({tuple(e) for e in views.values()}) == 2, views
    local = content(root, "fraud_training")
    summary = build(root, "dask", ("fraud_training",))
    assert summary.steps[0].mode == "table, on workers"
    assert_same(local, content(root, "fraud_training"))


def project_selections(project: Project) -> list[Any]:
    from gristmill.graph.load import load_graph

    training = load_graph(project).graph["fraud_training"].training
    assert training is not None
    return list(training.selections)

"""Shared fixtures: real database servers, and projects in temporary folders.

A test that needs a server skips when none is reachable, unless the environment
variable CI is set: there a missing server is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.logical_postgres import POSTGRES_BIN, LogicalPostgres, start_logical_postgres

PG_URL = os.environ.get("GRISTMILL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("GRISTMILL_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}, and CI is set: integration tests must run in CI.")
    pytest.skip(f"{message}; start it to run this test.")


def mysql_connect() -> Any:
    """A PyMySQL connection to the test database, autocommit, in UTC."""
    import pymysql

    url = urlsplit(MYSQL_URL)
    return pymysql.connect(
        host=url.hostname,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        database=url.path.lstrip("/"),
        autocommit=True,
        charset="utf8mb4",
        init_command="SET time_zone = '+00:00'",
    )


@pytest.fixture
def pg_url() -> str:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    return PG_URL


@pytest.fixture
def mysql_url() -> str:
    require_server("MariaDB/MySQL", "127.0.0.1", 3306)
    return MYSQL_URL


@pytest.fixture
def unique_name() -> str:
    """A name no other test (or parallel test worker) uses, for tables and schemas."""
    return "t_" + uuid.uuid4().hex[:10]


@pytest.fixture
def project_dir(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "project"
    root.mkdir()
    yield root


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_config(request: Any, tmp_path: Path, unique_name: str) -> Iterator[dict[str, Any]]:
    """The [warehouse] entry of a project, for every warehouse backend."""
    if request.param == "duckdb":
        yield {"type": "duckdb", "path": str(tmp_path / "wh.duckdb"), "raw_schema": "raw"}
        return
    require_server("PostgreSQL", "127.0.0.1", 5432)
    yield {"type": "postgres", "url": PG_URL, "raw_schema": unique_name}
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as db:
        for schema in (unique_name, f"_gristmill_{unique_name}"):
            db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    """The address of a LocalCluster (two worker processes, 2 GB each) shared by this
    test process's Dask tests: a project points [execution] scheduler at it, instead of
    paying a cluster's start for every test."""
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    from gristmill.execution.dask import local_cluster

    with local_cluster(2, 1, "2GB") as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def dask_tcp_cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A real `dask scheduler` and two `dask worker` processes (no nanny: a killed one
    stays dead) over TCP, as on a cluster of machines; the address and the workers."""
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}  # tasks may be functions of tests/
    dask = str(Path(sys.executable).with_name("dask"))
    folder = tmp_path / "dask-cluster"
    folder.mkdir()
    common: dict[str, Any] = {"env": env, "cwd": folder, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        **common,
    )
    alone = ("--no-dashboard", "--no-nanny")
    workers = [
        subprocess.Popen(
            [dask, "worker", address, "--nthreads", "1", "--memory-limit", "2GB", *alone],
            **common,
        )
        for _ in range(2)
    ]
    try:
        yield address, workers
    finally:
        for process in [*workers, scheduler]:
            process.terminate()
        for process in [*workers, scheduler]:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class ObjectStoreStaging:
    """An S3 bucket (moto's server) and a LocalCluster whose workers reach it."""

    scheduler: str
    url: str
    """The [execution] staging URL: a folder of the bucket."""
    bucket: str

    def objects(self) -> list[str]:
        import boto3

        found = boto3.client("s3").list_objects_v2(Bucket=self.bucket)
        return [o["Key"] for o in found.get("Contents", [])]


@pytest.fixture(scope="session")
def s3_staging() -> Iterator[ObjectStoreStaging]:
    """Staging on S3 as on a cluster of machines: moto's S3 server in this process, its
    endpoint and keys in the environment (where s3fs, the driver's and the workers',
    finds them), and a cluster started after them, so that its workers inherit them."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("moto is not installed, and CI is set: pip install -e '.[dev]'")
        pytest.skip("moto is not installed (pip install -e '.[dev]')")
    pytest.importorskip("s3fs", reason="s3fs is not installed (pip install -e '.[dev]')")
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    import boto3

    from gristmill.execution.dask import local_cluster

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    settings = {
        "AWS_ACCESS_KEY_ID": "gristmill",
        "AWS_SECRET_ACCESS_KEY": "gristmill",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        bucket = "gristmill-staging"
        boto3.client("s3").create_bucket(Bucket=bucket)
        with local_cluster(2, 1, "2GB") as cluster:
            yield ObjectStoreStaging(cluster.scheduler_address, f"s3://{bucket}/gm", bucket)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


@pytest.fixture(scope="session")
def logical_postgres() -> Iterator[LogicalPostgres]:
    """A cluster with wal_level=logical started for the session (the shared server on 5432
    runs with wal_level=replica and stays as it is)."""
    if not (POSTGRES_BIN / "initdb").exists():
        message = f"PostgreSQL's initdb is not in {POSTGRES_BIN} (set GRISTMILL_TEST_PG_BIN)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}, and CI is set.")
        pytest.skip(message)
    with start_logical_postgres() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def built_quickstart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quickstart project (5,000 transactions, its fraud model trained), built once per
    test process; tests that change it work on a copy."""
    from gristmill.quickstart.project import run_quickstart

    root = tmp_path_factory.mktemp("quickstart") / "demo"
    assert run_quickstart(root, rows=5_000, traffic=False).ok
    return root

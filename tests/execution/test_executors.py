"""The executors: a Dask cluster (LocalCluster, and a real scheduler with two worker
processes over TCP) runs a job's partitions, reschedules those of a killed worker, and
fails clearly when it can't be reached; staging left by a killed driver is removed."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gristmill.config import ExecutionConfig, load_config
from gristmill.errors import (
    ConfigError,
    ConnectionFailedError,
    ExecutionError,
    MissingDependencyError,
)
from gristmill.execution import open_executor
from gristmill.execution.staging import StagingArea
from tests.helpers import free_port

pytest.importorskip("distributed", reason="the dask extra is not installed")


def slow_square(n: int) -> int:
    time.sleep(0.3)
    return n * n


def test_a_cluster_runs_each_partition_in_order(tmp_path: Path, dask_scheduler: str) -> None:
    executor = open_executor(ExecutionConfig(engine="dask", scheduler=dask_scheduler), tmp_path)
    try:
        assert executor.DISTRIBUTED
        assert executor.map(math.factorial, [5, 0, 10], label="factorials") == [120, 1, 3628800]
        assert executor.partitions == 8  # four per worker thread
    finally:
        executor.close()


def test_a_failing_partition_is_named(tmp_path: Path, dask_scheduler: str) -> None:
    executor = open_executor(ExecutionConfig(engine="dask", scheduler=dask_scheduler), tmp_path)
    try:
        with pytest.raises(ExecutionError, match=r"roots -1 failed: ValueError"):
            executor.map(math.sqrt, [4, -1, 9], label="roots")
    finally:
        executor.close()


def test_local_runs_in_this_process(tmp_path: Path) -> None:
    executor = open_executor(ExecutionConfig(), tmp_path)
    assert not executor.DISTRIBUTED
    assert executor.map(os.getpid, [()] * 0, label="none") == []
    with pytest.raises(ExecutionError, match=r"roots -1 failed"):
        executor.map(math.sqrt, [-1], label="roots")


def test_an_unreachable_scheduler_fails_fast_naming_it(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    config = ExecutionConfig(engine="dask", scheduler=address, connect_timeout="2s")
    executor = open_executor(config, tmp_path)
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError, match=rf"scheduler at {address} did not answer"):
        executor.map(math.factorial, [1], label="one")
    assert time.monotonic() - started < 10


def test_without_the_dask_extra_the_pip_command_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'gristmill\[dask\]'"):
        open_executor(ExecutionConfig(engine="dask"), tmp_path)


def test_execution_config_is_checked(tmp_path: Path) -> None:
    (tmp_path / "gristmill.toml").write_text('[execution]\nengine = "spark"\n')
    with pytest.raises(ConfigError, match=r"execution.engine"):
        load_config(tmp_path / "gristmill.toml")
    (tmp_path / "gristmill.toml").write_text('[execution]\nscheduler = "127.0.0.1:8786"\n')
    with pytest.raises(ConfigError, match=r"tcp://"):
        load_config(tmp_path / "gristmill.toml")
    (tmp_path / "gristmill.toml").write_text('[execution]\nmemory_limit = "lots"\n')
    with pytest.raises(ConfigError, match=r"not a size"):
        load_config(tmp_path / "gristmill.toml")


def test_a_local_cluster_is_started_for_the_command_and_stopped(tmp_path: Path) -> None:
    config = ExecutionConfig(engine="dask", workers=1, memory_limit="1GB")
    executor = open_executor(config, tmp_path)
    assert executor.map(math.factorial, [3], label="one") == [6]
    cluster = executor._cluster  # type: ignore[attr-defined]
    assert len(cluster.workers) == 1
    executor.close()
    assert cluster.status.name == "closed"


def test_a_real_scheduler_reschedules_a_killed_workers_partitions(
    tmp_path: Path, dask_tcp_cluster: tuple[str, list[subprocess.Popen[bytes]]]
) -> None:
    address, workers = dask_tcp_cluster
    config = ExecutionConfig(engine="dask", scheduler=address, connect_timeout="30s")
    executor = open_executor(config, tmp_path)
    try:
        executor.client.wait_for_workers(2, timeout=30)
        items = list(range(12))

        def kill_one_worker() -> None:
            time.sleep(0.8)
            workers[0].send_signal(signal.SIGKILL)

        import threading

        killer = threading.Thread(target=kill_one_worker)
        killer.start()
        assert executor.map(slow_square, items, label="squares") == [n * n for n in items]
        killer.join()
        assert workers[0].wait(5) == -signal.SIGKILL
    finally:
        executor.close()


def test_staging_left_by_a_killed_driver_is_removed(tmp_path: Path) -> None:
    root = tmp_path / "staging"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    host = socket.gethostname()
    left = root / f"training_set.{dead.pid}.0badc0de.{host}"
    alive = root / f"training_set.{os.getpid()}.0000beef.{host}"
    old_elsewhere = root / "ingest.12.deadbeef.other-host.example"
    recent_elsewhere = root / "ingest.13.deadbeef.another-host"
    for folder in (left, alive, old_elsewhere, recent_elsewhere):
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"x")
    day_ago = time.time() - 2 * 86400
    os.utime(old_elsewhere, (day_ago, day_ago))
    area = StagingArea.create(root.as_uri(), "scoring")
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [alive.name, recent_elsewhere.name, area.url.rsplit("/", 1)[1]]
    )
    area.makedirs("out")
    (Path(area.path("out")) / "part-1.parquet").write_bytes(b"y")
    assert area.files("out") == [area.path("out") + "/part-1.parquet"]
    area.remove()
    assert not Path(area.path("")).exists()

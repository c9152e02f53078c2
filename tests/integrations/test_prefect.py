"""The Prefect integration against a real Prefect server (`prefect server start`, SQLite,
in a temporary PREFECT_HOME): a flow run per `gristmill run`, a task per asset,
failures, deployments from [schedules] served and triggered, errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from gristmill.project import Project
from tests.helpers import write_project

pytest.importorskip("prefect")

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import TaskRun
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

SERVER_START_TIMEOUT = 60.0
ASSETS = {"raw.orders", "raw.users", "order_totals", "big_users", "user_names"}
EDGES = [("raw.orders", "order_totals"), ("order_totals", "big_users"), ("raw.users", "user_names")]


def _free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: the Prefect tests must run in CI.")
    pytest.skip(reason)


@dataclass
class PrefectServer:
    url: str
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        """For subprocesses: this server, and this gristmill (an absolute PYTHONPATH: a
        worker starts flow runs in another folder)."""
        return {
            **_env(),
            "PREFECT_API_URL": self.url,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            **extra,
        }


def _env() -> dict[str, str]:
    import gristmill

    src = str(Path(gristmill.__file__).resolve().parents[1])
    paths = [src, *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    prefect = Path(sys.executable).with_name("prefect")
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/prefect.db",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    }
    log = (home / "server.log").open("w")
    try:
        process = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        _unavailable(f"prefect server start could not be run: {exc}")
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (home / "server.log").read_text()[-2000:]
                _unavailable(
                    f"the Prefect server did not start within {SERVER_START_TIMEOUT:g}s:\n{tail}"
                )
            time.sleep(0.3)
        with temporary_settings({PREFECT_API_URL: url, PREFECT_HOME: str(home)}):
            yield PrefectServer(url, home)
    finally:
        _drain_prefect_workers()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _drain_prefect_workers() -> None:
    """Send the logs and events this process still holds before the server stops: at exit
    Prefect would retry them against a stopped server for a minute."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=5)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """orders -> order_totals -> big_users, users -> user_names; a nightly schedule."""
    root = tmp_path / "project"
    (root / "transforms").mkdir(parents=True)
    app = tmp_path / "app.sqlite"
    with sqlite3.connect(app) as db:
        db.executescript(
            """
            CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,
              amount DOUBLE NOT NULL);
            INSERT INTO users VALUES (1, 'Ana'), (2, 'Bo');
            INSERT INTO orders VALUES (1, 1, 10.5), (2, 1, 4.0), (3, 2, 100.0);
            """
        )
    write_project(
        root,
        {
            "app": {
                "type": "sqlite",
                "path": str(app),
                "tables": {"users": {"mode": "full"}, "orders": {"mode": "full"}},
            }
        },
        warehouse={"type": "duckdb", "path": str(tmp_path / "wh.duckdb")},
        catalog={"path": str(tmp_path / "catalog.sqlite")},
        schedules={
            "nightly": {
                "cron": "0 2 * * *",
                "select": "+big_users",
                "timezone": "Africa/Lagos",
                "retries": 2,
                "retry_delay": "1s",
            }
        },
    )
    transforms = {
        "order_totals.sql": "SELECT user_id, sum(amount) AS total FROM orders GROUP BY user_id",
        "big_users.sql": "SELECT * FROM order_totals WHERE total > 50",
        "user_names.sql": "SELECT id, name FROM users",
    }
    for name, sql in transforms.items():
        (root / "transforms" / name).write_text(sql + "\n")
    return root


def _task_runs(flow_run_id: UUID) -> dict[str, TaskRun]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {run.name: run for run in runs}


def _catalog(root: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    with Project.load(root) as project:
        [last] = project.catalog.runs(1)
        steps = project.catalog.steps(last["id"])
    assert len(steps) == len({s["asset"] for s in steps}), "one step per asset"
    return last, {s["asset"]: s for s in steps}


def _gristmill(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gristmill", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- the flow ------------------------------------------------------------------------------
def test_a_flow_run_is_a_gristmill_run_with_a_task_per_asset(
    prefect_server: PrefectServer, project: Path
) -> None:
    from gristmill.integrations.prefect import flow_for

    flow = flow_for(project)
    assert flow.name == "gristmill-test"
    state = flow(return_state=True)
    assert state.is_completed(), state.message
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
    assert flow_run.state is not None and flow_run.state.is_completed()

    tasks = _task_runs(flow_run_id)
    assert set(tasks) == ASSETS
    assert all(t.state is not None and t.state.is_completed() for t in tasks.values())
    for up, down in EDGES:
        up_end, down_start = tasks[up].end_time, tasks[down].start_time
        assert up_end is not None and down_start is not None and up_end <= down_start
    # Each task waits on its upstream assets' tasks and nothing else: the two branches
    # (orders, users) are independent and may run at once.
    ids = {t.id: name for name, t in tasks.items()}
    waits = {
        name: {ids[getattr(i, "id", None)] for i in t.task_inputs.get("wait_for", [])}
        for name, t in tasks.items()
    }
    assert waits == {
        "raw.orders": set(),
        "raw.users": set(),
        "order_totals": {"raw.orders"},
        "big_users": {"order_totals"},
        "user_names": {"raw.users"},
    }

    run, steps = _catalog(project)
    assert run["status"] == "ok"
    assert run["command"] == f"prefect gristmill-test ({flow_run.name}): run"
    assert {name: s["status"] for name, s in steps.items()} == dict.fromkeys(ASSETS, "ok")

    # A second flow run finds the derived tables up to date, as `gristmill run` would.
    state = flow(return_state=True)
    assert state.is_completed()
    _, steps = _catalog(project)
    assert steps["big_users"]["status"] == "up_to_date"


def test_a_failing_asset_fails_its_task_and_the_flow_run_and_skips_downstream(
    prefect_server: PrefectServer, project: Path
) -> None:
    from gristmill.integrations.prefect import flow_for

    (project / "transforms" / "order_totals.sql").write_text(
        "SELECT user_id, sum(amount) AS total FROM orders GROUP BY no_such_column\n"
    )
    state = flow_for(project, retries=1, retry_delay=0)(return_state=True)
    assert state.is_failed()
    assert "order_totals" in str(state.message) and "no_such_column" in str(state.message)
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None

    tasks = _task_runs(flow_run_id)
    assert set(tasks) == ASSETS
    failed = tasks["order_totals"]
    assert failed.state is not None and failed.state.is_failed()
    assert failed.run_count == 2  # retried once
    skipped = tasks["big_users"]
    assert skipped.state is not None and skipped.state.name == "NotReady"
    assert skipped.start_time is None  # never ran
    for name in ("raw.orders", "raw.users", "user_names"):
        assert tasks[name].state is not None and tasks[name].state.is_completed()

    run, steps = _catalog(project)
    assert run["status"] == "failed"
    assert steps["order_totals"]["status"] == "failed"
    assert "no_such_column" in steps["order_totals"]["error"]
    assert steps["big_users"]["status"] == "skipped"
    assert steps["big_users"]["error"] == "upstream order_totals failed"
    assert steps["user_names"]["status"] == "ok"


WHERE_IT_RAN = """
import os

import pyarrow as pa

from gristmill import transform


@transform(inputs=["{input}"])
def {name}({input}: pa.Table) -> pa.Table:
    return pa.table({{"n": [{input}.num_rows], "pid": [os.getpid()]}})
"""


@pytest.mark.slow
def test_a_flow_of_a_dask_project_runs_its_python_assets_on_the_cluster(
    prefect_server: PrefectServer, project: Path
) -> None:
    """Prefect orchestrates, Dask executes: with `[execution] engine = "dask"` and a
    LocalCluster started for the run, the flow's Python transforms run on the cluster's
    worker processes (two independent ones from Prefect's threads at once), SQL in the
    warehouse, and the catalog is the driver's."""
    from gristmill.integrations.prefect import flow_for

    pytest.importorskip("distributed", reason="the dask extra is not installed")
    for name, input in (("orders_seen", "orders"), ("users_seen", "users")):
        (project / "transforms" / f"{name}.py").write_text(
            WHERE_IT_RAN.format(name=name, input=input)
        )
    config = project / "gristmill.toml"
    config.write_text(
        config.read_text()
        + '\n[execution]\nengine = "dask"\nscheduler = "local"\nworkers = 2\n'
        + 'memory_limit = "1GB"\n'
    )
    state = flow_for(project)(return_state=True)
    assert state.is_completed(), state.message
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    tasks = _task_runs(flow_run_id)
    assert set(tasks) == ASSETS | {"orders_seen", "users_seen"}
    assert all(t.state is not None and t.state.is_completed() for t in tasks.values())

    run, steps = _catalog(project)
    assert run["status"] == "ok"
    assert {s["status"] for s in steps.values()} == {"ok"}
    with Project.load(project) as loaded:
        seen = {
            table: loaded.warehouse.query_arrow(f"SELECT n, pid FROM analytics.{table}").to_pylist()
            for table in ("orders_seen", "users_seen")
        }
        totals = loaded.warehouse.query_arrow(
            "SELECT user_id, total FROM analytics.order_totals ORDER BY user_id"
        ).to_pylist()
    assert [r["n"] for r in seen["orders_seen"]] == [3]
    assert [r["n"] for r in seen["users_seen"]] == [2]
    pids = {r["pid"] for rows in seen.values() for r in rows}
    assert os.getpid() not in pids, "the Python transforms ran in the driver, not on Dask"
    assert totals == [{"user_id": 1, "total": 14.5}, {"user_id": 2, "total": 100.0}]


# -- deployments ---------------------------------------------------------------------------
def _read_json(stream: Any, deadline: float) -> dict[str, Any]:
    """The JSON document `deploy --json` prints before it starts serving."""
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        lines.append(line)
        if line.rstrip() == "}":
            document: dict[str, Any] = json.loads("".join(lines))
            return document
    raise AssertionError(f"no JSON from deploy: {''.join(lines)}")


@pytest.mark.slow
def test_deploy_serves_the_schedules_as_deployments_that_run(
    prefect_server: PrefectServer, project: Path
) -> None:
    from prefect.deployments import run_deployment

    serve_env = prefect_server.env(PREFECT_RUNNER_POLL_FREQUENCY="1")
    del serve_env["PREFECT_API_URL"]  # --api-url says it
    command = ["deploy", "prefect", "--serve", "--json", "-p", str(project)]
    serving = subprocess.Popen(
        [sys.executable, "-m", "gristmill", *command, "--api-url", prefect_server.url],
        env=serve_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert serving.stdout is not None
        deployed = _read_json(serving.stdout, time.monotonic() + 40)
        assert deployed["api_url"] == prefect_server.url
        names = [d["name"] for d in deployed["deployments"]]
        assert names == ["gristmill-test/nightly", "gristmill-test/all"]

        with get_client(sync_client=True) as client:
            nightly = client.read_deployment_by_name("gristmill-test/nightly")
            everything = client.read_deployment_by_name("gristmill-test/all")
        [schedule] = nightly.schedules
        assert schedule.schedule.cron == "0 2 * * *"  # type: ignore[union-attr]
        assert schedule.schedule.timezone == "Africa/Lagos"  # type: ignore[union-attr]
        assert nightly.parameters["select"] == ["+big_users"]
        assert nightly.parameters["retries"] == 2
        assert nightly.parameters["project_dir"] == str(project.resolve())
        assert everything.schedules == []

        flow_run = run_deployment("gristmill-test/nightly", timeout=40)
        assert flow_run.state is not None and flow_run.state.is_completed(), flow_run.state
        tasks = _task_runs(flow_run.id)
        assert set(tasks) == {"raw.orders", "order_totals", "big_users"}
        run, steps = _catalog(project)
        assert run["status"] == "ok"
        assert run["command"] == f"prefect nightly ({flow_run.name}): run +big_users"
        assert set(steps) == set(tasks)
    finally:
        serving.send_signal(signal.SIGINT)
        try:
            serving.wait(timeout=15)
        except subprocess.TimeoutExpired:
            serving.kill()
            serving.wait()


@pytest.mark.slow
def test_deploy_on_a_work_pool_that_a_process_worker_runs(
    prefect_server: PrefectServer, project: Path
) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.deployments import run_deployment

    from gristmill.errors import NotFoundError
    from gristmill.integrations.prefect import deploy

    with pytest.raises(NotFoundError) as caught:
        deploy(project, work_pool="nope")
    assert f"The Prefect server at {prefect_server.url} has no work pool 'nope'" in str(
        caught.value
    )
    assert "prefect work-pool create nope --type process" in str(caught.value)

    env = prefect_server.env()
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="gm", type="process"))
    prefect = Path(sys.executable).with_name("prefect")
    worker = subprocess.Popen(  # started first: it imports while the deployments are made
        [str(prefect), "worker", "start", "--pool", "gm"],
        env=env | {"PREFECT_WORKER_QUERY_SECONDS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # A schedule renamed since the last deploy: its old deployment goes.
    assert "gristmill-test/nightly" in [d["name"] for d in deploy(project).deployments]
    config = project / "gristmill.toml"
    config.write_text(config.read_text().replace("[schedules.nightly]", "[schedules.hourly]"))
    done = _gristmill("deploy", "prefect", "-p", str(project), "--work-pool", "gm", env=env)
    assert done.returncode == 0, done.stderr
    assert f"Prefect API: {prefect_server.url}" in done.stdout
    assert "removed gristmill-test/nightly" in done.stdout
    with get_client(sync_client=True) as client:
        everything = client.read_deployment_by_name("gristmill-test/all")
        hourly = client.read_deployment_by_name("gristmill-test/hourly")
        with pytest.raises(ObjectNotFound):
            client.read_deployment_by_name("gristmill-test/nightly")
    assert everything.work_pool_name == hourly.work_pool_name == "gm"
    assert everything.entrypoint == "gristmill.integrations.prefect.gristmill_run"

    try:
        flow_run = run_deployment("gristmill-test/all", timeout=45)
        assert flow_run.state is not None and flow_run.state.is_completed(), flow_run.state
        assert set(_task_runs(flow_run.id)) == ASSETS
        run, _ = _catalog(project)
        assert run["command"] == f"prefect all ({flow_run.name}): run"
        assert run["status"] == "ok"
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


# -- errors --------------------------------------------------------------------------------
def test_a_server_that_does_not_answer_is_named_within_the_timeout(project: Path) -> None:
    from gristmill.errors import ConnectionFailedError
    from gristmill.integrations.prefect import check_server, deploy

    # Accepts connections (the kernel's backlog) and never answers.
    with closing(socket.socket()) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/api"
        started = time.monotonic()
        with pytest.raises(ConnectionFailedError) as caught:
            check_server(url, timeout=0.5)
        assert time.monotonic() - started < 5
    assert f"The Prefect server at {url} did not answer within 0.5s" in str(caught.value)

    refused = f"http://127.0.0.1:{_free_port()}/api"
    with (
        temporary_settings({PREFECT_API_URL: refused}),
        pytest.raises(ConnectionFailedError) as caught,
    ):
        deploy(project, work_pool="gm")
    assert f"The Prefect server at {refused} cannot be reached" in str(caught.value)


def test_deploy_says_where_runs_execute(project: Path) -> None:
    result = _gristmill("deploy", "prefect", "-p", str(project), env=_env())
    assert result.returncode == 2
    assert "--serve" in result.stderr and "--work-pool NAME" in result.stderr


def test_without_prefect_the_command_names_the_pip_command(project: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["prefect"] = None  # as if not installed
        from gristmill.cli.main import main
        sys.argv = ["gristmill", "deploy", "prefect", "--serve", "-p", sys.argv[1]]
        main()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(project)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "pip install 'gristmill[prefect]'" in " ".join(result.stderr.split())


def test_selectors_and_schedule_names_are_checked_before_anything_runs(project: Path) -> None:
    from gristmill.errors import ConfigError
    from gristmill.integrations.prefect import deployments_for, flow_for

    with pytest.raises(ConfigError, match="Nothing in the project is called 'order_total'"):
        flow_for(project, "+order_total")
    with pytest.raises(ConfigError, match="retry_delay: 'soon' is not a duration"):
        flow_for(project, retry_delay="soon")
    assert flow_for(project, "+big_users").parameters.properties["select"]["default"] == [
        "+big_users"
    ]

    config = project / "gristmill.toml"
    config.write_text(config.read_text().replace("[schedules.nightly]", "[schedules.all]"))
    with pytest.raises(ConfigError, match=r"schedules\.all: 'all' is the name of the deployment"):
        deployments_for(project)

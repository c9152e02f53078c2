"""The project's asset graph as a Prefect flow, and its schedules as Prefect deployments.

`flow_for(project_dir)` gives a flow whose tasks are the selected assets (task and task
run named after the asset), each waiting on its upstream assets' tasks, so independent
assets run at once on the flow's thread pool. Each task runs its one asset through
gristmill's own runner: a flow run is one run in the catalog (`gristmill runs`), with a
step per asset, exactly as `gristmill run` records it. A failed asset fails its task,
its downstream tasks never start (Prefect leaves them Pending, "NotReady") and are
recorded skipped, and the flow run fails naming what failed. Retries are per task:
only the asset that failed runs again, and the catalog records its last attempt.

    from gristmill.integrations.prefect import flow_for

    nightly = flow_for("path/to/project", select=["ingest+"], retries=2)
    nightly()                                   # a flow run now
    nightly.serve(name="nightly", cron="0 2 * * *")

`deployments_for(project_dir)` makes one deployment per `[schedules.NAME]` (its cron and
timezone, its retries) and one unscheduled deployment, `all`, of the whole graph:
`gristmill deploy prefect` registers them. Their entrypoint is the module path of
`gristmill_run`, so a worker of a process work pool, in an environment where gristmill
and the project's folder are installed, runs them with the deployment's parameters.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError, ConnectionFailedError, GristmillError

try:
    import prefect
    from prefect.cache_policies import NO_CACHE
    from prefect.task_runners import ThreadPoolTaskRunner
except ImportError:  # pragma: no cover - exercised without the extra installed
    from gristmill.errors import MissingDependencyError

    raise MissingDependencyError("prefect", "prefect", "The Prefect integration") from None

if TYPE_CHECKING:
    from prefect import Flow, Task
    from prefect.deployments.runner import RunnerDeployment
    from prefect.task_runners import TaskRunner

    from gristmill.graph.run import Runner, StepResult

__all__ = [
    "ALL",
    "AssetFailedError",
    "Deployed",
    "RunFailedError",
    "api_url",
    "check_server",
    "deploy",
    "deployments_for",
    "flow_for",
    "gristmill_run",
]

ALL = "all"
"""The name of the unscheduled deployment of the whole graph."""
TAG = "gristmill"
"""Every deployment `deployments_for` makes carries this tag."""
HEALTH_TIMEOUT = 5.0
"""Seconds the Prefect server has to answer /health before deploying gives up."""


class AssetFailedError(GristmillError):
    """An asset's step failed: its Prefect task fails with this."""


class RunFailedError(GristmillError):
    """A step of the flow's run failed: the flow run fails with this."""


# -- the flow ------------------------------------------------------------------------------
def flow_for(
    project_dir: str | os.PathLike[str],
    select: str | Sequence[str] = (),
    *,
    name: str | None = None,
    full_refresh: bool = False,
    retries: int = 0,
    retry_delay: str | float = "1m",
    workers: int | None = None,
) -> Flow[..., dict[str, Any]]:
    """A Prefect flow that brings the selected assets of the project up to date.

    `select` takes the selectors of `gristmill run` (none: every asset); `retries` and
    `retry_delay` (a duration: "30s", "5m"; or seconds) apply to each asset's task; `workers` is how
    many assets may run at once (default: `[run] workers` of gristmill.toml). The flow is
    named `name`, by default `gristmill-<project name>`. Its parameters (the project,
    the selectors, full_refresh, retries) default to the values given here. The
    selectors are checked now: one that names nothing raises ConfigError.
    """
    from gristmill.durations import parse_duration
    from gristmill.graph.load import load_graph
    from gristmill.project import Project

    root = Path(project_dir).resolve()
    selectors = [
        s
        for selector in ([select] if isinstance(select, str) else select)
        for s in selector.split()
    ]
    with Project.load(root) as project:
        config = project.config
        load_graph(project).graph.select(selectors)
    if isinstance(retry_delay, str):
        try:
            delay = parse_duration(retry_delay).total_seconds()
        except ValueError as exc:
            raise ConfigError(f"retry_delay: {exc}") from None
    else:
        delay = float(retry_delay)
    flow_name = name or f"gristmill-{config.name}"

    def gristmill_run(
        project_dir: str = str(root),
        select: list[str] = selectors,  # never mutated
        full_refresh: bool = full_refresh,
        retries: int = retries,
        retry_delay_seconds: float = delay,
    ) -> dict[str, Any]:
        return _run(project_dir, select, full_refresh, retries, retry_delay_seconds, workers)

    # The module path of the flow, for a deployment's entrypoint, is that of the
    # module-level `gristmill_run`, which takes the same parameters.
    gristmill_run.__qualname__ = "gristmill_run"
    gristmill_run.__doc__ = _FLOW_DOC
    task_runner: TaskRunner[Any] = ThreadPoolTaskRunner(max_workers=workers or config.run.workers)
    decorate = prefect.flow(
        name=flow_name,
        task_runner=task_runner,
        description=f"gristmill run of {root}" + "".join(f" {s}" for s in selectors),
        validate_parameters=True,
    )
    made: Flow[..., dict[str, Any]] = decorate(gristmill_run)
    return made


_FLOW_DOC = """Bring the selected assets of the gristmill project up to date, one task per asset.

Args:
    project_dir: The project's folder (where gristmill.toml is).
    select: The selectors of `gristmill run`: NAME, +NAME, NAME+; none: every asset.
    full_refresh: Rebuild from scratch, ignoring what is up to date.
    retries: How many times an asset's task is tried again after failing.
    retry_delay_seconds: The wait before each retry.
"""


@prefect.flow(name="gristmill", validate_parameters=True)
def gristmill_run(
    project_dir: str,
    select: list[str] | None = None,
    full_refresh: bool = False,
    retries: int = 0,
    retry_delay_seconds: float = 60.0,
) -> dict[str, Any]:
    """Bring the selected assets of the gristmill project up to date, one task per asset.

    Args:
        project_dir: The project's folder (where gristmill.toml is).
        select: The selectors of `gristmill run`: NAME, +NAME, NAME+; none: every asset.
        full_refresh: Rebuild from scratch, ignoring what is up to date.
        retries: How many times an asset's task is tried again after failing.
        retry_delay_seconds: The wait before each retry.
    """
    return _run(project_dir, select or [], full_refresh, retries, retry_delay_seconds, None)


def _run(
    project_dir: str,
    select: list[str],
    full_refresh: bool,
    retries: int,
    retry_delay_seconds: float,
    workers: int | None,
) -> dict[str, Any]:
    """The flow's body: the run in the catalog, a task per step, the outcome. At most
    `workers` steps (default: `[run] workers`) run at once, whatever the task runner."""
    from prefect import get_run_logger
    from prefect.futures import PrefectFuture, wait
    from prefect.runtime import deployment, flow_run

    from gristmill.graph.load import load_graph
    from gristmill.graph.run import Runner
    from gristmill.project import Project

    logger = get_run_logger()
    # A worker runs the module-level flow, whatever the deployment's flow is named: the
    # deployment names the run better.
    where = deployment.get_name() or flow_run.get_flow_name() or "gristmill"
    command = f"prefect {where} ({flow_run.get_name()}): run" + "".join(f" {s}" for s in select)
    with _gristmill_logs_to_prefect(), Project.load(project_dir) as project:
        loaded = load_graph(project)
        runner = Runner(
            project,
            loaded,
            loaded.graph.select(select),
            full_refresh=full_refresh,
            workers=1,  # unused: Prefect's task runner runs the steps, `gate` bounds them
            on_step=None,
        )
        gate = threading.BoundedSemaphore(workers or project.config.run.workers)
        run_id = runner.start(command)
        logger.info("gristmill run %d of %s: %d steps", run_id, project.root, len(runner.steps))
        status = "failed"
        futures: dict[str, PrefectFuture[dict[str, Any]]] = {}
        try:
            for name in runner.steps:
                upstream = [
                    futures[u] for u in dict.fromkeys(runner.graph[name].upstream) if u in futures
                ]
                task = _asset_task(runner, gate, name, retries, retry_delay_seconds)
                futures[name] = task.submit(return_state=False, wait_for=upstream)
            wait(list(futures.values()))
            for name in runner.steps:
                if name not in runner.results:
                    _not_run(runner, name, futures[name])
            status = "ok" if all(r.ok for r in runner.results.values()) else "failed"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        except Exception:
            wait(list(futures.values()))  # no step outlives the run's open sources
            raise
        finally:
            summary = runner.finish(status)
    counts = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in summary.counts().items())
    logger.info("gristmill run %d: %s", run_id, counts or "nothing to do")
    if not summary.ok:
        failed = [s for s in summary.steps if s.status == "failed"]
        raise RunFailedError(
            f"gristmill run {run_id} failed: "
            + "; ".join(f"{s.name}: {s.error}" for s in failed)
            + f". The steps: gristmill runs {run_id} -p {project_dir}"
        )
    return summary.to_dict()


def _asset_task(
    runner: Runner,
    gate: threading.BoundedSemaphore,
    name: str,
    retries: int,
    retry_delay_seconds: float,
) -> Task[[], dict[str, Any]]:
    def step() -> dict[str, Any]:
        from prefect import get_run_logger
        from prefect.context import TaskRunContext

        logger = get_run_logger()
        context = TaskRunContext.get()
        attempt = context.task_run.run_count if context is not None else 1
        # Only the last attempt's failure is recorded in the catalog; Prefect's task run
        # keeps the others.
        with gate:
            result = runner.step(name, record_failure=attempt > retries)
        for warning in result.warnings:
            logger.warning("%s: %s", name, warning)
        for check in result.checks:
            if check["status"] != "pass":
                logger.warning(
                    "%s: check %s %s: %s",
                    name,
                    check["check"]["name"],
                    check["status"],
                    check["message"],
                )
        if not result.ok:
            raise AssetFailedError(f"{name} failed: {result.error}")
        logger.info("%s", _describe(result))
        return asdict(result)

    decorate = prefect.task(
        name=name,
        task_run_name=name,
        retries=retries,
        retry_delay_seconds=retry_delay_seconds,
        cache_policy=NO_CACHE,
        persist_result=False,
    )
    made: Task[[], dict[str, Any]] = decorate(step)
    return made


def _describe(result: StepResult) -> str:
    if result.status == "up_to_date":
        return f"{result.name}: up to date"
    parts = [result.mode, f"{result.rows:,} rows", f"{result.seconds:.2f}s"]
    return f"{result.name}: {result.status} (" + ", ".join(p for p in parts if p) + ")"


def _not_run(runner: Runner, name: str, future: Any) -> None:
    """Record a step whose task did not run (an upstream task failed), as `run` does."""
    upstream = runner.graph[name].upstream
    if any(u in runner.results and not runner.results[u].ok for u in upstream):
        runner.step(name)  # settles as skipped, naming the failed upstream step
        return
    state = future.state
    runner.skip(name, f"its Prefect task ended {state.name}: {state.message or 'not run'}")


_forwarding_lock = threading.Lock()
_forwarding: list[logging.Handler] = []
"""The handler sending gristmill's logs to Prefect, once per flow run in this process."""


@contextmanager
def _gristmill_logs_to_prefect() -> Iterator[None]:
    """While a flow runs, what gristmill's own loggers say (warnings, errors) goes to the
    run's Prefect log too. Outside flow runs, the handler is gone: it would complain of
    logs without a run."""
    from prefect.logging.handlers import APILogHandler

    logger = logging.getLogger("gristmill")
    with _forwarding_lock:
        handler = _forwarding[0] if _forwarding else APILogHandler()
        if not _forwarding:
            logger.addHandler(handler)
        _forwarding.append(handler)
    try:
        yield
    finally:
        with _forwarding_lock:
            handler = _forwarding.pop()
            if not _forwarding:
                logger.removeHandler(handler)


# -- deployments ---------------------------------------------------------------------------
def deployments_for(
    project_dir: str | os.PathLike[str], *, work_pool: str | None = None
) -> list[RunnerDeployment]:
    """One deployment per `[schedules.NAME]` of the project (its cron and timezone, its
    selectors and retries), and `all`: the whole graph, unscheduled, run on demand."""
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    from gristmill.durations import parse_duration
    from gristmill.project import Project

    root = Path(project_dir).resolve()
    with Project.load(root) as project:
        schedules = dict(sorted(project.config.schedules.items()))
        name = project.config.name
    if ALL in schedules:
        raise ConfigError(
            f"schedules.{ALL}: '{ALL}' is the name of the deployment of the whole graph."
            " Rename the schedule."
        )
    deployments: list[RunnerDeployment] = []
    for deployment, schedule in [*schedules.items(), (ALL, None)]:
        select = schedule.select if schedule else []
        retries = schedule.retries if schedule else 0
        retry_delay = schedule.retry_delay if schedule else "1m"
        delay = parse_duration(retry_delay).total_seconds()
        try:
            flow = flow_for(root, select, retries=retries, retry_delay=retry_delay)
        except ConfigError as exc:
            raise ConfigError(f"schedules.{deployment}.select: {exc}") from None
        described = (
            f"gristmill schedule {deployment} of {name}: {schedule.cron} ({schedule.timezone})"
            if schedule
            else f"Every asset of the gristmill project {name}, on demand"
        )
        deployments.append(
            flow.to_deployment(  # type: ignore[arg-type]
                deployment,
                schedules=[Cron(schedule.cron, timezone=schedule.timezone)] if schedule else None,
                parameters={
                    "project_dir": str(root),
                    "select": select,
                    "full_refresh": False,
                    "retries": retries,
                    "retry_delay_seconds": delay,
                },
                description=described,
                tags=[TAG, name],
                work_pool_name=work_pool,
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return deployments


def api_url() -> str:
    """The Prefect API the current settings point at; ConfigError when none is set (an
    ephemeral server would forget the deployments)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise ConfigError(
            "No Prefect server is set. Start one (prefect server start) and point at it:"
            " prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api"
            " (or pass --api-url)."
        )
    return str(url).rstrip("/")


def check_server(url: str, timeout: float = HEALTH_TIMEOUT) -> None:
    """Raise ConnectionFailedError naming `url` unless its /health answers within
    `timeout` seconds."""
    import httpx

    try:
        response = httpx.get(f"{url}/health", timeout=timeout)
        response.raise_for_status()
    except httpx.TimeoutException:
        raise ConnectionFailedError(
            f"The Prefect server at {url} did not answer within {timeout:g}s. Is it running"
            " (prefect server start)? Is PREFECT_API_URL right?"
        ) from None
    except httpx.HTTPStatusError as exc:
        raise ConnectionFailedError(
            f"{url}/health answered {exc.response.status_code}, not as a Prefect server"
            " does. Is PREFECT_API_URL (or --api-url) the address of the API, ending in /api?"
        ) from None
    except httpx.HTTPError as exc:
        raise ConnectionFailedError(
            f"The Prefect server at {url} cannot be reached: {exc}. Start it (prefect server"
            " start), or set PREFECT_API_URL to its address."
        ) from None


@dataclass
class Deployed:
    """What `deploy` registered: the API, and each deployment as `--json` prints it."""

    api_url: str
    work_pool: str | None
    deployments: list[dict[str, Any]]
    removed: list[str] = field(default_factory=list)
    """Deployments an earlier deploy made for schedules gristmill.toml no longer has."""
    runner_deployments: list[RunnerDeployment] = field(repr=False, default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "api_url": self.api_url,
            "work_pool": self.work_pool,
            "deployments": self.deployments,
            "removed": self.removed,
        }


def deploy(project_dir: str | os.PathLike[str], *, work_pool: str | None = None) -> Deployed:
    """Register the project's deployments (`deployments_for`) with the Prefect server of
    the current settings, on `work_pool` if given (it must exist). Fails within
    HEALTH_TIMEOUT seconds, naming the address, when the server does not answer."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from gristmill.errors import NotFoundError

    url = api_url()
    check_server(url)
    deployments = deployments_for(project_dir, work_pool=work_pool)
    if work_pool is not None:
        with get_client(sync_client=True) as client:
            try:
                client.read_work_pool(work_pool)
            except ObjectNotFound:
                raise NotFoundError(
                    f"The Prefect server at {url} has no work pool '{work_pool}'. Create it:"
                    f" prefect work-pool create {work_pool} --type process"
                ) from None
    described = []
    for deployment in deployments:
        deployment_id = deployment.apply(work_pool_name=work_pool)
        when = deployment.schedules[0].schedule if deployment.schedules else None
        cron, timezone = getattr(when, "cron", None), getattr(when, "timezone", None)
        described.append(
            {
                "name": f"{deployment.flow_name}/{deployment.name}",
                "id": str(deployment_id),
                "cron": cron,
                "timezone": timezone,
                "select": deployment.parameters["select"],
                "retries": deployment.parameters["retries"],
                "entrypoint": deployment.entrypoint,
            }
        )
    removed = _remove_stale(deployments)
    return Deployed(url, work_pool, described, removed, deployments)


def _remove_stale(deployments: list[RunnerDeployment]) -> list[str]:
    """Delete the deployments of this flow, tagged gristmill, that are not in
    `deployments`: those of schedules since removed from gristmill.toml."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterTags,
        FlowFilter,
        FlowFilterName,
    )

    flow_name = deployments[0].flow_name or ""
    current = {d.name for d in deployments}
    removed = []
    with get_client(sync_client=True) as client:
        existing = client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[TAG])),
        )
        for deployment in existing:
            if deployment.name not in current:
                client.delete_deployment(deployment.id)
                removed.append(f"{flow_name}/{deployment.name}")
    return sorted(removed)

"""`gristmill run`: bring the selected assets up to date, in dependency order, in parallel.

An asset's data version is a hash of its definition and of its upstream assets' data
versions (a raw table's version changes whenever a sync changes its rows). A derived
table whose recorded version equals the version it would now get is up to date and is
skipped. The decision is taken when an asset's upstream steps have settled, so a
transform downstream of a sync that found nothing new is skipped in the same run.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gristmill.catalog.base import AssetVersion, StepRecord
from gristmill.errors import CheckFailedError, GristmillError
from gristmill.graph.assets import ONLINE, RUNNABLE, Asset
from gristmill.graph.load import ProjectGraph, load_graph

if TYPE_CHECKING:
    from gristmill.ingest.run import OpenedSources
    from gristmill.project import Project

log = logging.getLogger(__name__)


@dataclass
class StepResult:
    name: str
    kind: str
    status: str
    """ok, up_to_date, failed, skipped (an upstream step failed)."""
    mode: str = ""
    rows: int = 0
    seconds: float = 0.0
    error: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """What a sync could not carry over by itself (a column added or dropped at the source)."""

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "up_to_date")


@dataclass
class RunSummary:
    run_id: int | None
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for step in self.steps:
            counts[step.status] = counts.get(step.status, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "steps": [asdict(s) for s in self.steps],
        }


@dataclass
class PlannedStep:
    name: str
    kind: str
    action: str
    """sync, build or up_to_date."""
    reason: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _version(asset: Asset, upstream: Iterable[tuple[str, str | None]]) -> str:
    text = asset.definition_hash + "".join(f"|{n}={v}" for n, v in sorted(upstream))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Runner:
    """One `gristmill run`: the selected steps of a loaded graph."""

    def __init__(
        self,
        project: Project,
        loaded: ProjectGraph,
        selected: set[str],
        *,
        full_refresh: bool,
        workers: int,
        on_step: Callable[[StepResult], None] | None,
        kinds: Collection[str] = RUNNABLE,
    ) -> None:
        self.project = project
        self.loaded = loaded
        self.graph = loaded.graph
        self.full_refresh = full_refresh
        self.workers = workers
        self.on_step = on_step or (lambda step: None)
        self.recorded = project.catalog.asset_versions()
        self.steps = [
            n
            for n in self.graph.order()
            if n in selected
            and self.graph[n].kind in RUNNABLE & set(kinds)
            and (self.graph[n].kind != "feature_view" or n in self.recorded)
        ]
        self.versions: dict[str, str | None] = {}
        self.results: dict[str, StepResult] = {}
        self._ingest_lock = threading.Lock()
        self._sources: OpenedSources | None = None
        self.run_id = 0
        self._started = time.perf_counter()

    # -- versions ---------------------------------------------------------------------
    def current_version(self, name: str) -> str | None:
        """The data version `name` has now (for assets not part of this run)."""
        if name in self.versions:
            return self.versions[name]
        asset = self.graph[name]
        if asset.kind == "raw" and asset.source is not None:
            state = self.loaded.states.get(asset.source)
            version = state.get("version") if state else None
        elif asset.kind == "external":
            version = "external"
        elif asset.kind == "feature_view":
            version = self.expected_version(asset)
        elif asset.transform is not None:
            recorded = self.recorded.get(name)
            exists = asset.relation in self.loaded.relations
            version = recorded.data_version if recorded and exists else None
        else:
            version = None
        self.versions[name] = version
        return version

    def expected_version(self, asset: Asset) -> str:
        return _version(
            asset,
            (
                (up, self.current_version(up))
                for up in asset.upstream
                if self.graph[up].kind != "source"
            ),
        )

    # -- the plan ---------------------------------------------------------------------
    def plan(self) -> list[PlannedStep]:
        """What `run` would do, assuming the syncs bring nothing new."""
        planned: list[PlannedStep] = []
        for name in self.steps:
            asset = self.graph[name]
            if asset.kind == "raw":
                planned.append(PlannedStep(name, asset.kind, "sync", "syncs always run"))
                continue
            expected = self.expected_version(asset)
            recorded = self.recorded.get(name)
            if self.full_refresh:
                reason = "full refresh"
            elif recorded is None:
                reason = "never built"
            elif asset.relation is not None and asset.relation not in self.loaded.relations:
                reason = "its table is missing"
            elif recorded.definition_hash != asset.definition_hash:
                reason = "definition changed"
            elif recorded.data_version != expected:
                reason = "upstream data changed"
            else:
                planned.append(PlannedStep(name, asset.kind, "up_to_date", ""))
                continue
            self.versions[name] = expected
            planned.append(PlannedStep(name, asset.kind, "build", reason))
        return planned

    # -- the run ----------------------------------------------------------------------
    def run(self, command: str) -> RunSummary:
        self.start(command)
        status = "failed"
        try:
            self._execute()
            status = "ok" if all(r.ok for r in self.results.values()) else "failed"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            summary = self.finish(status)
        return summary

    # The run in pieces, for an orchestrator that schedules the steps itself (Prefect):
    # start(), then step() for each name of `steps` once its upstream steps have settled
    # (from any thread), skip() for those it did not run, then finish().
    def start(self, command: str) -> int:
        """Open the run in the catalog, and the sources and schemas its steps need."""
        from gristmill.ingest.run import OpenedSources

        self._started = time.perf_counter()
        self.run_id = self.project.catalog.start_run(command)
        self._sources = OpenedSources(self.project)
        try:
            self._prepare()
        except BaseException:
            self.finish("failed")
            raise
        return self.run_id

    def step(self, name: str, *, record_failure: bool = True) -> StepResult:
        """Settle step `name` (skipped, up to date) or run it, once its upstream steps are
        settled. With `record_failure` False a failure is returned but not recorded (an
        attempt that will be retried)."""
        result = self._settle_without_running(name)
        if result is None:
            result = self._step(name, record_failure=record_failure)
        if result.ok or record_failure:
            self.results[name] = result
            self.on_step(result)
        return result

    def skip(self, name: str, reason: str) -> StepResult:
        """Record step `name` as skipped without running it."""
        asset = self.graph[name]
        result = StepResult(name, asset.kind, "skipped", error=reason)
        self._record(asset, result, _now(), _now())
        self.results[name] = result
        self.on_step(result)
        return result

    def finish(self, status: str) -> RunSummary:
        """Close the run in the catalog with `status` (ok, failed, interrupted)."""
        if self._sources is not None:
            self._sources.close()
            self._sources = None
        summary = RunSummary(self.run_id)
        summary.steps = [self.results[n] for n in self.steps if n in self.results]
        summary.seconds = time.perf_counter() - self._started
        self.project.catalog.finish_run(self.run_id, status)
        return summary

    def _prepare(self) -> None:
        from gristmill.ingest.run import SCRATCH_PREFIXES as SYNC_SCRATCH
        from gristmill.transforms.materialize import SCRATCH_PREFIXES as BUILD_SCRATCH

        warehouse = self.project.warehouse
        # What a run or sync killed mid-way left behind: no step of this run owns it yet.
        schemas = (self.loaded.raw_schema, self.loaded.derived_schema)
        scratch = (*SYNC_SCRATCH, *BUILD_SCRATCH)
        if any(s in schemas and n.startswith(scratch) for s, n in self.loaded.relations):
            warehouse.drop_scratch(schemas, scratch)
        kinds = {self.graph[n].kind for n in self.steps}
        if "raw" in kinds:
            warehouse.ensure_schema(self.loaded.raw_schema)
            warehouse.ensure_state_table()
        if kinds & {"transform", "dataset"} and not any(
            s == self.loaded.derived_schema for s, _ in self.loaded.relations
        ):
            warehouse.ensure_schema(self.loaded.derived_schema)

    def _execute(self) -> None:
        pending = {n: {u for u in self.graph[n].upstream if u in self.steps} for n in self.steps}
        running: dict[Future[StepResult], str] = {}
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="gm-run") as pool:
            while pending or running:
                ready = [n for n, ups in pending.items() if not ups]
                for name in ready:
                    del pending[name]
                    settled = self._settle_without_running(name)
                    if settled is not None:
                        self._finish(name, settled, pending)
                    else:
                        running[pool.submit(self._step, name)] = name
                if not running:
                    if not ready:
                        raise RuntimeError(f"steps wait on nothing: {sorted(pending)}")
                    continue  # settling may have readied more steps
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    self._finish(running.pop(future), future.result(), pending)

    def _finish(self, name: str, result: StepResult, pending: dict[str, set[str]]) -> None:
        self.results[name] = result
        self.on_step(result)
        for ups in pending.values():
            ups.discard(name)

    def _settle_without_running(self, name: str) -> StepResult | None:
        """A skipped or up-to-date result for `name`, or None when it has to run."""
        asset = self.graph[name]
        failed = [u for u in asset.upstream if u in self.results and not self.results[u].ok]
        if failed:
            result = StepResult(name, asset.kind, "skipped", error=f"upstream {failed[0]} failed")
            self._record(asset, result, _now(), _now())
            return result
        if (
            asset.transform is None and asset.kind not in ("feature_view", "model")
        ) or self.full_refresh:
            return None
        recorded = self.recorded.get(name)
        if (
            recorded is not None
            and recorded.data_version == self.expected_version(asset)
            and (asset.relation is None or asset.relation in self.loaded.relations)
        ):
            self.versions[name] = recorded.data_version
            result = StepResult(name, asset.kind, "up_to_date")
            self._record(asset, result, _now(), _now())
            return result
        return None

    def _step(self, name: str, *, record_failure: bool = True) -> StepResult:
        asset = self.graph[name]
        started_at, started = _now(), time.perf_counter()
        result = StepResult(name, asset.kind, "ok")
        try:
            if asset.kind == "raw":
                self._ingest(asset, result)
            elif asset.kind == "feature_view":
                self._materialize(asset, result)
            elif asset.kind == "model":
                self._train(asset, result)
            else:
                self._build(asset, result)
        except CheckFailedError as exc:
            result.status, result.error = "failed", str(exc)
            result.checks = [r.to_dict() for r in exc.results]
        except GristmillError as exc:
            result.status, result.error = "failed", str(exc)
        except Exception as exc:  # a bug must not leave the other steps hanging
            from gristmill.ingest.run import failure_message

            result.status, result.error = "failed", failure_message(name, exc)
        result.seconds = time.perf_counter() - started
        if result.ok or record_failure:
            self._record(asset, result, started_at, _now())
        return result

    def _record(self, asset: Asset, result: StepResult, started_at: str, finished_at: str) -> None:
        from gristmill.config import redact

        catalog = self.project.catalog
        if result.error:
            result.error = redact(result.error)
        catalog.record_step(
            self.run_id,
            StepRecord(
                asset.name,
                asset.kind,
                result.status,
                started_at,
                finished_at,
                result.rows,
                result.error,
                {"mode": result.mode, "seconds": round(result.seconds, 3)},
            ),
        )
        if result.checks:
            catalog.record_checks(self.run_id, asset.name, result.checks)

    def _ingest(self, asset: Asset, result: StepResult) -> None:
        from gristmill.checks import raise_if_blocking, run_checks
        from gristmill.ingest.run import sync_table

        assert asset.source is not None and asset.relation is not None
        with self._ingest_lock:
            synced = sync_table(
                self.project,
                *asset.source,
                self.run_id,
                full_refresh=self.full_refresh,
                sources=self._sources,
            )
        result.mode, result.rows, result.warnings = synced.mode, synced.rows, synced.warnings
        if synced.status != "ok":
            raise GristmillError(synced.error or "the sync failed")
        state = self.project.warehouse.read_state(*asset.source)
        self.versions[asset.name] = state.get("version") if state else None
        self.loaded.relations[asset.relation] = "table"
        if asset.checks:
            warehouse = self.project.warehouse
            relation = warehouse.qualified(*asset.relation)
            checks = run_checks(
                warehouse, relation, asset.checks, search_path=self.loaded.search_path
            )
            result.checks = [r.to_dict() for r in checks]
            raise_if_blocking(f"{asset.name} (loaded)", checks)

    def _build(self, asset: Asset, result: StepResult) -> None:
        from gristmill.transforms.materialize import Builder

        transform = asset.transform
        assert transform is not None and asset.relation is not None
        missing = [
            u
            for u in asset.upstream
            if self.graph[u].relation is not None
            and self.graph[u].relation not in self.loaded.relations
        ]
        if missing:
            raise GristmillError(
                f"{transform.where}: {asset.name} reads {missing[0]}, which has not been built "
                f"yet. Build it first: gristmill run +{asset.name}"
            )
        expected = self.expected_version(asset)
        recorded = self.recorded.get(asset.name)
        builder = Builder(
            self.project.warehouse,
            self.loaded.derived_schema,
            self.loaded.search_path,
            self.loaded.resolved,
            self.project.executor,
        )
        existing = self.loaded.relations.get(asset.relation)
        if self._on_workers(asset):
            from gristmill.features.distributed import DistributedBuild

            assert asset.training is not None
            distributed = DistributedBuild(
                asset.name,
                asset.training,
                self.project.warehouse,
                self.project.executor,
                self.loaded.search_path,
            )
            built = builder.build_elsewhere(
                transform,
                asset.checks,
                existing,
                lambda target: distributed.build(target, transform.sql),
            )
            built.mode = "table, on workers"
        else:
            built = builder.build(
                transform,
                asset.checks,
                existing=existing,
                rebuild=self.full_refresh
                or recorded is None
                or recorded.definition_hash != asset.definition_hash,
            )
        result.mode, result.rows = built.mode, built.rows
        result.checks = [r.to_dict() for r in built.checks]
        self.loaded.relations[asset.relation] = "view" if built.mode == "view" else "table"
        self._record_version(asset, expected)

    def _on_workers(self, asset: Asset) -> bool:
        """A dataset is built on the workers of a distributed executor, from a DuckDB
        warehouse (whose file only this process may read and write)."""
        if asset.training is None or not self.project.executor.DISTRIBUTED:
            return False
        if not self.project.warehouse.READS_STAGING:
            log.warning(
                "%s: built by the %s warehouse itself (training sets on workers need a"
                " warehouse that reads their staging files: DuckDB)",
                asset.name,
                self.project.warehouse.NAME,
            )
            return False
        return True

    def _materialize(self, asset: Asset, result: StepResult) -> None:
        """Refresh a feature view's online values: only entities with new events."""
        from gristmill.features.api import materialize

        expected = self.expected_version(asset)
        [done] = materialize(self.project, [asset.name], full=self.full_refresh)
        result.mode = "online, " + ("all entities" if done.full else "changed entities")
        result.rows = done.entities
        self._record_version(asset, expected)

    def _train(self, asset: Asset, result: StepResult) -> None:
        """Train a model on its training set as it stands, and register the version."""
        from gristmill.train.trainer import train_model

        expected = self.expected_version(asset)
        trained = train_model(self.project, asset.name)
        if trained.unchanged:
            result.mode = f"unchanged, equals version {trained.version}"
        else:
            result.mode = f"version {trained.version}" + (
                f" ({trained.alias})" if trained.alias else ""
            )
        result.rows = trained.rows
        self._record_version(asset, expected)

    def _record_version(self, asset: Asset, expected: str) -> None:
        self.versions[asset.name] = expected
        self.project.catalog.record_asset_version(
            AssetVersion(
                asset.name,
                asset.definition_hash,
                expected,
                ".".join(asset.relation) if asset.relation else ONLINE,
                self.run_id,
                _now(),
            )
        )


def plan(
    project: Project, selectors: Iterable[str] = (), *, full_refresh: bool = False
) -> list[PlannedStep]:
    """What `run` would do for these selectors, without doing it."""
    loaded = load_graph(project)
    runner = Runner(
        project,
        loaded,
        loaded.graph.select(selectors),
        full_refresh=full_refresh,
        workers=1,
        on_step=None,
    )
    return runner.plan()


def run(
    project: Project,
    selectors: Iterable[str] = (),
    *,
    full_refresh: bool = False,
    workers: int | None = None,
    on_step: Callable[[StepResult], None] | None = None,
    kinds: Collection[str] = RUNNABLE,
    command: str | None = None,
) -> RunSummary:
    """Bring the selected assets (all when no selector is given) up to date.

    `kinds` limits the steps to syncs ("raw") or builds ("transform"); `command` is what
    the catalog records the run as (by default `run` and the selectors).
    """
    selectors = list(selectors)
    loaded = load_graph(project)
    selected = loaded.graph.select(selectors)
    runner = Runner(
        project,
        loaded,
        selected,
        full_refresh=full_refresh,
        workers=workers or project.config.run.workers,
        on_step=on_step,
        kinds=kinds,
    )
    return runner.run(command or "run" + "".join(f" {s}" for s in selectors))

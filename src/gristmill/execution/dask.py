"""The Dask executor: a job's partitions run as tasks on a Dask distributed cluster,
either a LocalCluster of worker processes started for the command or a running
scheduler (`tcp://host:8786`). A worker that dies is replaced and its task rescheduled
(Dask's own `allowed-failures`); a task that keeps killing its workers fails the job."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from gristmill.durations import parse_duration
from gristmill.errors import (
    ConnectionFailedError,
    ExecutionError,
    GristmillError,
    MissingDependencyError,
)
from gristmill.execution.base import Executor
from gristmill.memory import parse_size

if TYPE_CHECKING:
    from pathlib import Path

    from distributed import Client, LocalCluster

    from gristmill.config import ExecutionConfig

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

PARTITIONS_PER_THREAD = 4
"""Enough partitions that a slow or rescheduled one doesn't leave the others idle."""


def local_cluster(
    workers: int, threads_per_worker: int, memory_limit: int | str, **options: Any
) -> LocalCluster:
    """A LocalCluster of worker processes on this machine, with no dashboard. Its
    scheduler's HTTP endpoints (health, metrics) take a free port: on Dask's default,
    8787, a second cluster on the machine warns and a strict warnings filter fails it."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers,
        threads_per_worker=threads_per_worker,
        memory_limit=memory_limit,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.ERROR,
        **options,
    )


class DaskExecutor(Executor):
    NAME = "dask"
    DISTRIBUTED = True

    def __init__(self, config: ExecutionConfig, root: Path) -> None:
        super().__init__(config, root)
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise MissingDependencyError("distributed", "dask", 'engine = "dask"') from None
        self._client: Client | None = None
        self._cluster: LocalCluster | None = None
        self._connecting = threading.Lock()

    @property
    def client(self) -> Client:
        """The connection to the cluster, made (and a LocalCluster started) on first use:
        by one thread, when a run's steps ask at once."""
        with self._connecting:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Client:
        from distributed import Client

        timeout = parse_duration(self.config.connect_timeout).total_seconds()
        address = self.config.scheduler
        if address == "local":
            log.info(
                "starting a LocalCluster: %d workers of %d threads, %s each",
                self.config.workers,
                self.config.threads_per_worker,
                self.config.memory_limit,
            )
            self._cluster = local_cluster(
                self.config.workers,
                self.config.threads_per_worker,
                parse_size(self.config.memory_limit),
                local_directory=str(self.root / ".gristmill" / "dask"),
            )
            return Client(self._cluster, timeout=timeout)
        try:
            client = Client(address, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ConnectionFailedError(
                f"The Dask scheduler at {address} did not answer within {timeout:g}s"
                f" ({type(exc).__name__}). Start one (`dask scheduler`) or set [execution]"
                " scheduler in gristmill.toml to its address."
            ) from None
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            client.close()
            raise ConnectionFailedError(
                f"The Dask scheduler at {address} has no workers (waited {timeout:g}s):"
                f" start some with `dask worker {address}`."
            ) from None
        return client

    def map(
        self,
        function: Callable[[T], R],
        items: Sequence[T],
        *,
        label: str,
        describe: Callable[[T], str] = str,
    ) -> list[R]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        client = self.client
        token = uuid.uuid4().hex[:8]
        keys = [f"{label}-{i}-{token}" for i in range(len(items))]
        futures = client.map(function, list(items), key=keys, pure=False)
        position = {future.key: i for i, future in enumerate(futures)}
        results: list[Any] = [None] * len(items)
        try:
            with _progress(label, len(items)) as advance:
                for future in as_completed(futures):
                    item = items[position[future.key]]
                    try:
                        results[position[future.key]] = future.result()
                    except KilledWorker as exc:
                        raise ExecutionError(
                            f"{label} {describe(item)}: the workers that ran it died"
                            f" (last: {exc.last_worker.address if exc.last_worker else '?'})"
                            " as often as the cluster allows. A worker past its memory limit"
                            " is the usual cause: raise [execution] memory_limit or"
                            " partitions."
                        ) from None
                    except GristmillError:
                        raise
                    except Exception as exc:
                        raise ExecutionError(
                            f"{label} {describe(item)} failed: {type(exc).__name__}: {exc}"
                        ) from exc
                    advance()
        finally:
            client.cancel([f for f in futures if not f.done()])
        return results

    @property
    def partitions(self) -> int:
        if self.config.partitions:
            return self.config.partitions
        threads = sum(self.client.nthreads().values()) or 1
        return PARTITIONS_PER_THREAD * threads

    @contextlib.contextmanager
    def joblib_backend(self) -> Iterator[None]:
        import joblib

        self.client  # noqa: B018 - joblib's dask backend takes the current client
        with joblib.parallel_config(backend="dask"):
            yield

    def close(self) -> None:
        with self._connecting:
            self._close()

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


@contextlib.contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on a terminal; nothing when the output is read by a program."""
    if not sys.stderr.isatty():
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda: progress.advance(task)

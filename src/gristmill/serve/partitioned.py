"""`gristmill score` on a distributed executor: partitions scored on workers.

The driver runs the features query (the point-in-time SQL of the local loop, in the
warehouse) and stages its rows as Parquet partitions of consecutive rows, beside a copy of
the model's artifacts as the registry verified them. Each worker checks that copy against
the checksums the registry recorded (and loads it with the registry's own loader, which
trusts only the recorded types), then scores its partition chunk by chunk with
`ChunkScorer.score`, the local loop's own code, into a Parquet file written under a
temporary name and renamed whole. Only when every partition is scored does the driver read
them back, in order, into the table built aside: a failed or killed task publishes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gristmill.errors import ExecutionError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import pyarrow as pa

    from gristmill.execution.staging import StagingArea
    from gristmill.project import Project
    from gristmill.registry.api import Registry
    from gristmill.registry.base import ModelVersion
    from gristmill.serve.batch import ChunkScorer

log = logging.getLogger(__name__)

MODEL = "model"
ROWS = "rows"
SCORED = "scored"


@dataclass(frozen=True)
class Partition:
    """One task: consecutive rows of the features query, staged as one Parquet file."""

    area: StagingArea
    index: int
    first: int
    """The position of its first row in the query's result."""
    rows: int
    scorer: ChunkScorer
    version: ModelVersion
    batch_rows: int

    @property
    def source(self) -> str:
        return f"{ROWS}/part-{self.index:05d}.parquet"

    @property
    def result(self) -> str:
        return f"{SCORED}/part-{self.index:05d}.parquet"

    def describe(self) -> str:
        return f"partition {self.index} (rows {self.first:,} to {self.first + self.rows - 1:,})"


@contextlib.contextmanager
def score_partitioned(
    project: Project,
    scorer: ChunkScorer,
    version: ModelVersion,
    sql: str,
    relation: str,
    batch_rows: int,
) -> Iterator[Iterator[pa.Table]]:
    """The scored rows of `sql`, in its order, scored on the executor's workers; the
    staging they pass through is removed when the block ends."""
    executor = project.executor
    warehouse = project.warehouse
    with executor.staging("scoring") as area:
        _stage_model(project.registry, version, area)
        [(total,)] = warehouse.fetchall(f"SELECT count(*) FROM {relation}")
        # Even partitions by the table's count: the features query gives one row per row
        # of the table (were it to give more, there would just be more partitions).
        per = max(1, math.ceil(int(total) / executor.partitions))
        started = time.perf_counter()
        batches = warehouse.query_batches(sql, batch_rows, beyond_decimal="float")
        staged = _stage_rows(batches, per, area)
        log.info(
            "staged %d rows in %d partitions in %.2fs",
            sum(rows for _, rows in staged),
            len(staged),
            time.perf_counter() - started,
        )
        started = time.perf_counter()
        partitions = [
            Partition(area, i, first, rows, scorer, version, batch_rows)
            for i, (first, rows) in enumerate(staged)
        ]
        counts = executor.map(
            score_partition,
            partitions,
            label=f"scoring {scorer.model} v{scorer.number}",
            describe=Partition.describe,
        )
        for part, count in zip(partitions, counts, strict=True):
            if count != part.rows:  # a guard: a lost or doubled row must not be published
                raise ExecutionError(f"{part.describe()} came back with {count:,} rows.")
        log.info("scored the partitions on the workers in %.2fs", time.perf_counter() - started)
        yield _read_scored(partitions)


def _stage_model(registry: Registry, version: ModelVersion, area: StagingArea) -> None:
    """The version's artifacts, read (and verified) by the registry, where workers reach."""
    area.makedirs(MODEL)
    for name in version.checksums:
        data = registry.read_artifact(version.model, version.version, name)
        with area.open(f"{MODEL}/{name}", "wb") as sink:
            sink.write(data)


def _stage_rows(
    batches: Iterable[pa.RecordBatch], per: int, area: StagingArea
) -> list[tuple[int, int]]:
    """The batches as Parquet files of `per` consecutive rows each (the last one fewer):
    (first row, rows) of each file written."""
    import pyarrow.parquet as pq

    area.makedirs(ROWS)
    area.makedirs(SCORED)
    staged: list[tuple[int, int]] = []
    writer: pq.ParquetWriter | None = None
    sink: Any = None
    filled = first = 0

    def close() -> None:
        nonlocal writer, sink, filled, first
        if writer is not None:
            writer.close()
            sink.close()
            staged.append((first, filled))
            first += filled
            writer, sink, filled = None, None, 0

    try:
        for batch in batches:
            offset = 0
            while offset < batch.num_rows:
                if writer is None:
                    sink = area.open(f"{ROWS}/part-{len(staged):05d}.parquet", "wb")
                    writer = pq.ParquetWriter(sink, batch.schema)
                take = min(per - filled, batch.num_rows - offset)
                writer.write_batch(batch.slice(offset, take))
                offset += take
                filled += take
                if filled == per:
                    close()
        close()
    finally:
        if sink is not None:  # a query that failed midway: its staging goes with the area
            sink.close()
    return staged


_models: dict[tuple[str, str, int], Any] = {}
_models_lock = threading.Lock()


def _model(area: StagingArea, version: ModelVersion) -> Any:
    """The fitted model from its staged artifacts, verified as the registry verifies its
    own; loaded once per worker process for a job (its other partitions reuse it)."""
    from gristmill.registry.api import check_artifact
    from gristmill.registry.artifacts import load

    key = (area.url, version.model, version.version)
    with _models_lock:
        if key not in _models:
            files = {}
            for name in version.checksums:
                with area.open(f"{MODEL}/{name}") as source:
                    files[name] = source.read()
                check_artifact(version, name, files[name], area.child(f"{MODEL}/{name}"))
            _models.clear()  # one job's model at a time: a worker outlives many jobs
            _models[key] = load(files, version.artifact_format)
        return _models[key]


def score_partition(part: Partition) -> int:
    """Score one partition on a worker: its rows in chunks of `batch_rows`, as the local
    loop scores them; the rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fitted = _model(part.area, part.version)
    temporary = f"{part.result}.{uuid.uuid4().hex[:8]}.tmp"
    rows = 0
    writer: pq.ParquetWriter | None = None
    with part.area.open(part.source) as source, part.area.open(temporary, "wb") as sink:
        for batch in pq.ParquetFile(source).iter_batches(batch_size=part.batch_rows):
            scored = part.scorer.score(pa.Table.from_batches([batch]), fitted)
            if writer is None:
                writer = pq.ParquetWriter(sink, scored.schema)
            writer.write_table(scored)
            rows += scored.num_rows
        if writer is not None:
            writer.close()
    part.area.rename(temporary, part.result)
    return rows


def _read_scored(partitions: list[Partition]) -> Iterator[pa.Table]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for part in partitions:
        with part.area.open(part.result) as source:
            for batch in pq.ParquetFile(source).iter_batches(batch_size=part.batch_rows):
                yield pa.Table.from_batches([batch])

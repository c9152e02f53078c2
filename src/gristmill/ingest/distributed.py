"""Reading a large table on Dask workers (`engine = "dask"`).

Only the read leaves the driver. The driver decides what to read exactly as the local
engine does (the cursor window, lookback, `pending_from`: `spec.read_request`), splits
that read into key ranges, and each worker reads one range over its own connection (it
opens the source from its config) into a Parquet file of the job's staging folder. The
driver then stages those files into the warehouse through the very path a local read
takes (`TableSync._stage`: renamed, conformed to the warehouse's load types) and applies
them in the same one transaction with the sync state. A worker killed mid-range has its
range read again by Dask; a driver killed mid-run commits nothing, and its staging folder
is removed by the next job (`execution.staging`).

Where the ranges lie: an incremental table (append, merge) splits on its cursor, so that
each range is an index range of the window; a table reloaded in full splits on its
integer primary key. Boundaries are equal steps between the least and greatest value;
the first range also takes values below the least (and NULLs), the last those above the
greatest, so a row written since the bounds were read still falls in one range.

Consistency: on PostgreSQL every range reads one exported snapshot, which the driver
holds until the workers are done: together they are the single read the local engine
makes. MySQL cannot share a snapshot, so its ranges are read at slightly different
moments; split on the cursor this still loses nothing: a row changed after its range was
read takes a cursor value past every boundary (the assumption every cursor sync makes),
so the last range reads it, or, if that range was read before the change, the cursor
recorded stays below it and the next sync reads it. Such a read may hold two versions of
a row; the engine keeps the one with the greatest cursor (`Extract.keys_unique`). An
incremental MySQL table without a key or a splittable cursor is read on the driver.

What stays on the driver, said in the log: file and SQLite sources (the workers cannot
reach them, or they cannot split), tables without a column to split on, and reads too
small to be worth the workers (fewer than MIN_ROWS_PER_PARTITION rows per partition,
unless [execution] partitions is set).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.ingest.sources.base import Extract, ReadRequest, SqlSource

if TYPE_CHECKING:
    from gristmill.config import SourceConfig
    from gristmill.execution.base import Executor
    from gristmill.ingest.sources.base import Snapshot, Source
    from gristmill.ingest.spec import TableSpec

log = logging.getLogger(__name__)

MIN_ROWS_PER_PARTITION = 250_000
"""Fewer rows than this per partition and the handover (a connection per range, Parquet
written and read again) costs more than the parallel read saves: the read stays on the
driver. An explicit [execution] partitions splits any read that has a column to split."""
PARQUET_BATCH_ROWS = 100_000


@dataclass(frozen=True)
class RangeRead:
    """One key range of a read: what a worker needs, all picklable (the source's config,
    not a connection)."""

    source: str
    config: SourceConfig
    root: Path
    sql: str
    params: tuple[Any, ...]
    setup: tuple[str, ...]
    """Statements the range's connection runs first: the shared snapshot."""
    schema: pa.Schema
    url: str
    """The Parquet file the range lands in."""
    label: str


def read_range(task: RangeRead) -> int:
    """On a worker: read one range into its Parquet file; the rows it holds.

    The file appears whole or not at all (written aside, then renamed): a range read again
    after its worker died replaces it, and the driver only reads files of ranges that
    finished."""
    import fsspec

    from gristmill.ingest.sources import open_source

    fs, path = fsspec.core.url_to_fs(task.url)
    partial = f"{path}.{uuid.uuid4().hex[:8]}.partial"
    source = open_source(task.source, task.config, task.root)
    assert isinstance(source, SqlSource)  # only SQL sources are split (READS_ON_WORKERS)
    rows = 0
    try:
        with fs.open(partial, "wb") as file, _writer(file, task.url, task.schema) as writer:
            for batch in source.stream(task.sql, task.params, task.schema, task.setup):
                writer.write_batch(batch)
                rows += batch.num_rows
        fs.mv(partial, path)
    finally:
        source.close()
        if fs.exists(partial):
            fs.rm(partial)
    return rows


def _suffix(schema: pa.Schema) -> str:
    """How a range lands: Parquet, or, for a type Parquet has no form for (PostgreSQL's
    interval, Arrow's month_day_nano), an Arrow IPC file, which holds any Arrow type."""
    try:
        pq.ParquetWriter(pa.BufferOutputStream(), schema).close()
    except pa.ArrowNotImplementedError:
        return ".arrow"
    return ".parquet"


def _writer(file: Any, url: str, schema: pa.Schema) -> Any:
    if url.endswith(".arrow"):
        return pa.ipc.new_file(file, schema, options=pa.ipc.IpcWriteOptions(compression="lz4"))
    return pq.ParquetWriter(file, schema)


def _landed(url: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """A range's file as the batches its read gave. Parquet keeps the Arrow schema beside
    its own, so the types come back as they were written; one it would bring back
    otherwise is cast back, so that the warehouse loads it as from a local read."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    with fs.open(path, "rb") as file:
        if url.endswith(".arrow"):
            reader = pa.ipc.open_file(file)
            batches: Iterator[pa.RecordBatch] = (
                reader.get_batch(i) for i in range(reader.num_record_batches)
            )
        else:
            batches = pq.ParquetFile(file).iter_batches(batch_size=PARQUET_BATCH_ROWS)
        for batch in batches:
            if not batch.schema.equals(schema):
                batch = pa.record_batch(
                    [c.cast(f.type) for c, f in zip(batch.columns, schema, strict=True)],
                    schema=schema,
                )
            yield batch


def read_on_workers(
    executor: Executor, source: Source, spec: TableSpec, request: ReadRequest
) -> Extract | None:
    """The read of `request` done by the workers, landed in staging; None when it is
    better done on the driver (logged with the reason)."""
    key = f"{spec.source}.{spec.table.name}"
    if not (isinstance(source, SqlSource) and source.READS_ON_WORKERS):
        log.info("%s: read on the driver: a %s source is not read by workers", key, source.KIND)
        return None
    column = _split_column(source, spec, request)
    if column is None:
        log.info(
            "%s: read on the driver: no cursor or integer primary key to split its read on",
            key,
        )
        return None
    rows, low, high = _bounds(source, request, column)
    # [execution] partitions, or as many as the rows call for, up to the executor's default
    # (asked only then: it may start the cluster).
    parts = executor.config.partitions or rows // MIN_ROWS_PER_PARTITION
    if parts >= 2 and not executor.config.partitions:
        parts = min(parts, executor.partitions)
    conditions = _ranges(source, request.table.schema.field(column).type, column, low, high, parts)
    if len(conditions) < 2:
        log.info("%s: read on the driver: %d rows, too few to split", key, rows)
        return None
    # Asked before the snapshot is taken, as a local read does (see PostgresSource.extract).
    pending = (
        source.pending_from(request.table.schema.field(request.cursor).type)
        if request.cursor
        else None
    )
    schema = pa.schema([request.table.schema.field(c) for c in request.columns])
    suffix = _suffix(schema)
    with contextlib.ExitStack() as stack:
        area = stack.enter_context(executor.staging("ingest"))
        area.makedirs("ranges")
        snapshot: Snapshot | None = source.export_snapshot()
        try:
            tasks = [
                RangeRead(
                    source=source.name,
                    config=source.config,
                    root=source.root,
                    sql=sql,
                    params=tuple(params),
                    setup=snapshot.setup if snapshot is not None else (),
                    schema=schema,
                    url=area.child(f"ranges/range-{i:05d}{suffix}"),
                    label=condition,
                )
                for i, condition in enumerate(conditions)
                for sql, params in [source.select_sql(request, [condition])]
            ]
            log.info(
                "%s: read on the Dask workers in %d ranges of %s (%d rows)",
                key,
                len(tasks),
                column,
                rows,
            )
            executor.map(read_range, tasks, label=f"ingest {key}", describe=lambda t: t.label)
        finally:
            if snapshot is not None:
                snapshot.close()  # every range is read (or the read failed): let it go
        # The staging folder lives on until the sync is done with the files (Extract.close).
        cleanup = stack.pop_all()
    return Extract(
        streams=[_landed(t.url, schema) for t in tasks],
        pending_from=pending,
        on_close=cleanup.close,
        # Without a shared snapshot, ranges of the cursor may hold a row twice (see above).
        keys_unique=snapshot is not None or column != request.cursor,
    )


def _split_column(source: SqlSource, spec: TableSpec, request: ReadRequest) -> str | None:
    """The column whose ranges split the read (see the module's docstring)."""
    table = request.table

    def splittable(column: str | None) -> bool:
        if column is None or column in table.overrides:
            return False
        dtype = table.schema.field(column).type
        return bool(
            pa.types.is_integer(dtype) or pa.types.is_timestamp(dtype) or pa.types.is_date(dtype)
        )

    incremental = spec.config.mode != "full"
    if incremental and splittable(request.cursor):
        # Without a shared snapshot, two versions of a row are told apart by the key.
        return request.cursor if source.SHARES_SNAPSHOTS or spec.primary_key else None
    if incremental and not source.SHARES_SNAPSHOTS:
        return None  # ranges of the key, read at different moments, could lose a change
    key = list(table.primary_key)
    return key[0] if len(key) == 1 and splittable(key[0]) else None


def _bounds(
    source: SqlSource, request: ReadRequest, column: str
) -> tuple[int, int | None, int | None]:
    """How many rows the read takes, and the least and greatest value of `column` among
    them as Arrow stores them (integers)."""
    dtype = request.table.schema.field(column).type
    quoted = source.quote(column)
    table = source.table_ref(request.table.name)
    sql = f"SELECT count(*), min({quoted}), max({quoted}) FROM {table}"
    params: list[Any] = []
    if request.cursor and request.cursor_from is not None:
        condition, params = source.cursor_condition(request.cursor, request.cursor_from)
        sql += f" WHERE {condition}"
    schema = pa.schema([("rows", pa.int64()), ("low", dtype), ("high", dtype)])
    found = pa.Table.from_batches(list(source.stream(sql, params, schema)), schema)
    low, high = (_as_integer(found.column(c).chunk(0), dtype) for c in ("low", "high"))
    return int(found.column("rows")[0].as_py() or 0), low, high


def _ranges(
    source: SqlSource,
    dtype: pa.DataType,
    column: str,
    low: int | None,
    high: int | None,
    parts: int,
) -> list[str]:
    """`parts` conditions on `column` that together hold every row once: equal steps from
    `low` to `high`, the first open below (and taking NULLs), the last open above."""
    if low is None or high is None or parts < 2:
        return []
    step = math.ceil((high - low + 1) / parts)
    bounds = [low + step * i for i in range(1, parts) if low + step * i <= high]
    try:
        literals = [source.dialect.literal(v) for v in _from_integers(bounds, dtype)]
    except (ValueError, OverflowError, pa.ArrowInvalid):
        return []  # values Python cannot hold (a cursor at infinity): one range
    if not literals:
        return []
    quoted = source.quote(column)
    conditions = [f"({quoted} < {literals[0]} OR {quoted} IS NULL)"]
    conditions += [f"{quoted} >= {a} AND {quoted} < {b}" for a, b in itertools.pairwise(literals)]
    conditions.append(f"{quoted} >= {literals[-1]}")
    return conditions


def _as_integer(value: pa.Array, dtype: pa.DataType) -> int | None:
    """A value of `dtype` as the integer Arrow stores it as."""
    if pa.types.is_integer(dtype):
        found = value[0].as_py()
    else:
        storage = pa.int32() if pa.types.is_date32(dtype) else pa.int64()
        found = value.view(storage)[0].as_py()
    return None if found is None else int(found)


def _from_integers(values: list[int], dtype: pa.DataType) -> list[Any]:
    """The Python values of `dtype` that Arrow stores as `values`."""
    if pa.types.is_integer(dtype):
        return values
    storage = pa.int32() if pa.types.is_date32(dtype) else pa.int64()
    found: list[Any] = pa.array(values, storage).view(dtype).to_pylist()
    return found

"""Training sets built on the workers of a distributed executor (`engine = "dask"`).

The driver exports the spine (numbered as the local build numbers it) and the events of
every selected view to Parquet in staging, partitioned by a hash of the entity keys.
Each worker task takes one partition and runs `training_set_sql` (the very query the
local build runs, in DuckDB's dialect) in an embedded DuckDB over that partition's
files; its result lands as a Parquet file in staging. The driver then loads those files
into the build table, typed as the local build types it, and the graph runner checks
and swaps it in (`Builder.publish`): a failed task leaves the published table as it was.

Views with different entity keys (a user view and a device view) cannot share one hash
partitioning: views are grouped by their entity keys, each group partitions the spine
(its row number, keys and time) and its events by its own hash, and the driver joins
the groups' columns to the spine on the spine's row number. Within a group the rows of
one entity meet in one partition, so every feature (dense or sparse, windowed or
latest) sees exactly the events the local query gives it.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from gristmill.features.pit import Selection, training_set_sql

if TYPE_CHECKING:
    from gristmill.execution.base import Executor
    from gristmill.execution.staging import StagingArea
    from gristmill.warehouse.base import Transaction, Warehouse

log = logging.getLogger(__name__)

SPINE_ROW = "_gm_spine_row"
"""The spine row's number, as the local build's `row_number() OVER ()` gives it: the
worker queries carry it through, and the driver orders and joins on it."""
PART = "_gm_part"
WIDE_INTEGERS = ("HUGEINT", "UHUGEINT")
"""DuckDB writes these to Parquet as doubles: they travel as DECIMAL(38, 0) instead (exact
for 38 digits), and the build table's types turn them back."""


@dataclass(frozen=True)
class TrainingSetSpec:
    """What a dataset's local build query is made of: enough to make it again, per
    partition and in DuckDB's dialect."""

    spine: str
    """The spine as a SELECT in the warehouse's SQL (names resolve through the build's
    search path)."""
    timestamp: str
    selections: tuple[Selection, ...]
    inclusive: bool


@dataclass(frozen=True)
class Group:
    """The selected views that share one entity key: partitioned by one hash."""

    index: int
    keys: tuple[str, ...]
    selections: tuple[Selection, ...]
    relations: tuple[str, ...]
    """Their distinct source relations (quoted), as the warehouse names them."""


@dataclass(frozen=True)
class PartitionTask:
    """One worker task: one partition of one group. Picklable."""

    area: StagingArea
    group: Group
    partition: int
    spine_ts: str
    inclusive: bool
    threads: int | None
    """DuckDB's threads for this task (None: the worker's default)."""
    spine_files: tuple[str, ...]
    event_files: tuple[tuple[str, ...], ...]
    """Per relation of the group, in order: its files of this partition, and first a file
    with no rows that gives the columns when the partition has no events."""

    def describe(self) -> str:
        views = ", ".join(s.view.name for s in self.group.selections)
        return f"partition {self.partition} of {views} (entity {', '.join(self.group.keys)})"


def groups_of(selections: Sequence[Selection]) -> list[Group]:
    """The selections grouped by entity key, in the order they first appear."""
    by_keys: dict[tuple[str, ...], list[Selection]] = {}
    for selection in selections:
        by_keys.setdefault(tuple(selection.view.entity), []).append(selection)
    return [
        Group(i, keys, tuple(chosen), tuple(dict.fromkeys(s.relation for s in chosen)))
        for i, (keys, chosen) in enumerate(by_keys.items())
    ]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _files_sql(files: Sequence[str]) -> str:
    listed = ", ".join(_literal(f) for f in files)
    return f"read_parquet([{listed}], hive_partitioning = false)"


def _described(fetchall: Callable[[str], list[tuple[Any, ...]]], sql: str) -> list[tuple[str, str]]:
    """(name, type) of every column `sql` returns: the binder types it without running it."""
    return [(str(r[0]), str(r[1])) for r in fetchall(f"DESCRIBE {sql}")]


def parquet_safe(columns: Sequence[tuple[str, str]], quote: str = '"{}"') -> str:
    """A select list of `columns` that Parquet keeps exactly."""
    picked = []
    for name, type_ in columns:
        q = quote.format(name.replace('"', '""'))
        picked.append(f"CAST({q} AS DECIMAL(38, 0)) AS {q}" if type_ in WIDE_INTEGERS else q)
    return ", ".join(picked)


def _format(area: StagingArea, partition_by: str | None = None) -> str:
    """COPY's options for staging files: uncompressed on a local staging folder (a
    partitioned export of 10M events: 3.8 s against 4.4 s with snappy; the files are read
    once, from the same disk), compressed where they cross a network."""
    options = ["(FORMAT parquet"]
    if area.is_local:
        options.append("COMPRESSION uncompressed")
    if partition_by:
        # The job's folder is its own and new: nothing to keep. (DuckDB checks that the
        # target folder is empty otherwise, which an object store's missing prefix fails.)
        options.append(f"PARTITION_BY ({partition_by}), OVERWRITE_OR_IGNORE")
    return ", ".join(options)


# -- on a worker -----------------------------------------------------------------------


def run_partition(task: PartitionTask) -> tuple[str, int, float]:
    """Run the training-set query of one partition; its result's file, row count and
    seconds.

    Each attempt writes a file of its own name, and the driver reads only the file the
    task returned: an attempt on a worker that died (or was only thought dead) can
    leave a file behind but never mixes into the result."""
    from gristmill.dialects import dialect
    from gristmill.execution.worker import duckdb_connection

    started = time.perf_counter()
    engine = dialect("duckdb")
    con = duckdb_connection(task.area)
    try:
        if task.threads:
            con.execute(f"SET threads = {int(task.threads)}")
        con.execute(f"CREATE VIEW _gm_spine_part AS SELECT * FROM {_files_sql(task.spine_files)}")
        renamed: dict[str, str] = {}
        for j, (relation, files) in enumerate(
            zip(task.group.relations, task.event_files, strict=True)
        ):
            renamed[relation] = f"_gm_events{j}"
            con.execute(f"CREATE VIEW _gm_events{j} AS SELECT * FROM {_files_sql(files)}")
        selections = [replace(s, relation=renamed[s.relation]) for s in task.group.selections]
        sql = training_set_sql(
            "SELECT * FROM _gm_spine_part", task.spine_ts, selections, engine, task.inclusive
        )
        wanted = [SPINE_ROW, *(c for s in selections for c in s.columns)]
        described = dict(_described(lambda q: con.execute(q).fetchall(), sql))
        picked = parquet_safe([(c, described[c]) for c in wanted])
        name = f"out/g{task.group.index}/p{task.partition}-{uuid.uuid4().hex[:8]}.parquet"
        path = task.area.path(name)
        result = con.execute(
            f"COPY (SELECT {picked} FROM ({sql}) AS t) TO {_literal(path)} {_format(task.area)})"
        ).fetchone()
        return path, int(result[0]) if result else 0, time.perf_counter() - started
    finally:
        con.close()


# -- on the driver ---------------------------------------------------------------------


class DistributedBuild:
    """One training set built on the workers into `target` (the build table, which must
    not exist yet) of a DuckDB warehouse."""

    def __init__(
        self,
        name: str,
        spec: TrainingSetSpec,
        warehouse: Warehouse,
        executor: Executor,
        search_path: Sequence[str],
    ) -> None:
        self.name = name
        self.spec = spec
        self.warehouse = warehouse
        self.executor = executor
        self.search_path = list(search_path)

    def build(self, target: str, local_sql: str, partitions: int | None = None) -> int:
        """Fill `target` (created here, as the local query's result would be typed);
        the number of rows."""
        count = partitions or self.executor.partitions
        groups = groups_of(self.spec.selections)
        with self.executor.staging("dataset") as area:
            self.warehouse.attach_staging(area)
            started = time.perf_counter()
            tasks = self._export(area, groups, count, target, local_sql)
            exported = time.perf_counter()
            log.info(
                "%s: exported the spine and events in %d partitions (%.1fs)",
                self.name,
                count,
                exported - started,
            )
            outputs = self.executor.map(
                run_partition,
                tasks,
                label=f"dataset {self.name}",
                describe=PartitionTask.describe,
            )
            computed = time.perf_counter()
            busy = sorted(seconds for _, _, seconds in outputs)
            log.info(
                "%s: %d partition tasks ran (%.1fs; a task took %.1fs at most, %.1fs in all)",
                self.name,
                len(tasks),
                computed - exported,
                busy[-1] if busy else 0.0,
                sum(busy),
            )
            files: dict[int, list[str]] = {g.index: [] for g in groups}
            for task, (path, _, _) in zip(tasks, outputs, strict=True):
                files[task.group.index].append(path)
            rows = self._load(area, target, groups, files)
            log.info("%s: loaded %d rows (%.1fs)", self.name, rows, time.perf_counter() - computed)
            return rows

    def _export(
        self, area: StagingArea, groups: list[Group], count: int, target: str, local_sql: str
    ) -> list[PartitionTask]:
        """The build table `target`, empty, typed as the local query's result; the spine,
        numbered, as one file; per group, the spine's keys and time and the group's
        events, partitioned by the hash of the keys (cast to the type both sides are
        compared in); the tasks of the partitions that have spine rows. In one
        transaction, in the build's search path (a spine SELECT names its tables as its
        author wrote them)."""
        warehouse, spec = self.warehouse, self.spec
        spine_file = area.path("spine.parquet")
        numbered = f"SELECT row_number() OVER () AS {SPINE_ROW}, * FROM ({spec.spine}) AS s"
        tasks: list[PartitionTask] = []
        threads = duckdb_threads(self.executor)
        with warehouse.transaction() as tx:
            warehouse.set_search_path(tx, self.search_path)
            built = _described(tx.fetchall, local_sql)
            definition = ", ".join(f"{warehouse.quote(n)} {t}" for n, t in built)
            tx.execute(f"CREATE TABLE {target} ({definition})")
            columns = _described(tx.fetchall, numbered)
            tx.execute(
                f"COPY (SELECT {parquet_safe(columns)} FROM ({numbered}) AS n)"
                f" TO {_literal(spine_file)} {_format(area)})"
            )
            spine = _files_sql([spine_file])
            for group in groups:
                keys = [warehouse.quote(k) for k in group.keys]
                types = self._key_types(tx, group, spine)
                hashed = ", ".join(f"CAST({k} AS {t})" for k, t in zip(keys, types, strict=True))
                partition = f"hash({hashed}) % {count} AS {PART}"
                wanted = list(dict.fromkeys([SPINE_ROW, *keys, warehouse.quote(spec.timestamp)]))
                folder = f"g{group.index}"
                area.makedirs(folder)
                tx.execute(
                    f"COPY (SELECT {', '.join(wanted)}, {partition} FROM {spine})"
                    f" TO {_literal(area.path(folder + '/spine'))}"
                    f" {_format(area, PART)})"
                )
                event_files: list[dict[int, list[str]]] = []
                empties: list[str] = []
                for j, relation in enumerate(group.relations):
                    # An event without its entity key counts for no spine row (views of
                    # one source may read different time columns: those are kept).
                    present = " AND ".join(f"{k} IS NOT NULL" for k in keys)
                    source = f"(SELECT * FROM {relation} WHERE {present})"
                    safe = parquet_safe(_described(tx.fetchall, f"SELECT * FROM {source}"))
                    empty = area.path(f"{folder}/r{j}.empty.parquet")
                    tx.execute(
                        f"COPY (SELECT {safe} FROM {relation} LIMIT 0) TO {_literal(empty)}"
                        f" {_format(area)})"
                    )
                    tx.execute(
                        f"COPY (SELECT {safe}, {partition} FROM {source} AS e)"
                        f" TO {_literal(area.path(f'{folder}/r{j}'))}"
                        f" {_format(area, PART)})"
                    )
                    event_files.append(_by_partition(area.files(f"{folder}/r{j}")))
                    empties.append(empty)
                area.makedirs(f"out/{folder}")
                spine_parts = _by_partition(area.files(f"{folder}/spine"))
                for p in sorted(spine_parts):
                    tasks.append(
                        PartitionTask(
                            area,
                            group,
                            p,
                            spec.timestamp,
                            spec.inclusive,
                            threads,
                            tuple(spine_parts[p]),
                            tuple(
                                (empty, *found.get(p, []))
                                for empty, found in zip(empties, event_files, strict=True)
                            ),
                        )
                    )
        return tasks

    def _key_types(self, tx: Transaction, group: Group, spine: str) -> list[str]:
        """The type each key is compared in: that of the spine's and the events' key
        columns in one UNION, as the training-set query puts them together."""
        quote = self.warehouse.quote
        keys = ", ".join(quote(k) for k in group.keys)
        union = " UNION ALL ".join(
            [f"SELECT {keys} FROM {spine}", *(f"SELECT {keys} FROM {r}" for r in group.relations)]
        )
        return [t for _, t in _described(tx.fetchall, union)]

    def _load(
        self, area: StagingArea, target: str, groups: list[Group], files: dict[int, list[str]]
    ) -> int:
        """The spine's columns and every group's features, joined on the spine row and in
        its order, into `target` (the INSERT casts each column to the local build's
        type)."""
        quote = self.warehouse.quote
        joins, picked = [], []
        chosen: dict[str, str] = {}
        for group in groups:
            alias = f"g{group.index}"
            if files[group.index]:
                joins.append(
                    f" LEFT JOIN {_files_sql(files[group.index])} AS {alias}"
                    f" ON {alias}.{SPINE_ROW} = s.{SPINE_ROW}"
                )
            for selection in group.selections:
                for column in selection.columns:
                    chosen[f"{selection.view.name}.{column}"] = (
                        f"{alias}.{quote(column)}" if files[group.index] else "NULL"
                    )
        for selection in self.spec.selections:
            picked += [chosen[f"{selection.view.name}.{c}"] for c in selection.columns]
        spine = _files_sql([area.path("spine.parquet")])
        columns = ", ".join([f"s.* EXCLUDE ({SPINE_ROW})", *picked])
        self.warehouse.execute(
            f"INSERT INTO {target} SELECT {columns} FROM {spine} AS s{''.join(joins)}"
            f" ORDER BY s.{SPINE_ROW}"
        )
        rows = self.warehouse.fetchall(f"SELECT count(*) FROM {target}")
        return int(rows[0][0])


def duckdb_threads(executor: Executor) -> int | None:
    """DuckDB threads per task, so that a host's tasks together use its cores once: a
    worker's DuckDB would take every core of its host, while the host's other worker
    threads run tasks too (two workers of one thread on two cores: 4 threads, measured
    1.4-1.6x slower per task than 2). None when the executor is not a Dask cluster."""
    client = getattr(executor, "client", None)
    if client is None:
        return None
    cores = client.run(os.cpu_count)
    hosts: dict[str, list[int]] = {}
    for address, worker in client.scheduler_info(n_workers=-1)["workers"].items():
        counted = hosts.setdefault(worker["host"], [0, 0])
        counted[0] = max(counted[0], cores.get(address) or 1)
        counted[1] += worker["nthreads"]
    if not hosts:
        return None
    return max(1, min(host_cores // max(1, nthreads) for host_cores, nthreads in hosts.values()))


_PART_FOLDER = re.compile(rf"{PART}=(\d+)/")


def _by_partition(files: Sequence[str]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for f in files:
        match = _PART_FOLDER.search(f)
        if match:
            found.setdefault(int(match.group(1)), []).append(f)
    return found

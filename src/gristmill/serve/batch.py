"""`gristmill score`: a registered model over a whole warehouse table, in batches. When the
model was trained on a dataset, each row gets its features as of its own time by the
dataset's point-in-time SQL (the training sets' logic); otherwise the table holds them.
When the model's policy has rules on missing or stale features, each row's are worked out
as of its own time, as the server works them out as of now. The scores land in a table
built aside and swapped in, so nothing half-written remains."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError
from gristmill.train.encode import Encoding
from gristmill.train.policy import Policy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from contextlib import AbstractContextManager

    import numpy as np
    import pyarrow as pa

    from gristmill.features.definition import FeatureView
    from gristmill.project import Project
    from gristmill.serve.scoring import LoadedModel
    from gristmill.warehouse.base import Warehouse

SEEN = "_gm_seen_"
"""Prefix of the columns holding the time of each view's latest event before the row."""


@dataclass
class ScoreResult:
    model: str
    version: int
    table: str
    rows: int
    seconds: float


def _features_sql(project: Project, training_set: str, relation: str, seen: bool) -> str:
    """The table's rows with the model's feature views joined as of each row's time; with
    `seen`, also the time of each view's (with a ttl) latest event before it."""
    from gristmill.features.discover import load_definitions
    from gristmill.features.pit import Selection, training_set_sql
    from gristmill.profile import resolve_table

    definitions = load_definitions(project.root)
    dataset = definitions.datasets.get(training_set)
    if dataset is None:
        return f"SELECT * FROM {relation}"
    sources = {
        name: project.warehouse.qualified(*resolve_table(project, view.source))
        for name, view in definitions.views.items()
    }
    selections = definitions.selections(dataset, sources)
    engine = project.warehouse.dialect
    if seen:
        selections += [
            Selection(_latest_time(s.view, engine.quote), [SEEN + s.view.name], s.relation)
            for s in selections
            if s.view.ttl is not None
        ]
    spine = f"SELECT * FROM {relation}"
    return training_set_sql(spine, dataset.timestamp, selections, engine, dataset.inclusive)


def _latest_time(view: FeatureView, quote: Callable[[str], str]) -> FeatureView:
    """A view whose one feature is the time of the entity's latest event: the training
    sets' own logic then says, per row, how old the view's latest event was."""
    from gristmill.features.definition import FeatureView, expression

    feature = expression(SEEN + view.name, quote(view.timestamp))
    return FeatureView(SEEN + view.name, view.entity, view.timestamp, view.source, [feature])


def _micros(column: pa.ChunkedArray) -> np.ndarray:
    """Timestamps as µs since the epoch (UTC), NaN where NULL."""
    import pyarrow as pa

    moments = column.cast(pa.timestamp("us", column.type.tz)).cast(pa.int64())
    micros: np.ndarray = moments.to_numpy(zero_copy_only=False).astype(float)
    return micros


def _states(
    chunk: pa.Table, scorer: ChunkScorer
) -> tuple[list[list[str]], list[dict[str, float]], pa.Table]:
    """Per row, the model's features that are missing and those that are stale (as of
    the row's own time), and the chunk without the columns that told."""
    import numpy as np

    names = scorer.encoding.names
    nulls = np.column_stack(
        [chunk.column(n).is_null(nan_is_null=True).to_numpy(zero_copy_only=False) for n in names]
    )
    missing = [[names[j] for j in np.flatnonzero(row)] for row in nulls]
    stale: list[dict[str, float]] = [{} for _ in range(chunk.num_rows)]
    seen = [c for c in chunk.column_names if c.startswith(SEEN)]
    if scorer.timestamp is not None:
        at = _micros(chunk.column(scorer.timestamp))
        for view, ttl in scorer.ttl_seconds.items():
            if SEEN + view not in seen:
                continue
            ages = (at - _micros(chunk.column(SEEN + view))) / 1e6
            features = [f for f, v in scorer.view_of.items() if v == view]
            with np.errstate(invalid="ignore"):
                for i in np.flatnonzero(ages > ttl):
                    stale[i].update(dict.fromkeys(features, float(ages[i])))
    return missing, stale, chunk.drop_columns(seen)


@dataclass(frozen=True)
class ChunkScorer:
    """Everything scoring a chunk of rows needs but the fitted model, as plain data: it
    travels to Dask workers, so that a partition there is scored by the very code the
    local loop runs."""

    model: str
    number: int
    table: str
    task: str
    estimator: str
    encoding: Encoding
    policy: Policy
    view_of: dict[str, str]
    ttl_seconds: dict[str, float]
    timestamp: str | None
    """The dataset's timestamp column: what staleness is measured against."""
    states: bool
    """The policy asks which features are missing or stale."""

    @classmethod
    def of(cls, loaded: LoadedModel, table: str, timestamp: str | None) -> ChunkScorer:
        meta = loaded.version.metadata
        return cls(
            model=loaded.spec.name,
            number=loaded.version.version,
            table=table,
            task=meta["task"],
            estimator=meta["estimator"],
            encoding=loaded.encoding,
            policy=loaded.policy,
            view_of=loaded.view_of,
            ttl_seconds=loaded.ttl_seconds,
            timestamp=timestamp,
            states=loaded.policy.needs_states(),
        )

    def score(self, chunk: pa.Table, fitted: Any) -> pa.Table:
        """The chunk's columns (less the staleness helpers), `score`, `decision` and
        `model_version`."""
        import numpy as np
        import pyarrow as pa

        from gristmill.train.estimators import estimator

        names = self.encoding.names
        missing = [c for c in names if c not in chunk.column_names]
        if missing:
            raise ConfigError(
                f"{self.table} lacks {missing[0]}, a feature of {self.model} v{self.number}"
                f" (it needs {', '.join(names)})."
            )
        family = estimator(self.estimator)
        predicted = family.predict(fitted, self.encoding.transform(chunk), self.task)
        headline = predicted if predicted.ndim == 1 else predicted.max(axis=1)
        absent: list[list[str]] | None = None
        old: list[dict[str, float]] | None = None
        if self.states:
            absent, old, chunk = _states(chunk, self)
        columns: dict[str, np.ndarray] = {
            c: chunk.column(c).to_numpy(zero_copy_only=False) for c in chunk.column_names
        }
        decisions = self.policy.decide_many(headline, columns, absent, old)
        return (
            chunk.append_column("score", pa.array(headline, pa.float64()))
            .append_column("decision", pa.array(decisions.tolist(), pa.string()))
            .append_column("model_version", pa.array(np.full(len(chunk), self.number)))
        )


def score_table(
    project: Project,
    model: str,
    table: str,
    out: str,
    ref: int | str = "champion",
    batch_rows: int = 100_000,
) -> ScoreResult:
    """Score every row of `table` with version `ref` of `model` into `out` (the table's
    columns, the features, `score`, `decision`, `model_version`). On a distributed
    executor, the rows' features are staged in partitions that workers score."""
    import pyarrow as pa

    from gristmill.features.discover import load_definitions
    from gristmill.profile import resolve_table
    from gristmill.serve.scoring import load_model
    from gristmill.train.discover import find_model, load_models

    started = time.perf_counter()
    spec = find_model(load_models(project.root), model)
    number = project.registry.resolve(model, ref)
    definitions = load_definitions(project.root)
    loaded = load_model(project, definitions, spec, number, str(ref))
    meta = loaded.version.metadata
    warehouse = project.warehouse
    relation = warehouse.qualified(*resolve_table(project, table))
    schema, _, name = out.rpartition(".")
    schema = schema or project.config.transforms.schema_name
    dataset = definitions.datasets.get(meta["training_set"])
    needed = [*loaded.entity_keys, *loaded.request_fields]
    needed += [dataset.timestamp] if dataset is not None else []
    present = warehouse.query_arrow(f"SELECT * FROM {relation} LIMIT 0").column_names
    missing = [c for c in dict.fromkeys(needed) if c not in present]
    if missing:
        raise ConfigError(
            f"{table} lacks {missing[0]}, which {model} v{number} needs (it reads"
            f" {', '.join(dict.fromkeys(needed))})."
        )
    scorer = ChunkScorer.of(loaded, table, dataset.timestamp if dataset is not None else None)
    sql = _features_sql(project, meta["training_set"], relation, seen=scorer.states)
    warehouse.ensure_schema(schema)
    scored: AbstractContextManager[Iterator[pa.Table]]
    if project.executor.DISTRIBUTED:
        from gristmill.serve.partitioned import score_partitioned

        scored = score_partitioned(project, scorer, loaded.version, sql, relation, batch_rows)
    else:
        batches = warehouse.query_batches(sql, batch_rows, beyond_decimal="float")
        scored = contextlib.nullcontext(
            scorer.score(pa.Table.from_batches([batch]), loaded.fitted) for batch in batches
        )
    with scored as tables:
        rows = _swap_in(warehouse, schema, name, tables, table)
    return ScoreResult(model, number, f"{schema}.{name}", rows, time.perf_counter() - started)


def _swap_in(
    warehouse: Warehouse, schema: str, name: str, tables: Iterable[pa.Table], table: str
) -> int:
    """Write `tables` into a table built aside, then swap it in for `schema.name` in one
    transaction: a failure on the way leaves the old table as it was."""
    staging = f"_gm_build_{name}"
    rows = 0
    created = False
    try:
        for scored in tables:
            if not created:
                warehouse.recreate_table(schema, staging, scored.schema)
                created = True
            rows += warehouse.append(schema, staging, scored.to_batches())
        if not created:
            raise ConfigError(f"{table} has no rows to score.")
        with warehouse.transaction() as tx:
            tx.execute(f"DROP TABLE IF EXISTS {warehouse.qualified(schema, name)}")
            tx.execute(
                f"ALTER TABLE {warehouse.qualified(schema, staging)} RENAME TO {warehouse.quote(name)}"
            )
    finally:
        if created:
            warehouse.execute(f"DROP TABLE IF EXISTS {warehouse.qualified(schema, staging)}")
    return rows

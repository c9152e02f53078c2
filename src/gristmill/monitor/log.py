"""The predictions a monitor reads: the prediction log synced into the warehouse, the rows
of one model since a moment in a temporary table, each logged feature a typed column
named as in the training set (so the training set's bins apply to it as they are)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from gristmill.errors import NotFoundError
from gristmill.registry.api import SHADOW

if TYPE_CHECKING:
    from gristmill.profile.stats import Column
    from gristmill.project import Project
    from gristmill.registry.base import ModelVersion
    from gristmill.warehouse.base import Warehouse

logger = logging.getLogger(__name__)

DAY = "_gm_day"
"""The UTC day (YYYY-MM-DD) a prediction was logged on."""
STALE = "_gm_stale_"
"""Prefix of the columns saying whether a feature was stale (its view past its ttl)."""
KEY = "_gm_key_"
"""Prefix of the columns holding the request's label key fields, as text."""
AT = "_gm_at"
"""When the prediction was logged (a timestamp with time zone)."""


def synced_log(project: Project, model: str) -> str:
    """The prediction log's warehouse table, synced from .gristmill/predictions/ first."""
    from gristmill.ingest import ingest
    from gristmill.project import PREDICTIONS_SOURCE

    if PREDICTIONS_SOURCE in project.config.sources:
        synced = ingest(project, f"{PREDICTIONS_SOURCE}.predictions")
        if not synced.ok:
            logger.warning("The prediction log did not sync: %s", synced.tables[0].error)
    warehouse = project.warehouse
    raw = project.config.warehouse.raw_schema
    if not warehouse.table_exists(raw, "predictions"):
        raise NotFoundError(
            f"No prediction of {model} is logged: `gristmill serve` logs each one"
            " under .gristmill/predictions/, and monitor reads them from there."
        )
    return warehouse.qualified(raw, "predictions")


@dataclass
class LoggedPredictions:
    project: Project
    model: str
    relation: str
    """The temporary table of the model's logged predictions in the window."""
    version: ModelVersion
    """The reference version: the one that made most of the predictions."""
    training_set: str
    """The reference version's training set, schema.table."""
    training_relation: str
    columns: list[Column]
    """The model's features as the training set types them."""
    stale: bool
    """Whether the log records stale features (logs written before it did not)."""
    rows: int = 0
    versions: dict[int, int] = field(default_factory=dict)
    """Predictions per version, in the window."""

    @property
    def warehouse(self) -> Warehouse:
        return self.project.warehouse

    @classmethod
    @contextmanager
    def open(
        cls, project: Project, model: str, cutoff: datetime, label_key: Sequence[str] = ()
    ) -> Iterator[LoggedPredictions]:
        import pyarrow as pa

        log = synced_log(project, model)
        warehouse = project.warehouse
        dialect = warehouse.dialect
        moment = dialect.column_type(pa.timestamp("us", tz="UTC"))
        # A shadow's scores decided nothing: `models compare` reads them, not the monitor.
        where = (
            f"model = {dialect.literal(model)} AND CAST(logged_at AS {moment})"
            f" >= {dialect.timestamp_literal(cutoff)}"
            f" AND COALESCE(alias, '') <> {dialect.literal(SHADOW)}"
        )
        versions = {
            int(v): int(n)
            for v, n in warehouse.fetchall(
                f"SELECT version, count(*) FROM {log} WHERE {where} GROUP BY 1 ORDER BY 2 DESC"
            )
        }
        reference = next(iter(versions), None)
        version = project.registry.get(model, reference if reference is not None else "latest")
        logged = cls._prepare(project, model, log, where, version, label_key)
        logged.versions = versions
        try:
            yield logged
        finally:
            warehouse.execute(f"DROP TABLE IF EXISTS {logged.relation}")

    @classmethod
    def _prepare(
        cls,
        project: Project,
        model: str,
        log: str,
        where: str,
        version: ModelVersion,
        label_key: Sequence[str] = (),
    ) -> LoggedPredictions:
        import pyarrow as pa

        from gristmill.profile import _columns, resolve_table

        warehouse = project.warehouse
        dialect = warehouse.dialect
        meta = version.metadata
        schema, table = resolve_table(project, meta["training_set"])
        by_name = {c.name: c for c in _columns(warehouse, schema, table)}
        columns = [by_name[f] for f in meta["features"] if f in by_name]
        logged_columns = set(warehouse.query_arrow(f"SELECT * FROM {log} LIMIT 0").column_names)
        stale = "stale_features" in logged_columns
        moment = dialect.column_type(pa.timestamp("us", tz="UTC"))
        names = [c.name for c in columns]
        parsed, values = dialect.json_fields("features", names, "_gm_features")
        inner = [f"{parsed} AS _gm_features"]
        if stale:
            parsed_stale, stale_values = dialect.json_fields("stale_features", names, "_gm_stale")
            inner.append(f"{parsed_stale} AS _gm_stale")
        parsed_request, keys = dialect.json_fields("request", list(label_key), "_gm_request")
        if label_key:
            inner.append(f"{parsed_request} AS _gm_request")
        parts = [
            f"substr(logged_at, 1, 10) AS {DAY}",
            f"CAST(logged_at AS {moment}) AS {AT}",
            "version",
            "score",
            "decision",
            "latency_ms",
        ]
        for i, (column, value) in enumerate(zip(columns, values, strict=True)):
            parts.append(f"CAST({value} AS {column.type}) AS {column.sql}")
            if stale:
                parts.append(f"CASE WHEN {stale_values[i]} IS NULL THEN 0 ELSE 1 END AS {STALE}{i}")
        parts += [f"{value} AS {KEY}{i}" for i, value in enumerate(keys)]
        relation = warehouse.quote(f"_gm_monitor_{uuid.uuid4().hex[:10]}")
        warehouse.execute(
            f"CREATE TEMPORARY TABLE {relation} AS SELECT {', '.join(parts)}"
            f" FROM (SELECT *, {', '.join(inner)} FROM {log} WHERE {where}) AS p"
        )
        rows = int(warehouse.fetchall(f"SELECT count(*) FROM {relation}")[0][0])
        return cls(
            project,
            model,
            relation,
            version,
            f"{schema}.{table}",
            warehouse.qualified(schema, table),
            columns,
            stale,
            rows,
        )

"""`gristmill score`: a registered model over a whole warehouse table, in batches. When the
model was trained on a dataset, each row gets its features as of its own time by the
dataset's point-in-time SQL (the training sets' logic); otherwise the table holds them.
The scores land in a table built aside and swapped in, so nothing half-written remains."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gristmill.errors import ConfigError

if TYPE_CHECKING:
    from gristmill.project import Project


@dataclass
class ScoreResult:
    model: str
    version: int
    table: str
    rows: int
    seconds: float


def _features_sql(project: Project, training_set: str, relation: str) -> str:
    """The table's rows with the model's feature views joined as of each row's time."""
    from gristmill.features.discover import load_definitions
    from gristmill.features.pit import training_set_sql
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
    spine = f"SELECT * FROM {relation}"
    engine = project.warehouse.dialect
    return training_set_sql(spine, dataset.timestamp, selections, engine, dataset.inclusive)


def score_table(
    project: Project,
    model: str,
    table: str,
    out: str,
    ref: int | str = "champion",
    batch_rows: int = 100_000,
) -> ScoreResult:
    """Score every row of `table` with version `ref` of `model` into `out` (the table's
    columns, the features, `score`, `decision`, `model_version`)."""
    import numpy as np
    import pyarrow as pa

    from gristmill.features.discover import load_definitions
    from gristmill.profile import resolve_table
    from gristmill.serve.scoring import load_model
    from gristmill.train.discover import find_model, load_models
    from gristmill.train.encode import Encoding
    from gristmill.train.estimators import estimator

    started = time.perf_counter()
    spec = find_model(load_models(project.root), model)
    number = project.registry.resolve(model, ref)
    definitions = load_definitions(project.root)
    loaded = load_model(project, definitions, spec, number, str(ref))
    meta = loaded.version.metadata
    encoding = Encoding.from_dict(meta["encoding"])
    family = estimator(meta["estimator"])
    warehouse = project.warehouse
    relation = warehouse.qualified(*resolve_table(project, table))
    schema, _, name = out.rpartition(".")
    schema = schema or project.config.transforms.schema_name
    staging = f"_gm_build_{name}"
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
    sql = _features_sql(project, meta["training_set"], relation)
    rows = 0
    created = False
    warehouse.ensure_schema(schema)
    try:
        for batch in warehouse.query_batches(sql, batch_rows, beyond_decimal="float"):
            chunk = pa.Table.from_batches([batch])
            missing = [c for c in encoding.names if c not in chunk.column_names]
            if missing:
                raise ConfigError(
                    f"{table} lacks {missing[0]}, a feature of {model} v{number} (it needs"
                    f" {', '.join(encoding.names)})."
                )
            predicted = family.predict(loaded.fitted, encoding.transform(chunk), meta["task"])
            headline = predicted if predicted.ndim == 1 else predicted.max(axis=1)
            columns = {
                c: chunk.column(c).to_numpy(zero_copy_only=False) for c in chunk.column_names
            }
            decisions = loaded.policy.decide_many(headline, columns)
            scored = (
                chunk.append_column("score", pa.array(headline, pa.float64()))
                .append_column("decision", pa.array(decisions.tolist(), pa.string()))
                .append_column("model_version", pa.array(np.full(len(chunk), number)))
            )
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
    return ScoreResult(model, number, f"{schema}.{name}", rows, time.perf_counter() - started)

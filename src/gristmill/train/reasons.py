"""Why a registered model scored rows as it did: each row's prediction and the features
that moved it most (per-row contributions: LightGBM's and XGBoost's own, TreeSHAP for
scikit-learn trees, coefficients for linear models)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

    from gristmill.project import Project


@dataclass
class RowReasons:
    row: dict[str, Any]
    """The row's identifying columns (those the model left out)."""
    prediction: Any
    contributions: list[tuple[str, Any, float]] = field(default_factory=list)
    """(feature, its value, its contribution), largest effect first."""
    bias: float = 0.0
    """What every row starts from (contributions are added to it)."""


def explain_table(
    project: Project, model: str, ref: int | str, table: pa.Table, top: int = 5
) -> list[RowReasons]:
    """Each row of `table` (a model's feature columns, and any others) scored by the
    version `ref` of `model`, with its `top` contributions."""
    import numpy as np

    from gristmill.train.encode import Encoding
    from gristmill.train.estimators import estimator
    from gristmill.train.explain import contributions

    version = project.registry.get(model, ref)
    meta = version.metadata
    encoding = Encoding.from_dict(meta["encoding"])
    fitted = project.registry.load_estimator(model, version.version)
    X = encoding.transform(table)
    family = estimator(meta["estimator"])
    predicted = family.predict(fitted, X, meta["task"])
    parts = contributions(fitted, X, encoding.names)
    if parts.ndim == 3:  # multiclass: the predicted class's contributions
        picked = np.argmax(predicted, axis=1)
        parts = parts[np.arange(len(parts)), picked]
    names = encoding.names
    ids = [c for c in table.column_names if c not in names]
    rows = table.to_pylist()
    explained = []
    for i, row in enumerate(rows):
        order = np.argsort(-np.abs(parts[i, :-1]))[:top]
        value = predicted[i].tolist() if np.ndim(predicted[i]) else float(predicted[i])
        explained.append(
            RowReasons(
                {c: row[c] for c in ids},
                value,
                [(names[j], row.get(names[j]), float(parts[i, j])) for j in order],
                float(parts[i, -1]),
            )
        )
    return explained


def explain_rows(
    project: Project, model: str, ref: int | str = "champion", where: str = "", limit: int = 5
) -> list[RowReasons]:
    """Rows of the model's training set (those meeting the SQL condition `where`), scored
    and explained by the version `ref`."""
    from gristmill.train.data import identifiers
    from gristmill.train.discover import find_model, load_models

    spec = find_model(load_models(project.root), model)
    relation, _, _ = identifiers(project, spec)
    condition = f" WHERE {where}" if where else ""
    try:
        table = project.warehouse.query_arrow(
            f"SELECT * FROM {relation}{condition} LIMIT {int(limit)}", beyond_decimal="float"
        )
    except Exception as exc:
        raise ConfigError(f"--where {where!r} is not a condition on {relation}: {exc}") from None
    return explain_table(project, model, ref, table)

"""Why a registered model scored rows as it did: each row's prediction and the features
that moved it most (per-row contributions: LightGBM's and XGBoost's own, TreeSHAP for
scikit-learn trees, coefficients for linear models)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError
from gristmill.train.policy import is_missing

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import numpy as np
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


def drivers(
    names: Sequence[str], row: Mapping[str, Any], effects: np.ndarray, top: int
) -> list[tuple[str, Any, float]]:
    """The `top` features that moved a row's score most, as (feature, value, effect),
    largest effect first. A feature without a value is never one: the model took its
    missing-value branch, and citing "income: null" would blame the customer for a gap
    in our data (the response lists missing features on their own)."""
    import numpy as np

    picked: list[tuple[str, Any, float]] = []
    for j in np.argsort(-np.abs(effects[: len(names)]), kind="stable"):
        value = row.get(names[j])
        if is_missing(value):
            continue
        picked.append((names[j], value, float(effects[j])))
        if len(picked) == top:
            break
    return picked


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
        value = predicted[i].tolist() if np.ndim(predicted[i]) else float(predicted[i])
        explained.append(
            RowReasons(
                {c: row[c] for c in ids},
                value,
                drivers(names, row, parts[i], top),
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

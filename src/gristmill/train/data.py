"""A model's training data: the training set's rows read from the warehouse, its feature
columns chosen, its target checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError, did_you_mean
from gristmill.train.encode import column_kind

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from gristmill.project import Project
    from gristmill.train.spec import Model


@dataclass
class TrainingData:
    table: pa.Table
    """The rows that have a target."""
    relation: str
    features: list[str]
    time_column: str | None
    left_out: dict[str, str] = field(default_factory=dict)
    """Columns that are not features, and why."""
    unlabelled: int = 0
    """Rows dropped because their target is missing."""

    def target(self, model: Model) -> tuple[np.ndarray, list[Any]]:
        """The target as the estimator takes it, and the classes (codes 0..k-1 stand for
        them) of a classification."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        column = self.table.column(model.target)
        if model.task == "regression":
            if column_kind(column.type) != "numeric":
                raise ConfigError(
                    f"Model {model.name}: a regression target must be a number; {model.target} is"
                    f" {column.type}."
                )
            return pc.cast(column, pa.float64()).to_numpy(), []
        classes = sorted(pc.unique(column).to_pylist(), key=lambda v: (str(type(v)), v))
        if model.task == "binary":
            if len(classes) != 2 or not set(classes) <= {0, 1}:  # True == 1
                shown = ", ".join(repr(c) for c in classes[:5])
                raise ConfigError(
                    f"Model {model.name}: a binary target holds true/false or 1/0; {model.target}"
                    f" holds {shown}. Make it so in SQL (CASE WHEN ... THEN 1 ELSE 0 END), or use"
                    " task='multiclass'."
                )
            classes = [False, True] if isinstance(classes[0], bool) else [0, 1]
            return pc.cast(column, pa.int32()).to_numpy(), classes  # the value is the code
        codes = pc.index_in(column, value_set=pa.array(classes, column.type))
        return codes.to_numpy().astype(np.int32), classes

    def times(self) -> np.ndarray | None:
        if self.time_column is None:
            return None
        import pyarrow as pa
        import pyarrow.compute as pc

        column = self.table.column(self.time_column)
        if column_kind(column.type) == "time":
            column = pc.cast(pc.cast(column, pa.timestamp("us")), pa.int64())
        moments: np.ndarray = column.to_numpy()
        return moments


def identifiers(project: Project, model: Model) -> tuple[str, str | None, set[str]]:
    """The training set's relation, its time column and its identifier columns: a
    dataset's (its table, spine timestamp, the views' entity keys) or a table's."""
    from gristmill.features.discover import load_definitions
    from gristmill.profile import resolve_table

    definitions = load_definitions(project.root)
    if model.training_set in definitions.datasets:
        dataset = definitions.datasets[model.training_set]
        schema = project.config.transforms.schema_name
        keys = {
            k for entry in dataset.features for k in definitions.view(entry.split(".")[0]).entity
        }
        relation = project.warehouse.qualified(schema, dataset.name)
        return relation, model.time_column or dataset.timestamp, keys
    schema, table = resolve_table(project, model.training_set)
    return project.warehouse.qualified(schema, table), model.time_column, set()


def load_training_data(project: Project, model: Model) -> TrainingData:
    """Every row of the model's training set that has a target, and its feature columns."""
    import pyarrow.compute as pc

    relation, time_column, keys = identifiers(project, model)
    # In time order, so that a time split's training rows are a prefix: sliced, not copied.
    order = f" ORDER BY {project.warehouse.quote(time_column)}" if time_column else ""
    # A model takes doubles: a NUMERIC column that no decimal holds (NaN) arrives as them.
    table = project.warehouse.query_arrow(
        f"SELECT * FROM {relation}{order}", beyond_decimal="float"
    )
    names = table.column_names
    for wanted in [
        model.target,
        *(model.features or []),
        *model.exclude,
        *([time_column] if time_column else []),
    ]:
        if wanted not in names:
            raise ConfigError(
                f"{model.where}: model {model.name} names the column {wanted}, which"
                f" {model.training_set} does not have.{did_you_mean(wanted, names)}"
            )
    group = model.split.group if model.split else None
    left_out = {model.target: "the target"}
    if time_column:
        left_out[time_column] = "the time column"
    for name in model.exclude:
        left_out[name] = "excluded"
    if group:
        left_out.setdefault(group, "the split's group")
    if model.features is not None:
        features = list(model.features)
        left_out |= {n: "not listed" for n in names if n not in features and n not in left_out}
    else:
        features = []
        for name in names:
            if name in left_out:
                continue
            kind = column_kind(table.schema.field(name).type)
            if name in keys or name == "id" or name.endswith("_id"):
                left_out[name] = "an identifier"
            elif kind == "time":
                left_out[name] = "a time (derive an age in SQL to use it)"
            elif kind == "other":
                left_out[name] = f"of type {table.schema.field(name).type}"
            else:
                features.append(name)
    if not features:
        raise ConfigError(f"{model.where}: model {model.name} has no feature columns left.")
    target = table.column(model.target)
    kept = table.filter(pc.is_valid(target)) if target.null_count else table
    return TrainingData(
        kept, relation, features, time_column, left_out, table.num_rows - kept.num_rows
    )

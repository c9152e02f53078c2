"""From a training set's columns to the matrix an estimator fits, the same way at training
and at serving time: numbers as they are (missing as NaN), booleans as 0/1, text as
category codes (missing and never-seen values as NaN). The encoding is plain data (JSON in
the registry), never a pickled object."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from gristmill.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

MAX_CATEGORIES = 1000
"""The most frequent values of a text column that get their own code; rarer ones count as
missing (an id-like column should not be a feature)."""


@dataclass
class ColumnEncoding:
    name: str
    kind: Literal["numeric", "categorical"]
    categories: list[str] | None = None
    """A categorical column's values, in code order (most frequent first)."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "categories": self.categories}


def column_kind(dtype: pa.DataType) -> Literal["numeric", "categorical", "time", "other"]:
    import pyarrow as pa

    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_boolean(dtype):
        return "numeric"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "categorical"
    if pa.types.is_temporal(dtype):
        return "time"
    return "other"


@dataclass
class Encoding:
    columns: list[ColumnEncoding]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def categorical(self) -> list[int]:
        """Positions of the categorical columns in the matrix."""
        return [i for i, c in enumerate(self.columns) if c.kind == "categorical"]

    @classmethod
    def fit(cls, table: pa.Table, features: list[str]) -> Encoding:
        """Learn each feature's encoding from the training rows."""
        import pyarrow.compute as pc

        columns = []
        for name in features:
            kind = column_kind(table.schema.field(name).type)
            if kind not in ("numeric", "categorical"):
                raise ConfigError(
                    f"Feature {name} is of type {table.schema.field(name).type}, which a model"
                    " cannot use as it is: derive a number from it in SQL (an age in days, say),"
                    " or leave it out with exclude=[...]."
                )
            if kind == "numeric":
                columns.append(ColumnEncoding(name, "numeric"))
                continue
            counts = pc.value_counts(table.column(name).drop_null())
            ranked = sorted(
                zip(
                    counts.field("values").to_pylist(),
                    counts.field("counts").to_pylist(),
                    strict=True,
                ),
                key=lambda vc: (-vc[1], str(vc[0])),
            )
            categories = [str(v) for v, _ in ranked[:MAX_CATEGORIES]]
            columns.append(ColumnEncoding(name, "categorical", categories))
        return cls(columns)

    def transform(self, table: pa.Table) -> np.ndarray:
        """The float64 matrix of `table`'s rows, one column per feature."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        # Column-major, so that each feature is written in one contiguous run (LightGBM and
        # scikit-learn take either layout).
        matrix = np.empty((table.num_rows, len(self.columns)), dtype=np.float64, order="F")
        for i, column in enumerate(self.columns):
            if column.name not in table.column_names:
                raise ConfigError(f"The rows have no column {column.name}, a feature of the model.")
            values = table.column(column.name)
            if column.kind == "categorical":
                codes = pc.index_in(
                    pc.cast(values, pa.string()),
                    value_set=pa.array(column.categories or [], pa.string()),
                )
                values = pc.cast(codes, pa.float64())
            else:
                values = pc.cast(values, pa.float64())
            matrix[:, i] = pc.fill_null(values, float("nan")).to_numpy()
        return matrix

    @cached_property
    def _codes(self) -> list[dict[str, float]]:
        """Per column, each category's code (for `transform_rows`)."""
        return [{v: float(i) for i, v in enumerate(c.categories or [])} for c in self.columns]

    def transform_rows(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """The matrix of a few rows given as dicts (a served request), without Arrow:
        the same codes as `transform`, at a fraction of its fixed cost per call."""
        import numpy as np

        codes = self._codes
        nan = float("nan")
        matrix = np.empty((len(rows), len(self.columns)), dtype=np.float64)
        for r, row in enumerate(rows):
            for i, column in enumerate(self.columns):
                value = row.get(column.name)
                if value is None:
                    matrix[r, i] = nan
                elif column.kind == "categorical":
                    matrix[r, i] = codes[i].get(str(value), nan)
                else:
                    matrix[r, i] = float(value)
        return matrix

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Encoding:
        return cls([ColumnEncoding(**c) for c in data["columns"]])

"""What a Python transform's function receives: the warehouse's Arrow table, or a pandas
or polars frame of it, every value as it is."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from gristmill.errors import TransformError
from gristmill.transforms.python import to_frame

WIDE = pa.table(
    {
        "id": [1, 2],
        "exact": pa.array([Decimal("1" * 30 + ".25"), None], pa.decimal128(38, 2)),
        "wide": pa.array([Decimal("1" * 40 + ".5"), Decimal("-3")], pa.decimal256(45, 1)),
    }
)


def test_pandas_holds_every_decimal() -> None:
    frame = to_frame(WIDE, "pandas", "transforms/t.py:3")
    assert frame["wide"].tolist() == [Decimal("1" * 40 + ".5"), Decimal("-3")]
    assert frame["exact"].tolist()[0] == Decimal("1" * 30 + ".25")


def test_polars_refuses_a_decimal_it_cannot_hold_by_name() -> None:
    narrow = to_frame(WIDE.select(["id", "exact"]), "polars", "transforms/t.py:3")
    assert narrow["exact"].to_list()[0] == Decimal("1" * 30 + ".25")
    with pytest.raises(TransformError, match=r"transforms/t.py:3: column wide .* 38 digits"):
        to_frame(WIDE, "polars", "transforms/t.py:3")

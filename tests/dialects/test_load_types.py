"""How each warehouse engine loads the Arrow types a source describes (README, Types):
the Arrow type values travel in (`load_type`) and the column type that stores them."""

from __future__ import annotations

import pyarrow as pa
import pytest

from gristmill.dialects import dialect
from gristmill.errors import TypeMappingError
from gristmill.postgres_adbc import UNBOUNDED_NUMERIC, numeric_type

WIDE_NUMERIC = pa.opaque(pa.string(), "numeric(100,50)", "PostgreSQL")

# Arrow type -> (DuckDB load type, DuckDB column, PostgreSQL load type, PostgreSQL column);
# None where the engine stops the table.
LOADS = {
    "unconstrained numeric": (
        UNBOUNDED_NUMERIC,
        (pa.decimal128(38, 9), "DECIMAL(38,9)"),
        (UNBOUNDED_NUMERIC, "NUMERIC"),
    ),
    "numeric(100,50)": (WIDE_NUMERIC, None, (WIDE_NUMERIC, "NUMERIC(100,50)")),
    "decimal256(65,30)": (
        pa.decimal256(65, 30),
        None,
        (pa.decimal256(65, 30), "NUMERIC(65,30)"),
    ),
    "decimal256(20,2)": (
        pa.decimal256(20, 2),
        (pa.decimal128(20, 2), "DECIMAL(20,2)"),
        (pa.decimal256(20, 2), "NUMERIC(20,2)"),
    ),
    "numeric[]": (
        pa.list_(UNBOUNDED_NUMERIC),
        (pa.list_(pa.decimal128(38, 9)), "DECIMAL(38,9)[]"),
        (pa.list_(UNBOUNDED_NUMERIC), "NUMERIC[]"),
    ),
    "timestamp[ns]": (
        pa.timestamp("ns"),
        (pa.timestamp("ns"), "TIMESTAMP_NS"),
        (pa.timestamp("us"), "TIMESTAMP"),
    ),
    "timestamp[ns, UTC]": (
        pa.timestamp("ns", tz="UTC"),
        (pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ"),
        (pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ"),
    ),
    "int64": (pa.int64(), (pa.int64(), "BIGINT"), (pa.int64(), "BIGINT")),
}


@pytest.mark.parametrize("case", sorted(LOADS))
@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_load_type_and_column_type(case: str, engine: str) -> None:
    dtype, on_duckdb, on_postgres = LOADS[case]
    expected = on_duckdb if engine == "duckdb" else on_postgres
    d = dialect(engine)
    schema = pa.schema([pa.field("amount", dtype)])
    if expected is None:
        with pytest.raises(TypeMappingError) as info:
            d.load_schema(schema)
        assert info.value.column == "amount" and info.value.overrides[0] == "text"
        assert "38 digits" in str(info.value)
        return
    load, column = expected
    assert d.load_schema(schema).field("amount").type == load
    assert d.column_type(dtype) == column
    assert d.column_type(load) == column


@pytest.mark.parametrize(
    ("typmod_of", "expected"),
    [
        ("numeric", UNBOUNDED_NUMERIC),
        ("numeric(12,2)", pa.decimal128(12, 2)),
        ("numeric(38,0)", pa.decimal128(38, 0)),
        ("numeric(39,10)", pa.decimal256(39, 10)),
        ("numeric(76,76)", pa.decimal256(76, 76)),
        ("numeric(100,50)", WIDE_NUMERIC),
        ("numeric(3,-2)", pa.decimal128(5, 0)),
    ],
)
def test_postgres_numeric_types_are_exact(typmod_of: str, expected: pa.DataType) -> None:
    if typmod_of == "numeric":
        typmod = -1
    else:
        precision, scale = (int(p) for p in typmod_of[8:-1].split(","))
        typmod = ((precision << 16) | (scale & 0x7FF)) + 4
    assert numeric_type(typmod) == expected

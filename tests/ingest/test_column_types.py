"""column_types: a table's columns read as another type, checked when the project loads
and when the table is described, converted exactly (or, for "double", as asked)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gristmill.config import load_config
from gristmill.errors import ConfigError
from tests.helpers import run_ingest, warehouse_rows, write_project
from tests.ingest.harness import SQLiteHarness


def test_an_unknown_type_is_refused_naming_the_column_and_the_closest_type(
    project_dir: Path,
) -> None:
    write_project(
        project_dir,
        {
            "app": {
                "type": "sqlite",
                "path": "a.db",
                "tables": {"loans": {"column_types": {"rate": "dbl"}}},
            }
        },
    )

    with pytest.raises(ConfigError) as info:
        load_config(project_dir / "gristmill.toml")

    message = str(info.value)
    assert "sources.app.tables.loans.column_types" in message and "column 'rate'" in message
    assert "Did you mean 'double'?" in message


@pytest.mark.parametrize("bad", ["decimal(80,2)", "decimal(5,6)"])
def test_a_decimal_beyond_any_engine_is_refused(project_dir: Path, bad: str) -> None:
    tables = {"loans": {"column_types": {"rate": bad}}}
    write_project(project_dir, {"app": {"type": "sqlite", "path": "a.db", "tables": tables}})

    with pytest.raises(ConfigError, match="precision"):
        load_config(project_dir / "gristmill.toml")


def test_an_unknown_column_fails_its_table_with_a_close_match(
    tmp_path: Path, project_dir: Path
) -> None:
    sqlite = SQLiteHarness(tmp_path)
    sqlite.create_table("loans", {"id": "bigint", "rate": "decimal(12,2)"})
    tables = {"loans": {"column_types": {"rat": "double"}}}
    write_project(project_dir, {"app": {**sqlite.source_config(), "tables": tables}})

    (result,) = run_ingest(project_dir).tables

    assert result.status == "failed"
    assert "'rat'" in (result.error or "") and "Did you mean 'rate'?" in (result.error or "")


def test_overrides_convert_exactly_or_as_asked(tmp_path: Path, project_dir: Path) -> None:
    sqlite = SQLiteHarness(tmp_path)
    sqlite.create_table(
        "loans", {"id": "bigint", "rate": "decimal(12,2)", "code": "text", "flag": "bool"}
    )
    sqlite.insert("loans", [{"id": 1, "rate": Decimal("0.125"), "code": "0042", "flag": 5}])
    overrides = {"rate": "double", "code": "int", "flag": "decimal(3,1)"}
    write_project(
        project_dir,
        {"app": {**sqlite.source_config(), "tables": {"loans": {"column_types": overrides}}}},
    )

    summary = run_ingest(project_dir)

    assert summary.ok, summary.to_dict()
    assert warehouse_rows(project_dir, "loans") == [
        {"id": 1, "rate": 0.125, "code": 42, "flag": Decimal("5.0")}
    ]
    # A value the override cannot hold exactly stops the table: never rounded.
    sqlite.execute("UPDATE loans SET code = '4.5'")

    (result,) = run_ingest(project_dir).tables

    assert result.status == "failed" and "'4.5'" in (result.error or "")
    assert "column 'code'" in (result.error or "")

"""Reading transforms: SQL headers, decorator options, and their mistakes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gristmill.durations import parse_duration
from gristmill.errors import ConfigError
from gristmill.transforms.definition import parse_sql_file


def write(tmp_path: Path, text: str, name: str = "daily.sql") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_header_sets_materialization_and_checks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '-- # Daily totals per user.\n-- materialized = "incremental"\n'
        '-- unique_key = "user_id"\n-- time_column = "day"\n-- lookback = "2d"\n'
        '-- checks = [\n--   { not_null = ["user_id"] },\n-- ]\n'
        "SELECT user_id, day FROM orders;\n",
    )
    transform = parse_sql_file(path, Path("transforms/daily.sql"))
    assert transform.name == "daily"
    assert transform.options.materialized == "incremental"
    assert transform.options.unique_key == ["user_id"]
    assert transform.options.lookback_delta == timedelta(days=2)
    assert transform.options.checks == [{"not_null": ["user_id"]}]
    assert transform.sql.endswith("FROM orders")


def test_no_header_means_a_table(tmp_path: Path) -> None:
    transform = parse_sql_file(write(tmp_path, "SELECT 1 AS x"), Path("t/daily.sql"))
    assert transform.options.materialized == "table"


def test_prose_in_the_header_must_be_marked(tmp_path: Path) -> None:
    path = write(tmp_path, "-- Totals per user\nSELECT 1")
    with pytest.raises(ConfigError, match=r"daily\.sql: the header comment is not valid TOML"):
        parse_sql_file(path, Path("transforms/daily.sql"))


def test_bad_options_are_named(tmp_path: Path) -> None:
    bad = write(tmp_path, '-- materialized = "incremental"\nSELECT 1')
    with pytest.raises(ConfigError, match="needs time_column"):
        parse_sql_file(bad, Path("transforms/daily.sql"))
    typo = write(tmp_path, '-- materialised = "view"\nSELECT 1')
    with pytest.raises(ConfigError, match="materialised"):
        parse_sql_file(typo, Path("transforms/daily.sql"))
    kind = write(tmp_path, '-- materialized = "snapshot"\nSELECT 1')
    with pytest.raises(ConfigError, match="materialized"):
        parse_sql_file(kind, Path("transforms/daily.sql"))


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no SELECT"):
        parse_sql_file(write(tmp_path, '-- materialized = "view"\n'), Path("t/daily.sql"))


def test_definition_hash_follows_sql_and_options(tmp_path: Path) -> None:
    one = parse_sql_file(write(tmp_path, "SELECT 1 AS x"), Path("a.sql"))
    same = parse_sql_file(write(tmp_path, "SELECT 1 AS x;\n"), Path("a.sql"))
    other = parse_sql_file(
        write(tmp_path, '-- materialized = "view"\nSELECT 1 AS x'), Path("a.sql")
    )
    assert one.definition_hash == same.definition_hash != other.definition_hash


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30m", timedelta(minutes=30)), ("24h", timedelta(hours=24)), ("2 days", timedelta(days=2))],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")

"""Every warehouse session runs in UTC, whatever the machine's, the server's or the
role's time zone: the same SQL gives the same dates and times on DuckDB and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from gristmill.config import WarehouseConfig
from gristmill.warehouse import connect_warehouse


def test_sessions_run_in_utc(
    warehouse_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    config = dict(warehouse_config)
    if config["type"] == "postgres":
        config["url"] += "?options=-c%20TimeZone%3DAmerica/Los_Angeles"
    warehouse = connect_warehouse(WarehouseConfig(**config), tmp_path)
    try:
        moment = "CAST('2026-01-01 01:30:00+00' AS TIMESTAMPTZ)"
        [row] = warehouse.query_arrow(
            f"SELECT CAST({moment} AS DATE) AS day, CAST({moment} AS TIMESTAMP) AS wall,"
            f" {moment} AS instant"
        ).to_pylist()
    finally:
        warehouse.close()
        monkeypatch.undo()
        time.tzset()
    assert row["day"] == date(2026, 1, 1)
    assert row["wall"] == datetime(2026, 1, 1, 1, 30)
    assert row["instant"] == datetime(2026, 1, 1, 1, 30, tzinfo=UTC)
    assert str(row["instant"].tzinfo) == "UTC"

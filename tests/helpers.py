"""Helpers for tests that build projects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

from gristmill.ingest import IngestSummary, ingest
from gristmill.project import Project


def write_project(root: Path, sources: dict[str, Any], **extra: Any) -> Path:
    config = {"name": "test", "sources": sources, **extra}
    (root / "gristmill.toml").write_text(tomli_w.dumps(config))
    return root


def run_ingest(root: Path, selector: str | None = None, **kwargs: Any) -> IngestSummary:
    with Project.load(root) as project:
        return ingest(project, selector, **kwargs)


def warehouse_rows(root: Path, table: str, order_by: str = "id") -> list[dict[str, Any]]:
    with Project.load(root) as project:
        schema = project.config.warehouse.raw_schema
        rows: list[dict[str, Any]] = project.warehouse.query_arrow(
            f'SELECT * FROM "{schema}"."{table}" ORDER BY {order_by}'
        ).to_pylist()
        return rows

"""Exploratory data analysis, computed in the warehouse: `profile(project, table)`.

Statistics are pushed down to the engine as SQL (`stats.py`); `target.py` relates every
column to a binary target (rate by bin, WoE, IV, leakage); `drift.py` follows rows over
time and measures how distributions shift (PSI); `report.py` renders the HTML page.
"""

from __future__ import annotations

import time as clock
import uuid
from typing import TYPE_CHECKING

from gristmill.errors import ConfigError, NotFoundError, did_you_mean
from gristmill.profile.model import TableProfile
from gristmill.profile.stats import Column, TableStats, kind_of

if TYPE_CHECKING:
    from gristmill.project import Project
    from gristmill.warehouse.base import Warehouse

__all__ = ["TableProfile", "profile", "resolve_table"]


def resolve_table(project: Project, name: str) -> tuple[str, str]:
    """(schema, table) of a warehouse table named `schema.table` or just `table` (looked
    up among derived tables, then raw ones)."""
    relations = project.warehouse.relations()
    schema, _, table = name.rpartition(".")
    schemas = (
        [schema]
        if schema
        else [
            project.config.transforms.schema_name,
            project.config.warehouse.raw_schema,
        ]
    )
    for candidate in schemas:
        if (candidate, table) in relations:
            return candidate, table
    known = [
        f"{s}.{t}"
        for s, t in relations
        if not t.startswith("_gm_") and not s.startswith("_gristmill")
    ]
    raise NotFoundError(
        f"No table '{name}' in the warehouse.{did_you_mean(name, known + [t for _, t in relations])}"
    )


def _columns(warehouse: Warehouse, schema: str, table: str) -> list[Column]:
    relation = warehouse.qualified(schema, table)
    arrow = warehouse.query_arrow(f"SELECT * FROM {relation} LIMIT 0").schema
    types = warehouse.columns().get(schema, {}).get(table, {})
    return [
        Column(f.name, types.get(f.name, str(f.type)), kind_of(f.type), warehouse.quote(f.name))
        for f in arrow
    ]


def _pick(columns: list[Column], name: str | None, option: str, table: str) -> Column | None:
    if name is None:
        return None
    for column in columns:
        if column.name == name:
            return column
    names = [c.name for c in columns]
    raise ConfigError(
        f"{option} {name}: {table} has no such column.{did_you_mean(name, names)}"
        f" Its columns: {', '.join(names)}."
    )


def profile(
    project: Project,
    table: str,
    *,
    target: str | None = None,
    time: str | None = None,
    sample: int | None = None,
    compare: str | None = None,
) -> TableProfile:
    """Profile a warehouse table: per-column statistics, and with `target` how each column
    relates to a binary target, with `time` how it drifts, with `compare` how another table
    differs. `sample` profiles a fixed random sample of that many rows instead."""
    from gristmill.profile import drift
    from gristmill.profile.target import relate

    started = clock.perf_counter()
    warehouse = project.warehouse
    schema, name = resolve_table(project, table)
    columns = _columns(warehouse, schema, name)
    target_column = _pick(columns, target, "--target", table)
    time_column = _pick(columns, time, "--time", table)
    relation = warehouse.qualified(schema, name)
    sample_table = None
    if sample is not None:
        total = warehouse.row_count(schema, name)
        if total > sample:
            sample_table = f"_gm_profile_{uuid.uuid4().hex[:8]}"
            warehouse.execute(
                f"CREATE TEMPORARY TABLE {warehouse.quote(sample_table)} AS"
                f" {warehouse.dialect.sample_sql(relation, sample)}"
            )
            relation = warehouse.quote(sample_table)
    try:
        stats = TableStats(warehouse, relation, columns)
        profiles = stats.profile()
        result = TableProfile(
            table=f"{schema}.{name}",
            rows=stats.rows,
            columns=profiles,
            duplicate_rows=stats.duplicate_rows() or 0,
            correlations=stats.correlations(),
            candidate_keys=stats.candidate_keys(profiles),
            target=target,
            sampled=stats.rows if sample_table else None,
        )
        _table_warnings(result)
        if target_column is not None:
            relate(stats, columns, profiles, result, target_column, time_column)
        if time_column is not None:
            drift.over_time(stats, columns, profiles, result, time_column)
        if compare is not None:
            other_schema, other_name = resolve_table(project, compare)
            result.compared_with = f"{other_schema}.{other_name}"
            other = TableStats(
                warehouse,
                warehouse.qualified(other_schema, other_name),
                _columns(warehouse, other_schema, other_name),
            )
            drift.against(stats, other, columns, profiles, result)
    finally:
        if sample_table is not None:
            warehouse.execute(f"DROP TABLE IF EXISTS {warehouse.quote(sample_table)}")
    result.seconds = clock.perf_counter() - started
    return result


def _table_warnings(result: TableProfile) -> None:
    for column in result.columns:
        for flag, text in (
            ("all_missing", "has no values"),
            ("constant", "holds a single value"),
            ("high_cardinality", "has a distinct value in most rows"),
        ):
            if flag in column.flags:
                result.warnings.append(f"{column.name} {text}.")
    if result.duplicate_rows:
        result.warnings.append(f"{result.duplicate_rows:,} rows repeat another row exactly.")

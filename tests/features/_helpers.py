"""A project whose feature view reads a DuckDB warehouse table written directly, for the
tests of pushed events, the serving clock and verify."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from tests.conftest import require_server

VIEW = """
from gristmill.features import FeatureView, aggregate, expression

payments = FeatureView(
    name="payments",
    entity=["user_id"],
    timestamp="happened",
    source="raw.payments",
    features=[
        aggregate("declines", "count", windows=["7d"], filter="declined"),
        aggregate("paid", "sum", "amount", windows=["1d", "7d"]),
        aggregate("score", "max", "score", windows=["1d"]),
        aggregate("shops", "count_distinct", "shop", windows=["7d"]),
        expression("last_shop", "shop"),
    ],
)
"""
"""No ttl: the view's span is its longest window, 7 days."""

COLUMNS = (
    "user_id BIGINT, amount DECIMAL(12, 2), score DOUBLE, shop VARCHAR, declined BOOLEAN,"
    " happened TIMESTAMP"
)


def now() -> datetime:
    """The serving clock, as the naive UTC times of the warehouse table."""
    return datetime.now(UTC).replace(tzinfo=None)


@contextmanager
def payments_project(
    root: Path,
    rows: Sequence[tuple[Any, ...]],
    *,
    store: str = "sqlite",
    view: str = VIEW,
    columns: str = COLUMNS,
    table: str = "payments",
    online: dict[str, Any] | None = None,
) -> Iterator[Path]:
    """A project at `root` with raw.`table` holding `rows`, the view in features/, and
    its online store of the kind `store` (Redis keys under a prefix of their own, deleted
    afterwards)."""
    import duckdb

    (root / "features").mkdir(parents=True)
    (root / ".gristmill").mkdir()
    (root / "features" / "view.py").write_text(view)
    with duckdb.connect(str(root / ".gristmill" / "warehouse.duckdb")) as db:
        db.execute("CREATE SCHEMA raw")
        db.execute(f"CREATE TABLE raw.{table} ({columns})")
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            db.executemany(f"INSERT INTO raw.{table} VALUES ({marks})", [list(r) for r in rows])
    config: dict[str, Any] = {"type": "sqlite", "path": ".gristmill/online.sqlite"}
    prefix = f"gm-test-{uuid.uuid4().hex}"
    if store == "redis":
        require_server("Redis", "127.0.0.1", 6379)
        config = {"type": "redis", "url": "redis://127.0.0.1:6379/0", "prefix": prefix}
    (root / "gristmill.toml").write_text(
        tomli_w.dumps({"name": "events-test", "online": {**config, **(online or {})}})
    )
    try:
        yield root
    finally:
        if store == "redis":
            for key in redis_keys(prefix):
                redis_client().delete(key)


def redis_client() -> Any:
    import redis

    return redis.Redis.from_url("redis://127.0.0.1:6379/0")


def redis_keys(prefix: str) -> list[bytes]:
    """Every Redis key whose name starts with `prefix`."""
    return list(redis_client().scan_iter(match=f"{prefix}*", count=1000))

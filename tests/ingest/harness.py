"""Source harnesses: one per source kind, so that one conformance suite runs over all.

A harness creates and changes tables in a real source database (or folder of files)
using portable logical types, and says how gristmill.toml points at it.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Logical column types every harness maps to its own DDL. A harness lists the ones
# its kind cannot store in UNSUPPORTED, and the type round-trip test skips them.
LOGICAL_TYPES = (
    "bigint",
    "int",
    "decimal(12,2)",
    "float",
    "text",
    "bool",
    "date",
    "timestamp",
    "timestamptz",
    "json",
    "bytes",
    "int[]",
)


class SourceHarness(ABC):
    kind: str
    UNSUPPORTED: frozenset[str] = frozenset()

    @abstractmethod
    def source_config(self) -> dict[str, Any]:
        """The [sources.NAME] entry (type, url or path, schema), without tables."""

    QUOTE = '"'
    _DDL: dict[str, str]

    def create_table(
        self, name: str, columns: dict[str, str], primary_key: Sequence[str] = ("id",)
    ) -> None:
        """Create (replacing) a table with logical column types."""
        q = self.QUOTE
        cols = ", ".join(f"{q}{c}{q} {self.column_ddl(t)}" for c, t in columns.items())
        key = f", PRIMARY KEY ({', '.join(primary_key)})" if primary_key else ""
        self.execute(f"DROP TABLE IF EXISTS {q}{name}{q}")
        self.execute(f"CREATE TABLE {q}{name}{q} ({cols}{key})")

    @abstractmethod
    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Insert rows given as Python values (Decimal, datetime, date, bytes, dict for json)."""

    @abstractmethod
    def execute(self, sql: str) -> None:
        """Run a statement in the source's own dialect (updates, deletes, DDL)."""

    def column_ddl(self, logical: str) -> str:
        """The source's column type for a logical type."""
        return self._DDL[logical]

    def close(self) -> None:  # noqa: B027 - not every harness holds a connection
        pass


class SQLiteHarness(SourceHarness):
    kind = "sqlite"
    UNSUPPORTED = frozenset({"int[]", "timestamptz"})
    _DDL = {
        "bigint": "INTEGER",
        "int": "INTEGER",
        "decimal(12,2)": "DECIMAL(12,2)",
        "float": "REAL",
        "text": "TEXT",
        "bool": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
        "json": "JSON",
        "bytes": "BLOB",
    }

    def __init__(self, directory: Path) -> None:
        self.path = directory / "app.sqlite"
        self.db = sqlite3.connect(self.path, isolation_level=None)

    def source_config(self) -> dict[str, Any]:
        return {"type": "sqlite", "path": str(self.path)}

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        import json
        from datetime import date, datetime
        from decimal import Decimal

        def convert(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
            if isinstance(value, date):
                return value.isoformat()
            if isinstance(value, Decimal):
                return str(value)
            if isinstance(value, dict | list):
                return json.dumps(value)
            return value

        for row in rows:
            names = ", ".join(f'"{c}"' for c in row)
            marks = ", ".join("?" for _ in row)
            self.db.execute(
                f'INSERT INTO "{table}" ({names}) VALUES ({marks})',
                [convert(v) for v in row.values()],
            )

    def execute(self, sql: str) -> None:
        self.db.execute(sql)

    def close(self) -> None:
        self.db.close()


class PostgresHarness(SourceHarness):
    kind = "postgres"
    _DDL = {
        "bigint": "BIGINT",
        "int": "INTEGER",
        "decimal(12,2)": "NUMERIC(12,2)",
        "float": "DOUBLE PRECISION",
        "text": "TEXT",
        "bool": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
        "timestamptz": "TIMESTAMPTZ",
        "json": "JSONB",
        "bytes": "BYTEA",
        "int[]": "INTEGER[]",
    }

    def __init__(self, url: str, schema: str) -> None:
        import psycopg

        self.url = url
        self.schema = schema
        self.db = psycopg.connect(url, autocommit=True)
        self.db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self.db.execute(f'CREATE SCHEMA "{schema}"')
        self.db.execute(f'SET search_path TO "{schema}"')

    def source_config(self) -> dict[str, Any]:
        return {"type": "postgres", "url": self.url, "schema": self.schema}

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        from psycopg.types.json import Jsonb

        for row in rows:
            names = ", ".join(f'"{c}"' for c in row)
            marks = ", ".join("%s" for _ in row)
            values = [Jsonb(v) if isinstance(v, dict) else v for v in row.values()]
            self.db.execute(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', values)

    def execute(self, sql: str) -> None:
        self.db.execute(sql)

    def close(self) -> None:
        self.db.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        self.db.close()


class MySQLHarness(SourceHarness):
    kind = "mysql"
    QUOTE = "`"
    UNSUPPORTED = frozenset({"int[]"})
    _DDL = {
        "bigint": "BIGINT",
        "int": "INT",
        "decimal(12,2)": "DECIMAL(12,2)",
        "float": "DOUBLE",
        "text": "TEXT",
        "bool": "BOOLEAN",
        "date": "DATE",
        "timestamp": "DATETIME(6)",
        "timestamptz": "TIMESTAMP(6) NULL",
        "json": "JSON",
        "bytes": "LONGBLOB",
    }

    def __init__(self, url: str, database: str) -> None:
        import pymysql

        self.url = url
        self.database = database
        self.db = pymysql.connect(
            host="127.0.0.1",
            port=3306,
            user="root",
            password="",
            charset="utf8mb4",
            autocommit=True,
            init_command="SET time_zone = '+00:00'",
        )
        self.execute(f"DROP DATABASE IF EXISTS `{database}`")
        self.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        self.execute(f"USE `{database}`")

    def source_config(self) -> dict[str, Any]:
        return {"type": "mysql", "url": self.url, "schema": self.database}

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        import json
        from datetime import UTC, datetime

        def convert(value: Any) -> Any:
            if isinstance(value, datetime) and value.tzinfo is not None:
                return value.astimezone(UTC).replace(tzinfo=None)
            if isinstance(value, dict | list):
                return json.dumps(value)
            return value

        with self.db.cursor() as cursor:
            for row in rows:
                names = ", ".join(f"`{c}`" for c in row)
                marks = ", ".join("%s" for _ in row)
                cursor.execute(
                    f"INSERT INTO `{table}` ({names}) VALUES ({marks})",
                    [convert(v) for v in row.values()],
                )

    def execute(self, sql: str) -> None:
        with self.db.cursor() as cursor:
            cursor.execute(sql)

    def close(self) -> None:
        self.execute(f"DROP DATABASE IF EXISTS `{self.database}`")
        self.db.close()

"""A source of one kind holding rows of the type table (tests/ingest/type_table.py), for
every suite that syncs them: the ingest conformance suite and the diff's type suite."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import MYSQL_URL, PG_URL, require_server
from tests.ingest.harness import MySQLHarness, PostgresHarness, SourceHarness, SQLiteHarness
from tests.ingest.type_table import TypeRow

FILE_TYPES = {
    "int8": pa.int8(),
    "int64": pa.int64(),
    "uint64": pa.uint64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "date32[day]": pa.date32(),
    "timestamp[us]": pa.timestamp("us"),
    "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC"),
    "timestamp[ns]": pa.timestamp("ns"),
    "decimal128(12, 2)": pa.decimal128(12, 2),
    "binary": pa.binary(),
    "list<item: int32>": pa.list_(pa.int32()),
    "list<item: int64>": pa.list_(pa.int64()),
}


class TypedSource:
    """A source of one kind (a database named `name`, or files under `root`) whose tables
    each hold some rows of the type table as columns: row i holds each column's i-th
    value (NULL past its last), then a row of NULLs; `id` is the primary key."""

    def __init__(self, kind: str, root: Path, name: str) -> None:
        self.kind = kind
        self.root = root
        self.name = name
        self.harness: SourceHarness | None = None
        if kind == "postgres":
            require_server("PostgreSQL", "127.0.0.1", 5432)
            self.harness = PostgresHarness(PG_URL, name)
        elif kind == "mysql":
            require_server("MariaDB/MySQL", "127.0.0.1", 3306)
            self.harness = MySQLHarness(MYSQL_URL, name)
            self.harness.execute("SET SESSION sql_mode = ''")  # lets the zero date in
        elif kind == "sqlite":
            self.harness = SQLiteHarness(root)
        self.tables: dict[str, dict[str, Any]] = {}
        """The [sources.NAME.tables] entries of the tables created."""

    def config(self) -> dict[str, Any]:
        if self.harness is not None:
            return self.harness.source_config()
        return {"type": "files"}

    def create(self, table: str, rows: list[TypeRow], own_rows: bool = False) -> dict[str, int]:
        """Create `table`. With `own_rows` (SQL sources), then one row per column holding
        only its first value, for a test to change: column -> the id of its row."""
        if self.harness is not None:
            return self._create_sql(table, rows, own_rows)
        assert not own_rows
        self._create_file(table, rows)
        return {}

    def execute(self, sql: str) -> None:
        assert self.harness is not None
        self.harness.execute(sql)

    def quoted(self, name: str) -> str:
        assert self.harness is not None
        q = self.harness.QUOTE
        return f"{q}{name}{q}"

    def _create_sql(self, table: str, rows: list[TypeRow], own_rows: bool) -> dict[str, int]:
        for statement in dict.fromkeys(s for r in rows for s in r.setup):
            self.execute(statement)
        columns = ", ".join(f"{self.quoted(r.column)} {r.source_type}" for r in rows)
        self.execute(f"CREATE TABLE {self.quoted(table)} (id INTEGER PRIMARY KEY, {columns})")
        count = max(len(r.values) for r in rows) + 1  # the last row: all NULL
        records = [
            [r.values[i] if i < len(r.values) else "NULL" for r in rows] for i in range(count)
        ]
        own: dict[str, int] = {}
        if own_rows:
            for k, row in enumerate(rows):
                own[row.column] = len(records)
                records.append([row.values[0] if j == k else "NULL" for j in range(len(rows))])
        values = ", ".join(f"({i}, {', '.join(record)})" for i, record in enumerate(records))
        self.execute(f"INSERT INTO {self.quoted(table)} VALUES {values}")
        self.tables[table] = {}
        return own

    def _create_file(self, table: str, rows: list[TypeRow]) -> None:
        count = max(len(r.values) for r in rows) + 1
        ids = list(range(count))

        def column(r: TypeRow) -> list[Any]:
            return [r.values[i] if i < len(r.values) else None for i in ids]

        folder = self.root / "landing"
        folder.mkdir(exist_ok=True)
        path = folder / f"{table}.{self.kind}"
        if self.kind == "parquet":
            arrays = {"id": pa.array(ids, pa.int64())}
            arrays |= {r.column: pa.array(column(r), FILE_TYPES[r.source_type]) for r in rows}
            pq.write_table(pa.table(arrays), path)
        elif self.kind == "csv":
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["id", *(r.column for r in rows)])
                for i in ids:
                    writer.writerow(
                        [i, *("" if v is None else v for v in (column(r)[i] for r in rows))]
                    )
        else:
            with path.open("w", encoding="utf-8") as handle:
                for i in ids:
                    record = {"id": i} | {r.column: column(r)[i] for r in rows if i < len(r.values)}
                    handle.write(json.dumps(record) + "\n")
        self.tables[table] = {"path": str(path)}

    def close(self) -> None:
        if self.harness is not None:
            self.harness.close()

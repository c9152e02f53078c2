"""Files: CSV, Parquet and JSON lines matched by a glob, loaded incrementally.

Each sync reads only the files it has not loaded yet (by name, size and modification
time), so a landing folder that grows is picked up file by file. A table's column types
are those of the first file that has the column; later files are read against them,
so a value that does not convert is a malformed row, reported with its file and line
(and quarantined when `max_bad_rows` allows), never a silent change of type.
"""

from __future__ import annotations

import glob as globbing
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from gristmill.config import SourceConfig, TableConfig
from gristmill.errors import BackendError, ConfigError, NotFoundError
from gristmill.ingest.sources.base import Extract, ReadRequest, RejectedRow, Source, SourceTable

BATCH_ROWS = 100_000
_FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


class FilesSource(Source):
    KIND = "files"
    SUPPORTS_CURSOR = False
    SUPPORTS_KEY_LISTING = False
    READS_FILES = True

    def __init__(self, name: str, config: SourceConfig, root: Path) -> None:
        super().__init__(name, config, root)
        self.tables = config.tables or {}

    def list_tables(self) -> list[str]:
        return sorted(self.tables)

    def _table_config(self, table: str) -> TableConfig:
        if table not in self.tables:
            raise self.missing_table(table)
        config = self.tables[table]
        if not config.path:
            raise ConfigError(
                f"Source '{self.name}', table '{table}': files need path = \"folder/*.csv\"."
            )
        return config

    def files(self, table: str) -> list[Path]:
        pattern = self._table_config(table).path or ""
        full = pattern if Path(pattern).is_absolute() else str(self.root / pattern)
        found = sorted(Path(p) for p in globbing.glob(full, recursive=True) if Path(p).is_file())
        if not found:
            raise NotFoundError(
                f"Source '{self.name}', table '{table}': no file matches '{pattern}' "
                f"(looked in {Path(full).parent})."
            )
        return found

    def _format(self, table: str, path: Path) -> str:
        configured = self._table_config(table).format
        fmt = configured or _FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise ConfigError(
                f"Source '{self.name}', table '{table}': cannot tell the format of {path.name};"
                ' set format = "csv", "parquet" or "jsonl".'
            )
        return fmt

    @contextmanager
    def _reading(self, table: str, path: Path) -> Iterator[None]:
        """pyarrow's errors on a file it cannot read (empty, truncated, not of its format),
        as an error naming the file."""
        try:
            yield
        except (pa.ArrowException, OSError) as exc:
            shown = path.relative_to(self.root) if path.is_relative_to(self.root) else path
            raise BackendError(
                f"Source '{self.name}', table '{table}': cannot read {shown}: {exc}."
                " Fix the file, or move it out of the table's path."
            ) from None

    def describe(self, table: str) -> SourceTable:
        fields: dict[str, pa.Field] = {}
        for path in self.files(table):
            with self._reading(table, path):
                schema = _file_schema(path, self._format(table, path))
            for f in schema:
                fields.setdefault(f.name, f.with_nullable(True))
        return SourceTable(table, pa.schema(list(fields.values())))

    def extract(self, request: ReadRequest) -> Extract:
        table = request.table.name
        done = dict(request.files_done)
        new: list[tuple[Path, dict[str, Any]]] = []
        for path in self.files(table):
            stat = path.stat()
            signature = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            # A file that changed is read again; in append mode its rows are appended again.
            if done.get(str(path)) != signature:
                new.append((path, signature))
        schema = pa.schema([request.table.schema.field(c) for c in request.columns])
        extract = Extract(streams=[], files={**done, **{str(p): s for p, s in new}})
        if new:
            extract.streams.append(self._read(table, [p for p, _ in new], schema, extract.rejects))
        return extract

    def _read(
        self, table: str, paths: Sequence[Path], schema: pa.Schema, rejects: list[RejectedRow]
    ) -> Iterator[pa.RecordBatch]:
        for path in paths:
            fmt = self._format(table, path)
            with self._reading(table, path):
                for lines, batch in _READERS[fmt](path, rejects):
                    yield _conform(batch, schema, path, lines, rejects)

    def read_keys(self, table: SourceTable, keys: Sequence[str]) -> Iterator[pa.RecordBatch]:
        raise ConfigError("detect_deletes compares keys with the source; files have no keys.")


def _file_schema(path: Path, fmt: str) -> pa.Schema:
    if fmt == "parquet":
        return pq.read_schema(path)
    if fmt == "csv":
        # Malformed rows are skipped here: reading reports them with their lines.
        with pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 20),
            parse_options=pacsv.ParseOptions(invalid_row_handler=lambda _: "skip"),
        ) as reader:
            return reader.schema
    with path.open("rb") as handle:
        sample = b"".join(
            line for _, line in zip(range(1000), handle, strict=False) if _is_json(line)
        )
    return pajson.read_json(pa.py_buffer(sample)).schema if sample else pa.schema([])


def _is_json(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _read_csv(path: Path, rejects: list[RejectedRow]) -> Iterator[tuple[list[int], pa.RecordBatch]]:
    invalid_lines: set[int] = set()

    def invalid(row: Any) -> str:
        invalid_lines.add(row.number)
        error = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        rejects.append(RejectedRow(str(path), row.number, error, row.text))
        return "skip"

    options = pacsv.ReadOptions(use_threads=False, block_size=1 << 22)
    names = _file_schema(path, "csv").names
    # Everything is read as text and converted by _conform, so that one bad value
    # rejects one row, with its line, instead of failing the whole file.
    reader = pacsv.open_csv(
        path,
        read_options=options,
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True
        ),
        parse_options=pacsv.ParseOptions(invalid_row_handler=invalid),
    )
    line = 2  # the header is line 1
    for batch in reader:
        lines: list[int] = []
        while len(lines) < batch.num_rows:
            if line not in invalid_lines:
                lines.append(line)
            line += 1
        yield lines, batch


def _read_parquet(
    path: Path, rejects: list[RejectedRow]
) -> Iterator[tuple[list[int], pa.RecordBatch]]:
    row = 1
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
        yield list(range(row, row + batch.num_rows)), batch
        row += batch.num_rows


def _read_jsonl(
    path: Path, rejects: list[RejectedRow]
) -> Iterator[tuple[list[int], pa.RecordBatch]]:
    good: list[bytes] = []
    lines: list[int] = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            if _is_json(line):
                good.append(line)
                lines.append(number)
            else:
                rejects.append(
                    RejectedRow(
                        str(path),
                        number,
                        "not a JSON object",
                        line.decode("utf-8", "replace").rstrip("\n"),
                    )
                )
    if not good:
        return
    table = pajson.read_json(
        pa.py_buffer(b"".join(g if g.endswith(b"\n") else g + b"\n" for g in good))
    )
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        yield lines[: batch.num_rows], batch
        lines = lines[batch.num_rows :]


_READERS: dict[
    str, Callable[[Path, list[RejectedRow]], Iterator[tuple[list[int], pa.RecordBatch]]]
] = {
    "csv": _read_csv,
    "parquet": _read_parquet,
    "jsonl": _read_jsonl,
}


def _conform(
    batch: pa.RecordBatch,
    schema: pa.Schema,
    path: Path,
    lines: list[int],
    rejects: list[RejectedRow],
) -> pa.RecordBatch:
    """`batch` with the table's columns and types; rows whose values do not convert are
    rejected with their line."""
    names = batch.schema.names
    bad: dict[int, str] = {}
    columns = []
    for f in schema:
        if f.name not in names:
            columns.append(pa.nulls(batch.num_rows, f.type))
            continue
        column = batch.column(names.index(f.name))
        try:
            columns.append(column.cast(f.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            values = column.to_pylist()
            converted = []
            for i, value in enumerate(values):
                try:
                    converted.append(pa.array([value], column.type).cast(f.type)[0].as_py())
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                    bad.setdefault(i, f"column '{f.name}': {value!r} is not {f.type}")
                    converted.append(None)
            columns.append(pa.array(converted, f.type))
    result = pa.record_batch(columns, schema=schema)
    if not bad:
        return result
    for i, error in sorted(bad.items()):
        rejects.append(RejectedRow(str(path), lines[i], error, None))
    keep = pa.array([i not in bad for i in range(batch.num_rows)])
    return result.filter(keep)

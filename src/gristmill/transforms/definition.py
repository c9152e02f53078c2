"""What a transform is: its name, its query or function, how it materializes, its checks.

A SQL transform is a file `transforms/NAME.sql` holding one SELECT. Its leading comment
block is an optional TOML header::

    -- materialized = "incremental"     # view | table (default) | incremental
    -- strategy = "merge"                # incremental only: append | merge
    -- unique_key = ["user_id", "day"]   # merge key
    -- time_column = "day"               # bounds each incremental run
    -- lookback = "2d"                   # re-read this much before the latest time
    -- checks = [{ not_null = ["user_id"] }, { unique = ["user_id", "day"] }]

Prose comments in the header start with `-- #`. A Python transform is a function
decorated with `gristmill.transform` in `transforms/*.py`.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gristmill.durations import parse_duration
from gristmill.errors import ConfigError

Materialized = Literal["view", "table", "incremental"]
Frame = Literal["arrow", "pandas", "polars"]


class TransformOptions(BaseModel):
    """The options of a transform, from a SQL header or the decorator's arguments."""

    model_config = ConfigDict(extra="forbid")

    materialized: Materialized = "table"
    strategy: Literal["append", "merge"] = "merge"
    unique_key: list[str] = Field(default_factory=list)
    time_column: str | None = None
    lookback: str | None = None
    checks: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _single_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("unique_key"), str):
            data = {**data, "unique_key": [data["unique_key"]]}
        return data

    @model_validator(mode="after")
    def _incremental_needs(self) -> TransformOptions:
        if self.materialized == "incremental":
            if not self.time_column:
                raise ValueError('an incremental transform needs time_column = "..."')
            if self.strategy == "merge" and not self.unique_key:
                raise ValueError('an incremental merge needs unique_key = ["..."]')
        if self.lookback is not None:
            parse_duration(self.lookback)
        return self

    @property
    def lookback_delta(self) -> timedelta | None:
        return parse_duration(self.lookback) if self.lookback else None


def validate_options(data: dict[str, Any], where: str) -> TransformOptions:
    try:
        return TransformOptions.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            (f"{'.'.join(str(p) for p in e['loc'])}: " if e["loc"] else "") + e["msg"]
            for e in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from None


@dataclass
class Transform:
    """One transform, SQL or Python, as discovered in the project."""

    name: str
    kind: Literal["sql", "python"]
    path: Path
    options: TransformOptions
    sql: str = ""
    """The SELECT, exactly as written (SQL transforms)."""
    line: int = 1
    """Line of the definition in its file (the decorator, for Python transforms)."""
    inputs: list[str] = field(default_factory=list)
    """Tables the transform reads, as written."""
    input_lines: dict[str, int] = field(default_factory=dict)
    """The line each input of a SQL transform is first read on."""
    function: Callable[..., Any] | None = None
    frame: Frame = "arrow"
    source_text: str = ""
    """What the definition hash covers besides the options: SQL, or the function's source."""

    @property
    def where(self) -> str:
        return f"{self.path.as_posix()}:{self.line}"

    @property
    def definition_hash(self) -> str:
        payload = json.dumps(
            [self.kind, self.source_text, self.options.model_dump(), self.inputs, self.frame],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def parse_sql_file(path: Path, display: Path) -> Transform:
    """A SQL transform from its file; `display` is the path shown in messages."""
    text = path.read_text(encoding="utf-8")
    header_lines: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        header_lines.append(stripped[2:])
    try:
        header = tomllib.loads("\n".join(header_lines))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{display.as_posix()}: the header comment is not valid TOML ({exc}). Header lines"
            ' look like -- materialized = "table"; prose comments there start with -- #'
        ) from None
    options = validate_options(header, display.as_posix())
    sql = text.rstrip().rstrip(";").rstrip()
    if all(not line.strip() or line.strip().startswith("--") for line in sql.splitlines()):
        raise ConfigError(f"{display.as_posix()}: the file holds no SELECT statement.")
    return Transform(
        name=path.stem,
        kind="sql",
        path=display,
        options=options,
        sql=sql,
        source_text=sql,
    )

"""Load and validate `gristmill.toml`.

String values may reference environment variables as `${NAME}`: they are resolved at
load time and remembered as secrets, so that `redact` can scrub them from any message
before it is printed, logged or stored. [serve] alone is resolved when first used, so
that a variable only the server needs (its API key) need not be exported to train or
to read features.
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gristmill.durations import parse_duration
from gristmill.errors import ConfigError, did_you_mean

CONFIG_FILE = "gristmill.toml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@", re.IGNORECASE)

CONNECT_TIMEOUT_SECONDS = 10
"""How long a connection to a database may take, unless its url says otherwise
(`?connect_timeout=N`): a host that does not answer fails its source, not the run."""


def redact_url_passwords(text: str) -> str:
    """`text` with the password of every `scheme://user:password@host` replaced by ***."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}***@", text)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class WarehouseConfig(_Strict):
    type: str = "duckdb"
    path: str = ".gristmill/warehouse.duckdb"
    url: str | None = None
    raw_schema: str = "raw"
    memory_limit: str = "1GB"
    """DuckDB: the memory its queries may use before they spill to disk (its own default,
    80% of the machine's memory, crowds out everything else on a laptop)."""


class CatalogConfig(_Strict):
    type: str = "sqlite"
    path: str = ".gristmill/catalog.sqlite"


SyncMode = Literal["full", "append", "merge", "cdc"]


def _checked_types(value: dict[str, str]) -> dict[str, str]:
    """Column -> type name, each name normalised, or an error naming the column."""
    from gristmill.types import check_override

    checked = {}
    for column, name in value.items():
        try:
            checked[column] = check_override(name)
        except ValueError as exc:
            raise ValueError(f"column '{column}': {exc}") from None
    return checked


class TableConfig(_Strict):
    """How one source table is synced."""

    mode: SyncMode = "full"
    target: str | None = None
    primary_key: list[str] | None = None
    cursor: str | None = None
    columns: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    rename: dict[str, str] = Field(default_factory=dict)
    column_types: dict[str, str] = Field(default_factory=dict)
    """Source column -> the type to load it as (see gristmill.types.OVERRIDE_TYPES), for
    a column whose values its own type cannot keep in the warehouse."""
    soft_delete_column: str | None = None
    lookback: str | int | float | None = None
    """How far before the last cursor value each read begins, for changes that commit
    after a sync has read past their cursor value: a duration ("10m") for a date or
    timestamp cursor, a number of cursor values (1000) for a numeric one. Rows read again
    are recognised and neither doubled nor counted as changes."""
    detect_deletes: bool = False
    path: str | None = None
    format: Literal["csv", "parquet", "jsonl"] | None = None
    max_bad_rows: int = 0
    parallel: int = Field(default=2, ge=1, le=16)
    checks: list[dict[str, Any]] = Field(default_factory=list)
    """Data checks run on the raw table after each sync (see gristmill.checks)."""

    @field_validator("column_types")
    @classmethod
    def _known_types(cls, value: dict[str, str]) -> dict[str, str]:
        return _checked_types(value)

    @field_validator("lookback", mode="before")
    @classmethod
    def _lookback_shape(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError('lookback is a duration ("10m") or a number of cursor values')
        if isinstance(value, str):
            parse_duration(value)
        elif isinstance(value, int | float) and not value >= 0:
            raise ValueError(f"lookback cannot be negative ({value})")
        return value

    @model_validator(mode="after")
    def _mode_needs(self) -> TableConfig:
        if self.mode == "append" and not self.cursor and not self.path:
            raise ValueError("mode 'append' needs a 'cursor' column")
        if self.mode == "merge" and not self.cursor and not self.path:
            raise ValueError("mode 'merge' needs a 'cursor' column (such as updated_at)")
        if self.mode == "cdc":
            for name, value in (
                ("cursor", self.cursor),
                ("lookback", self.lookback),
                ("detect_deletes", self.detect_deletes),
                ("soft_delete_column", self.soft_delete_column),
                ("path", self.path),
            ):
                if value:
                    raise ValueError(
                        f"mode 'cdc' reads every change, deletes too, from the source's log:"
                        f" remove {name}"
                    )
        if self.lookback is not None and not self.cursor:
            raise ValueError("lookback needs a 'cursor' column: it steps back from its last value")
        return self


class SourceConfig(_Strict):
    type: str
    url: str | None = None
    path: str | None = None
    schema_name: str | None = Field(default=None, alias="schema")
    tables: dict[str, TableConfig] | None = None


class OnlineConfig(_Strict):
    type: str = "sqlite"
    path: str = ".gristmill/online.sqlite"
    url: str | None = None
    """Redis: redis://host:6379/0"""
    prefix: str = "gristmill"
    """Redis: the prefix of every key, so that projects can share a server."""
    timeout: str = "2s"
    """The deadline of every call to the store (connect, read, write): a stalled store
    fails the call instead of hanging it. A server's reads also stop at its
    [serve] request_timeout."""
    clock_skew: str = "5m"
    """How far past the serving clock (now, UTC) an event's time may be: a pushed event
    later than now + clock_skew is refused, and materialize leaves such rows out (and
    counts them), so that a forged future event cannot wipe an entity's history."""

    @field_validator("timeout", "clock_skew")
    @classmethod
    def _durations(cls, value: str) -> str:
        parse_duration(value)
        return value


class RegistryConfig(_Strict):
    url: str | None = None
    """Where model versions live: a folder (relative to the project) or file:// URL; by
    default .gristmill/registry."""


class ServeConfig(_Strict):
    api_keys: list[str] = Field(default_factory=list)
    """Keys a client must send (Authorization: Bearer KEY, or X-API-Key); none: open."""
    alias: str = "champion"
    """The alias of each model the server scores with."""
    max_body_bytes: int = Field(default=1_000_000, ge=1)
    max_batch_rows: int = Field(default=100, ge=1, le=10_000)
    """The most rows one predict request (or events one push) may hold."""
    request_timeout: str = "1s"
    """Each request's deadline: past it the answer is a 503 (or the decision the model's
    policy declares for an unavailable online store)."""
    header_timeout: str = "5s"
    """How long a client may take to send a request's headers."""
    body_timeout: str = "10s"
    """How long a client may take to send a request's body."""
    max_connections: int = Field(default=1000, ge=1)
    """Open connections per worker; past it new requests get a 503."""
    reasons: Literal["paths", "shap"] = "paths"
    """How a prediction's top reasons are computed: "paths" credits the splits on each
    tree's decision path (fast; LightGBM models), "shap" gives exact Shapley values (what
    `gristmill models explain` shows; ~0.5 ms more per row for the quickstart's model).
    Models without path attributions always use Shapley values."""

    @field_validator("request_timeout", "header_timeout", "body_timeout")
    @classmethod
    def _durations(cls, value: str) -> str:
        parse_duration(value)
        return value


class TransformsConfig(_Strict):
    schema_name: str = Field(default="analytics", alias="schema")
    """The warehouse schema that holds derived tables."""


class RunConfig(_Strict):
    workers: int = Field(default=4, ge=1, le=64)
    """How many steps of `gristmill run` may execute at once."""


Engine = Literal["local", "dask"]


class ExecutionConfig(_Strict):
    """[execution]: where the heavy work of ingest, training sets, scoring, training and
    `gristmill run` executes. `--engine` on those commands overrides `engine`."""

    engine: Engine = "local"
    """local: in this process (threads); dask: on a Dask distributed cluster."""
    scheduler: str = "local"
    """local: a LocalCluster started for the command; or a scheduler's address
    (tcp://host:8786)."""
    workers: int = Field(default=2, ge=1, le=256)
    """LocalCluster only: how many worker processes."""
    threads_per_worker: int = Field(default=1, ge=1, le=64)
    """LocalCluster only: threads per worker process."""
    memory_limit: str = "4GB"
    """LocalCluster only: the memory each worker may use ("4GB", "512MiB"); a worker's
    embedded DuckDB spills to disk before it."""
    staging: str | None = None
    """An fsspec URL every worker and the driver reach (file:///shared/gm, s3://bucket/gm)
    where partitions are handed over; by default .gristmill/staging in the project (which
    only a LocalCluster or workers on this machine reach)."""
    partitions: int | None = Field(default=None, ge=1, le=100_000)
    """How many partitions a job is split into; by default four per worker thread."""
    connect_timeout: str = "10s"
    """How long reaching the scheduler may take before the command fails naming it."""

    @field_validator("scheduler")
    @classmethod
    def _address(cls, value: str) -> str:
        if value != "local" and "://" not in value:
            raise ValueError(
                f"'{value}' is neither \"local\" nor a scheduler address such as"
                " tcp://127.0.0.1:8786"
            )
        return value

    @field_validator("memory_limit")
    @classmethod
    def _size(cls, value: str) -> str:
        from gristmill.memory import parse_size

        parse_size(value)
        return value

    @field_validator("connect_timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class ScheduleConfig(_Strict):
    """One `[schedules.NAME]`: when `gristmill schedule` runs which assets."""

    cron: str
    """Five fields (minute hour day-of-month month day-of-week), in `timezone`."""
    select: list[str] = Field(default_factory=list)
    """The selectors of `gristmill run` (one string or a list); none: every asset."""
    timezone: str = "UTC"
    retries: int = Field(default=0, ge=0, le=10)
    """How many times a failed run is tried again before it is recorded failed."""
    retry_delay: str = "1m"
    """The wait before each retry."""

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key not in cls.model_fields:
                    raise PydanticCustomError(
                        "schedule_key",
                        "unknown key '{key}'.{hint} A schedule takes "
                        + ", ".join(cls.model_fields),
                        {"key": key, "hint": did_you_mean(str(key), cls.model_fields)},
                    )
        return data

    @field_validator("select", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return value.split() if isinstance(value, str) else value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        # Five fields only: fire times are whole minutes (croniter would take seconds too).
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise PydanticCustomError(
                "cron",
                "'{value}' is not a cron expression: five fields, minute hour day-of-month"
                ' month day-of-week, such as "0 2 * * *" (every day at 02:00)',
                {"value": value},
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            hint = did_you_mean(value, zoneinfo.available_timezones())
            raise PydanticCustomError(
                "timezone",
                "unknown timezone '{value}'.{hint} Use an IANA name such as Africa/Lagos or UTC",
                {"value": value, "hint": hint},
            ) from None
        return value

    @field_validator("retry_delay")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class StreamConfig(_Strict):
    """[streams.NAME]: a broker's stream of events, into a warehouse table and the online
    values of feature views, in micro-batches."""

    type: Literal["redis", "nats"] = "redis"
    url: str
    stream: str
    """The stream's key (Redis), or the subject (NATS JetStream)."""
    group: str = "gristmill"
    """The consumer group (Redis), or the durable consumer (NATS), whose acknowledgements
    say what has been applied."""
    table: str | None = None
    """Where events are appended ("schema.table" or a table of the raw schema)."""
    feature_views: list[str] = Field(default_factory=list)
    """Views whose online values each event updates (their source holds these columns)."""
    format: Literal["fields", "json"] = "fields"
    """"fields": a message field (NATS: a header) per column, as text; "json": the event as
    a JSON object, in the message's `data` field (NATS: its payload)."""
    event_id: str
    """The column that identifies an event: one delivered twice is applied once."""
    columns: dict[str, str]
    """Column -> type (the names of `column_types`): what an event must hold."""
    batch: int = Field(default=10_000, ge=1, le=100_000)
    """The most messages one micro-batch takes: memory stays bounded however far the
    producer is ahead."""
    ack_wait: str = "30s"
    """NATS: how long a message delivered and not acknowledged (its consumer was killed)
    waits before it is delivered again. (Redis gives such messages back to the same
    consumer when it starts again.)"""

    @field_validator("ack_wait")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("columns")
    @classmethod
    def _known_types(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError('declare the events\' columns: columns = { name = "type" }')
        return _checked_types(value)

    @model_validator(mode="after")
    def _needs(self) -> StreamConfig:
        if self.event_id not in self.columns:
            raise ValueError(f"event_id '{self.event_id}' is not one of its columns")
        if not self.table and not self.feature_views:
            raise ValueError("a stream needs a table, feature_views, or both, to feed")
        return self


class ProjectConfig(_Strict):
    name: str = "gristmill-project"
    warehouse: WarehouseConfig = Field(default_factory=WarehouseConfig)
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    transforms: TransformsConfig = Field(default_factory=TransformsConfig)
    online: OnlineConfig = Field(default_factory=OnlineConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    serve_table: dict[str, Any] = Field(default_factory=dict, alias="serve")
    """[serve] as written, its `${NAME}` references unresolved: see `serve`."""
    run: RunConfig = Field(default_factory=RunConfig)
    schedules: dict[str, ScheduleConfig] = Field(default_factory=dict)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    streams: dict[str, StreamConfig] = Field(default_factory=dict)

    @cached_property
    def serve(self) -> ServeConfig:
        """[serve], resolved and validated on first use."""
        return _resolve_serve(self.serve_table)


_SECRETS: set[str] = set()
"""Every value resolved from an environment variable in this process."""


def redact(text: str) -> str:
    """`text` with every secret value and URL password replaced by ***."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        # A blank value hides nothing (and an API key resolved blank is refused), but
        # replacing it would star out every space of every message.
        if secret.strip():
            text = text.replace(secret, "***")
    return redact_url_passwords(text)


def _interpolate(value: Any, where: str, secrets: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{where}.{k}", secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]", secrets) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        resolved = os.environ.get(name)
        if resolved is None:
            raise ConfigError(
                f"{CONFIG_FILE}: '{where}' references ${{{name}}}, which is not set. "
                f"Export it first: export {name}=..."
            )
        secrets.add(resolved)
        return resolved

    return _ENV_REF.sub(substitute, value)


def _resolve_serve(table: dict[str, Any]) -> ServeConfig:
    secrets: set[str] = set()
    data = _interpolate(table, "serve", secrets)
    _SECRETS.update(secrets)
    raw_keys = table.get("api_keys")
    if isinstance(raw_keys, list):
        for i, (raw, key) in enumerate(zip(raw_keys, data["api_keys"], strict=True)):
            # A client's header value is stripped of spaces, so a blank key matches a
            # request that sends none: the server would be open while looking closed.
            if isinstance(key, str) and not key.strip():
                names = ", ".join(f"${{{n}}}" for n in _ENV_REF.findall(str(raw)))
                cause = f"{names} is set to an empty value" if names else "it is empty"
                raise ConfigError(
                    f"{CONFIG_FILE}: serve.api_keys[{i}] would let requests without a key in: "
                    f"{cause}. Set it to the key, or remove the entry to serve without keys."
                )
    try:
        return ServeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{CONFIG_FILE}: {_problems(exc, 'serve')}") from None


def _problems(exc: ValidationError, where: str = "") -> str:
    prefix = f"{where}." if where else ""
    return "; ".join(
        f"{prefix}{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )


def load_config(path: Path) -> ProjectConfig:
    """Parse, interpolate and validate a gristmill.toml file."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"No {CONFIG_FILE} at {path}. Create a project with: gristmill init DIR"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    secrets: set[str] = set()
    data = {k: v if k == "serve" else _interpolate(v, k, secrets) for k, v in raw.items()}
    try:
        config = ProjectConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_problems(exc)}") from None
    _SECRETS.update(secrets)
    return config

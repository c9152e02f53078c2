"""Validate declared checks (pydantic) into `CheckSpec`s.

A check is declared as a small table with exactly one kind key plus an optional
`severity` ("error", the default, or "warn") and an optional `name`::

    {not_null = ["a", "b"]}
    {unique = ["a", "b"], severity = "warn"}
    {accepted_values = {column = "status", values = ["ok", "failed"]}}
    {relationships = {column = "user_id", to = "raw.users", field = "user_id"}}
    {row_count = {min = 1, max = 1000000}}
    {freshness = {column = "created_at", max_age = "24h"}}
    {expression = "amount >= 0"}
    {sql = "SELECT * FROM {this} WHERE amount > balance"}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlglot import exp

from gristmill.checks.spec import (
    KINDS,
    SEVERITIES,
    THIS,
    THIS_PLACEHOLDER,
    CheckSpec,
    parse_sql,
    split_table_name,
    strip_semicolon,
)
from gristmill.durations import parse_duration
from gristmill.errors import ConfigError, did_you_mean

_EXAMPLES = {
    "not_null": 'not_null = "id"  or  not_null = ["a", "b"]',
    "unique": 'unique = "id"  or  unique = ["a", "b"]',
    "accepted_values": 'accepted_values = {column = "status", values = ["ok", "failed"]}',
    "relationships": 'relationships = {column = "user_id", to = "raw.users", field = "id"}',
    "row_count": "row_count = {min = 1, max = 1000000}",
    "freshness": 'freshness = {column = "created_at", max_age = "24h"}',
    "expression": 'expression = "amount >= 0"',
    "sql": 'sql = "SELECT * FROM {this} WHERE amount > balance"',
}


# -- pydantic models of each kind's value ------------------------------------------------

_Name = Annotated[str, StringConstraints(strict=True, min_length=1)]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


_Columns = Annotated[list[_Name], BeforeValidator(_one_or_many), Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Entry(_Model):
    severity: Literal["error", "warn"] = "error"
    name: _Name | None = None


class _NotNull(_Entry):
    not_null: _Columns


class _Unique(_Entry):
    unique: _Columns


class _AcceptedValuesArgs(_Model):
    column: _Name
    values: Annotated[
        list[StrictBool | StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)] | str],
        Field(min_length=1),
    ]

    @field_validator("values", mode="before")
    @classmethod
    def _strings_only_when_str(cls, value: Any) -> Any:
        if isinstance(value, list):
            for item in value:
                if not isinstance(item, str | int | float | bool):
                    raise ValueError(f"values must be strings, numbers or booleans, not {item!r}")
        return value


class _AcceptedValues(_Entry):
    accepted_values: _AcceptedValuesArgs


class _RelationshipsArgs(_Model):
    column: _Name
    to: _Name
    field: _Name | None = None

    @field_validator("to")
    @classmethod
    def _table_name(cls, value: str) -> str:
        split_table_name(value)
        return value


class _Relationships(_Entry):
    relationships: _RelationshipsArgs


class _RowCountArgs(_Model):
    min: Annotated[StrictInt, Field(ge=0)] | None = None
    max: Annotated[StrictInt, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> _RowCountArgs:
        if self.min is None and self.max is None:
            raise ValueError("row_count needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class _RowCount(_Entry):
    row_count: _RowCountArgs


class _FreshnessArgs(_Model):
    column: _Name
    max_age: Annotated[str, StringConstraints(strict=True)]

    @field_validator("max_age")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class _Freshness(_Entry):
    freshness: _FreshnessArgs


class _Expression(_Entry):
    expression: _Name

    @field_validator("expression")
    @classmethod
    def _parses(cls, value: str) -> str:
        tree = parse_sql(value, "condition")
        if isinstance(tree, exp.Query | exp.DDL | exp.DML | exp.Command):
            raise ValueError("an expression is a condition such as 'amount >= 0', not a statement")
        return value


class _Sql(_Entry):
    sql: _Name

    @field_validator("sql")
    @classmethod
    def _parses(cls, value: str) -> str:
        tree = parse_sql(strip_semicolon(value).replace(THIS, THIS_PLACEHOLDER), "check query")
        if not isinstance(tree, exp.Query):
            raise ValueError("a sql check is a SELECT query that returns the failing rows")
        return value


_MODELS: dict[str, type[_Entry]] = {
    "not_null": _NotNull,
    "unique": _Unique,
    "accepted_values": _AcceptedValues,
    "relationships": _Relationships,
    "row_count": _RowCount,
    "freshness": _Freshness,
    "expression": _Expression,
    "sql": _Sql,
}


# -- parsing -----------------------------------------------------------------------------


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problem(error: Any, model: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    where = _location(loc)
    if error["type"] == "missing":
        return f"'{where}' is missing"
    if error["type"] == "extra_forbidden":
        known = list(model.model_fields) if len(loc) == 1 else _nested_fields(model, loc[0])
        return f"unknown setting '{where}'.{did_you_mean(str(loc[-1]), known)}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if loc == ("severity",) and isinstance(error.get("input"), str):
        suggestion = did_you_mean(error["input"], SEVERITIES)
        message += f".{suggestion}" if suggestion else ""
    return f"'{where}': {message}" if where else message


def _nested_fields(model: type[BaseModel], name: int | str) -> list[str]:
    info = model.model_fields.get(str(name))
    annotation = info.annotation if info else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _spec(kind: str, entry: _Entry, where: str) -> CheckSpec:
    common: dict[str, Any] = {
        "kind": kind,
        "severity": entry.severity,
        "name": entry.name or "",
        "where": where,
    }
    if isinstance(entry, _NotNull):
        return CheckSpec(**common, columns=tuple(entry.not_null))
    if isinstance(entry, _Unique):
        return CheckSpec(**common, columns=tuple(entry.unique))
    if isinstance(entry, _AcceptedValues):
        args = entry.accepted_values
        return CheckSpec(**common, column=args.column, values=tuple(args.values))
    if isinstance(entry, _Relationships):
        rel = entry.relationships
        return CheckSpec(**common, column=rel.column, to=rel.to, to_field=rel.field or rel.column)
    if isinstance(entry, _RowCount):
        rc = entry.row_count
        return CheckSpec(**common, min_rows=rc.min, max_rows=rc.max)
    if isinstance(entry, _Freshness):
        fr = entry.freshness
        return CheckSpec(**common, column=fr.column, max_age=fr.max_age)
    if isinstance(entry, _Expression):
        return CheckSpec(**common, expression=entry.expression)
    assert isinstance(entry, _Sql)
    return CheckSpec(**common, sql=entry.sql)


def parse_check(raw: Any, where: str, number: int = 1) -> CheckSpec:
    """Validate one declared check; `number` (1-based) names it in messages."""
    head = f"{where}: check {number}"
    if not isinstance(raw, dict):
        raise ConfigError(f'{head}: a check is a table such as {{not_null = ["id"]}}, not {raw!r}.')
    keys = [k for k in raw if k not in ("severity", "name")]
    kinds = [k for k in keys if k in KINDS]
    unknown = [k for k in keys if k not in KINDS]
    if unknown:
        key = str(unknown[0])
        raise ConfigError(
            f"{head}: unknown check or setting '{key}'."
            f"{did_you_mean(key, (*KINDS, 'severity', 'name'))}"
            f" The kinds are: {', '.join(KINDS)}."
        )
    if not kinds:
        raise ConfigError(f"{head} names no kind of check; use one of: {', '.join(KINDS)}.")
    if len(kinds) > 1:
        raise ConfigError(
            f"{head} has {len(kinds)} kinds ({', '.join(kinds)}); declare one check per entry."
        )
    kind = kinds[0]
    model = _MODELS[kind]
    try:
        entry = model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_problem(err, model) for err in exc.errors())
        stop = "" if problems.endswith((".", "?")) else "."
        raise ConfigError(
            f"{head} ({kind}): {problems}{stop} Write it as: {_EXAMPLES[kind]}"
        ) from None
    return _spec(kind, entry, f"{where} (check {number})")


def parse_checks(raw: list[dict[str, Any]] | None, where: str) -> list[CheckSpec]:
    """Validate the checks declared at `where` (such as "transforms/clean.sql:3" or
    "gristmill.toml sources.app.tables.transactions"); raise ConfigError naming it."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(
            f'{where}: checks are a list of tables, such as [{{not_null = ["id"]}}],'
            f" not {type(raw).__name__}."
        )
    specs = [parse_check(item, where, number) for number, item in enumerate(raw, start=1)]
    seen: dict[str, int] = {}
    for number, spec in enumerate(specs, start=1):
        if spec.name in seen:
            raise ConfigError(
                f"{where}: checks {seen[spec.name]} and {number} are both named '{spec.name}';"
                ' give one of them a different name = "...".'
            )
        seen[spec.name] = number
    return specs

"""Every error gristmill raises on purpose derives from `GristmillError`.

The tree::

    GristmillError
    ├── ConfigError                gristmill.toml is missing or invalid, a ${VAR} is unset,
    │                              an unknown backend or source name is used
    ├── MissingDependencyError     an optional extra is needed: the message names the pip command
    ├── ConnectionFailedError      a database cannot be reached or refuses the credentials
    │   └── OnlineStoreUnavailableError  the online store did not answer within its deadline
    ├── NotFoundError              a table, column or file named in the project does not exist,
    │                              or a model, version or alias the registry does not hold
    ├── BadRowsError               malformed rows in a source file (more than max_bad_rows)
    ├── SchemaChangeError          a source column changed type incompatibly
    ├── TypeMappingError           a source column's type or value has no exact warehouse
    │                              form: the message names the column_types override to use
    ├── TransformError             a transform's SQL or function failed (file and line named)
    ├── InvalidEventError          a pushed event a feature view cannot take (a time beyond
    │                              the serving clock, NaN, a value of the wrong type): the
    │                              message names the event and field; nothing was stored
    ├── CheckFailedError           a blocking data check failed; nothing was published
    ├── ExecutionError             a job on the Dask cluster failed (a partition's task
    │                              raised, or killed its workers): nothing was published
    ├── ArtifactTamperedError      a model artifact differs from what the registry wrote
    │                              (checksum, or types the file holds): it is not loaded
    ├── UnsupportedEstimatorError  a fitted estimator the registry cannot store safely
    ├── EvaluationError            labels, scores or predictions handed to an evaluation are
    │                              unusable (empty, NaN, mismatched lengths, unknown classes)
    ├── PromotionRefusedError      a version failed its model's promote_if checks on the
    │                              shadow log (the message gives the figures; --force promotes)
    └── BackendError               a database or driver rejected an operation

Driver exceptions are translated into this tree at the edge of each backend, so the
CLI's single error boundary can print a clean message; messages name the file, table,
column or row at fault and say what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, Literal


class GristmillError(Exception):
    """Root of every error gristmill raises on purpose."""

    exit_code = 1


class ConfigError(GristmillError):
    """The project configuration is missing, invalid or names something unknown."""

    exit_code = 2


class MissingDependencyError(GristmillError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package: pip install 'gristmill[{extra}]'"
        )


class ConnectionFailedError(GristmillError):
    """A database could not be reached, or refused the credentials."""


class WarehouseBusyError(ConnectionFailedError):
    """Another process holds the warehouse (a DuckDB file is one writer's at a time) for
    longer than gristmill waits for it."""


class OnlineStoreUnavailableError(ConnectionFailedError):
    """The online store did not answer within its deadline (or refused the connection):
    a server answers 503, or the decision the model's policy declares for it."""


class NotFoundError(GristmillError):
    """A table, column or file named in the project, or a model, version or alias asked of
    the registry, does not exist."""


class BadRowsError(GristmillError):
    """A source file holds malformed rows, more than `max_bad_rows` allows."""


class SchemaChangeError(GristmillError):
    """A source column changed type in a way the warehouse table cannot follow."""


class TypeMappingError(GristmillError):
    """A source column's type, or one of its values, cannot be kept exactly (a zero date,
    a NaN numeric on DuckDB, a multi-dimensional array): nothing of the table is loaded.

    Raised where the column is known, then placed (`within`) by the sync, which knows the
    source and table and so names the override to set in gristmill.toml."""

    def __init__(self, column: str, problem: str, overrides: tuple[str, ...] = ("text",)) -> None:
        super().__init__(f"Column '{column}': {problem}.")
        self.column = column
        self.problem = problem
        self.overrides = overrides

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised on a Dask worker, it travels back to the driver pickled, its message too.
        return (type(self), (self.column, self.problem, self.overrides), {"args": self.args})

    def within(self, source: str, table: str) -> TypeMappingError:
        """The same error, naming the source, the table and the override to set."""
        placed = TypeMappingError(self.column, self.problem, self.overrides)
        first, *others = self.overrides
        key = table if table.replace("_", "").replace("-", "").isalnum() else f'"{table}"'
        quoted = ", ".join(f'"{o}"' for o in others)
        other = f" (or {quoted})" if others else ""
        placed.args = (
            f"Source '{source}', table '{table}', column '{self.column}': {self.problem}. "
            f"Nothing was loaded for this table. To load the column as another type, set "
            f'column_types = {{ {self.column} = "{first}" }}{other} under '
            f"[sources.{source}.tables.{key}], or exclude the column.",
        )
        return placed


class TransformError(GristmillError):
    """A transform's SQL or Python function failed; the message names its file and line."""


EventProblem = Literal[
    "future_time",
    "not_finite",
    "wrong_type",
    "out_of_range",
    "inexact",
    "missing",
    "unknown_field",
    "malformed",
]
"""Why an event was refused, for counters and clients that branch on it."""


class InvalidEventError(GristmillError):
    """An event pushed to a feature view that it cannot take: a time later than the
    serving clock allows, a NaN or infinite number, a value not of the view's declared
    type. The message names the event (its index) and the field; nothing was stored.

    `view`, `field`, `index` (the event's position in the push) and `reason` say the
    same as the message, for a server's 422 and its counters."""

    def __init__(
        self,
        message: str,
        field: str | None = None,
        *,
        view: str | None = None,
        reason: EventProblem | None = None,
        index: int | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.view = view
        self.reason = reason
        self.index = index


class CheckFailedError(GristmillError):
    """A data check of severity error failed, so the table was not published.

    `results` holds every check result of that build, passing ones included.
    """

    def __init__(self, message: str, results: list[Any] | None = None) -> None:
        super().__init__(message)
        self.results = results or []


class ExecutionError(GristmillError):
    """A job on the Dask cluster failed: a partition's task raised, or the workers running
    it died more often than the cluster allows. The message names the partition."""


class ArtifactTamperedError(GristmillError):
    """A model artifact's checksum, or the types it holds, differ from what the registry
    recorded when it wrote the file; the artifact is refused, never loaded."""


class UnsupportedEstimatorError(GristmillError):
    """The registry cannot store this estimator in a safe format (or read this format)."""


class EvaluationError(GristmillError):
    """Arrays handed to a model evaluation or explanation cannot be evaluated: empty,
    holding NaN, of different lengths, or with labels outside the expected classes."""


class BackendError(GristmillError):
    """A database or driver rejected an operation.

    `detail` holds the database's own message, without the statement gristmill sent.
    """

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail if detail is not None else message


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' Did you mean ...?' suffix naming the closest candidate, or ''."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


class PromotionRefusedError(GristmillError):
    """A version failed its model's promote_if checks on the shadow log."""

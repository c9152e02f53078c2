"""Run checks against a relation in the warehouse.

Each check counts its failing rows with `SELECT count(*) FROM (<failing sql>)` and, when
there are any, keeps a sample of five. A check whose SQL the database rejects gets the
status "error" with the database's message; `run_checks` itself does not raise.

Each check runs in a transaction of its own that is always rolled back: a failed
statement aborts a transaction on PostgreSQL and DuckDB alike (neither driver lets a
savepoint rescue it), so one broken check cannot stop the next, and checks never write.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock
from typing import Any

import pyarrow as pa

from gristmill.checks.spec import CheckSpec
from gristmill.dialects import Dialect
from gristmill.errors import BackendError, CheckFailedError
from gristmill.values import jsonable
from gristmill.warehouse.base import Transaction, Warehouse

SAMPLE_ROWS = 5

PASS, FAIL, ERROR = "pass", "fail", "error"


@dataclass
class CheckResult:
    check: CheckSpec
    relation: str
    status: str
    """"pass", "fail", or "error" (the check's SQL could not run)."""
    failing: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)
    """At most five failing rows, with JSON-able values."""
    message: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def blocking(self) -> bool:
        """Whether the result stops the run: a failure or error of an error-severity check."""
        return self.status != PASS and self.check.severity == "error"

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check.to_dict(),
            "relation": self.relation,
            "status": self.status,
            "blocking": self.blocking,
            "failing": self.failing,
            "sample": self.sample,
            "message": self.message,
            "seconds": round(self.seconds, 6),
        }


def raise_if_blocking(name: str, results: list[CheckResult]) -> None:
    blocking = [r for r in results if r.blocking]
    if blocking:
        lines = "\n".join(f"  {r.check.name}: {r.message}" for r in blocking)
        raise CheckFailedError(
            f"{name}: {len(blocking)} check(s) of severity error failed; the table was not "
            f"published and keeps its previous contents.\n{lines}",
            results,
        )


class _CheckError(Exception):
    """A check that cannot be evaluated; the message says why."""


class _Queries:
    """A check's queries, in one transaction."""

    def __init__(self, tx: Transaction, dialect: Dialect) -> None:
        self.tx = tx
        self.dialect = dialect

    def scalar(self, sql: str) -> Any:
        """The first value of the first row."""
        return self.tx.fetch_arrow(sql).column(0)[0].as_py()

    def table(self, sql: str) -> pa.Table:
        return self.tx.fetch_arrow(sql)


def run_checks(
    warehouse: Warehouse,
    relation: str,
    checks: Sequence[CheckSpec],
    *,
    search_path: Sequence[str] = (),
    now: datetime | None = None,
) -> list[CheckResult]:
    """Run `checks` against `relation` (already quoted, possibly schema-qualified).

    `search_path`: schemas that resolve the unqualified table names of checks (such as
    a relationships check's `to`). `now`: the moment freshness is measured from
    (default: the current time; naive means UTC).
    """
    moment = _utc(now) if now is not None else datetime.now(UTC)
    results: list[CheckResult] = []
    for check in checks:
        with warehouse.read_only() as tx:
            if search_path:
                warehouse.set_search_path(tx, search_path)
            results.append(_run_one(_Queries(tx, warehouse.dialect), relation, check, moment))
    return results


def _run_one(queries: _Queries, relation: str, check: CheckSpec, now: datetime) -> CheckResult:
    start = time.perf_counter()
    try:
        if check.kind == "freshness":
            status, failing, sample, message = _freshness(queries, relation, check, now)
        else:
            status, failing, sample, message = _failing_rows(queries, relation, check)
    except Exception as exc:
        return CheckResult(
            check, relation, ERROR, message=_error_message(exc), seconds=time.perf_counter() - start
        )
    return CheckResult(
        check, relation, status, failing, sample, message, time.perf_counter() - start
    )


def _failing_rows(
    queries: _Queries, relation: str, check: CheckSpec
) -> tuple[str, int, list[dict[str, Any]], str]:
    failing_sql = check.failing_rows_sql(relation, queries.dialect)
    assert failing_sql is not None
    # The newline ends a trailing -- comment in a custom query.
    failing = int(queries.scalar(f"SELECT count(*) AS failing FROM ({failing_sql}\n) AS gm_f"))
    if failing == 0:
        return PASS, 0, [], "passed"
    rows = queries.table(f"SELECT * FROM ({failing_sql}\n) AS gm_f LIMIT {SAMPLE_ROWS}")
    sample = [{str(k): jsonable(v) for k, v in row.items()} for row in rows.to_pylist()]
    return FAIL, failing, sample, _failure_message(check, failing, sample)


def _rows(n: int, noun: str = "row") -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _failure_message(check: CheckSpec, failing: int, sample: list[dict[str, Any]]) -> str:
    kind = check.kind
    if kind == "not_null":
        return f"{_rows(failing)} with NULL in {' or '.join(check.columns)}"
    if kind == "unique":
        keys = check.columns[0] if len(check.columns) == 1 else f"({', '.join(check.columns)})"
        verb = "appears" if failing == 1 else "appear"
        return f"{_rows(failing, 'value')} of {keys} {verb} more than once"
    if kind == "accepted_values":
        column = check.column or ""
        shown = ", ".join(
            f"{_show(row.get(column))} ({_rows(row.get(check.count_column, 0))})"
            for row in sample[:3]
        )
        more = ", ..." if failing > 3 else ""
        return f"{_rows(failing, 'unexpected value')} in {column}: {shown}{more}"
    if kind == "relationships":
        return f"{_rows(failing)} whose {check.column} is not in {check.to}.{check.to_field}"
    if kind == "row_count":
        count = int(sample[0]["row_count"]) if sample else 0
        if check.min_rows is not None and count < check.min_rows:
            return f"{_rows(count)}, fewer than the minimum of {check.min_rows}"
        return f"{_rows(count)}, more than the maximum of {check.max_rows}"
    if kind == "expression":
        return f"{_rows(failing)} where {' '.join((check.expression or '').split())} is not true"
    return f"{_rows(failing)} returned by the check's query"


def _freshness(
    queries: _Queries, relation: str, check: CheckSpec, now: datetime
) -> tuple[str, int, list[dict[str, Any]], str]:
    # max() is fetched and compared here: comparing TIMESTAMP with TIMESTAMPTZ in SQL
    # needs time zone support that a DuckDB without ICU lacks.
    table = queries.table(check.latest_sql(relation, queries.dialect))
    dtype = table.schema.field(0).type
    column = check.column or ""
    if not (pa.types.is_timestamp(dtype) or pa.types.is_date(dtype)):
        raise _CheckError(f"freshness needs a timestamp or date column; {column} holds {dtype}")
    latest = table.column(0)[0].as_py()
    cutoff = now - check.max_age_delta
    if latest is None:
        message = f"no {column} values (the table is empty or {column} is all NULL)"
        return FAIL, 1, [{"latest": None, "cutoff": str(cutoff)}], message
    moment = _utc(latest)
    sample = [{"latest": str(latest), "cutoff": str(cutoff)}]
    if moment < cutoff:
        return FAIL, 1, sample, f"latest {column} {latest} is older than {check.max_age}"
    return PASS, 0, [], f"latest {column} {latest} is within {check.max_age}"


def _utc(value: datetime | date) -> datetime:
    """A datetime in UTC: naive timestamps are taken as UTC, dates as midnight UTC."""
    if not isinstance(value, datetime):
        return datetime.combine(value, clock(), UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _error_message(exc: Exception) -> str:
    """The database's own message of a rejected statement, on one line."""
    if isinstance(exc, _CheckError):
        return str(exc)
    if isinstance(exc, BackendError):
        detail = getattr(exc, "detail", None)
        if not isinstance(detail, str) or detail == str(exc):
            # "<backend> rejected: <sql>\n  <message>", raised from the driver's error
            # (DuckDB) or from None (PostgreSQL, whose message is then one line).
            cause = exc.__cause__
            detail = str(cause) if cause is not None else str(exc).rsplit("\n  ", 1)[-1]
        return _DRIVER_PREFIX.sub("", _first_line(detail)) or _first_line(str(exc))
    return f"{type(exc).__name__}: {_first_line(str(exc))}"


_DRIVER_PREFIX = re.compile(
    r"^(?:[A-Z_]+: )?(?:\[libpq\] )?(?:Failed to (?:prepare|execute) query: )?(?:ERROR:\s+)?"
)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")

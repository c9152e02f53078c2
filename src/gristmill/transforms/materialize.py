"""Building a transform's relation: write, audit, publish.

Every build writes into a name of its own (`_gm_build_NAME`), runs the transform's
checks against it, and only then swaps it in, in one transaction. A build that fails,
or whose blocking checks fail, leaves the published relation exactly as it was.
Incremental builds stage the new rows, check the table as it would be after the merge
(through a view over the table and the stage), then delete and insert in one
transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from gristmill.checks import raise_if_blocking, run_checks
from gristmill.errors import BackendError, ConfigError, TransformError
from gristmill.transforms.python import call_transform
from gristmill.transforms.remote import call_on_worker
from gristmill.transforms.sql import TableRef, with_qualified_tables

if TYPE_CHECKING:
    import pyarrow as pa

    from gristmill.checks import CheckResult, CheckSpec
    from gristmill.execution import Executor
    from gristmill.transforms.definition import Transform
    from gristmill.warehouse.base import Warehouse

BUILD_PREFIX = "_gm_build_"
NEW_ROWS_PREFIX = "_gm_new_"
SCRATCH_PREFIXES = (BUILD_PREFIX, NEW_ROWS_PREFIX)
"""What a build writes before it publishes: a run killed mid-way leaves them behind, and
the next run drops them (`Warehouse.drop_scratch`)."""
_LINE = re.compile(r"LINE (\d+):")


@dataclass
class BuildResult:
    rows: int
    mode: str
    """'view', 'table', 'full' (an incremental table built from scratch) or 'incremental'."""
    checks: list[CheckResult] = field(default_factory=list)


class Builder:
    """Builds transforms into one warehouse schema."""

    def __init__(
        self,
        warehouse: Warehouse,
        schema: str,
        search_path: Sequence[str],
        resolved: dict[TableRef, TableRef],
        executor: Executor | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.executor = executor
        """Where Python transforms run: on a distributed one, as a task on a worker."""
        self.schema = schema
        self.search_path = list(search_path)
        self.resolved = resolved

    def rel(self, name: str) -> str:
        return self.warehouse.qualified(self.schema, name)

    def build(
        self,
        transform: Transform,
        checks: Sequence[CheckSpec],
        existing: str | None,
        rebuild: bool,
    ) -> BuildResult:
        """Build `transform`; `existing` is 'table', 'view' or None; `rebuild` forces an
        incremental transform to be built from scratch."""
        materialized = transform.options.materialized
        if transform.kind == "python":
            return self._python(transform, checks, existing)
        if materialized == "view":
            return self._view(transform, checks, existing)
        if materialized == "incremental" and existing == "table" and not rebuild:
            result = self._incremental(transform, checks)
            if result is not None:
                return result
        result = self._table(transform, checks, existing)
        if materialized == "incremental":
            result.mode = "full"
        return result

    # -- shared steps ----------------------------------------------------------------
    def _fail(self, transform: Transform, exc: BackendError, prefix_lines: int) -> TransformError:
        detail = exc.detail.strip()
        match = _LINE.search(detail)
        line = int(match.group(1)) - prefix_lines if match else 0
        place = f"{transform.path.as_posix()}:{line}" if line > 0 else transform.where
        return TransformError(f"{place}: {transform.name} failed in the warehouse: {detail}")

    def _run_sql(self, transform: Transform, statement: str, prefix_lines: int) -> None:
        try:
            with self.warehouse.transaction() as tx:
                self.warehouse.set_search_path(tx, self.search_path)
                tx.execute(statement)
        except BackendError as exc:
            raise self._fail(transform, exc, prefix_lines) from None

    def _drop(self, name: str, kind: str = "table") -> None:
        self.warehouse.execute(self.warehouse.drop_relation_sql(self.schema, name, kind))

    def _audit_and_publish(
        self, transform: Transform, checks: Sequence[CheckSpec], existing: str | None
    ) -> BuildResult:
        """Check the table built under its build name, then swap it in."""
        build = BUILD_PREFIX + transform.name
        try:
            results = run_checks(
                self.warehouse, self.rel(build), checks, search_path=self.search_path
            )
            raise_if_blocking(transform.name, results)
            rows = self.warehouse.row_count(self.schema, build)
            with self.warehouse.transaction() as tx:
                if existing is not None:
                    tx.execute(
                        self.warehouse.drop_relation_sql(self.schema, transform.name, existing)
                    )
                tx.execute(
                    f"ALTER TABLE {self.rel(build)} RENAME TO {self.warehouse.quote(transform.name)}"
                )
        finally:
            self._drop(build)
        return BuildResult(rows, "table", results)

    # -- materializations --------------------------------------------------------------
    def _table(
        self, transform: Transform, checks: Sequence[CheckSpec], existing: str | None
    ) -> BuildResult:
        build = BUILD_PREFIX + transform.name
        self._drop(build)
        self._run_sql(transform, f"CREATE TABLE {self.rel(build)} AS\n{transform.sql}", 1)
        return self._audit_and_publish(transform, checks, existing)

    def build_elsewhere(
        self,
        transform: Transform,
        checks: Sequence[CheckSpec],
        existing: str | None,
        fill: Callable[[str], object],
    ) -> BuildResult:
        """A table whose rows are computed outside this warehouse's SQL (a training set on
        Dask workers): `fill(relation)` creates and fills the build table, which is then
        checked and swapped in like a SQL table's; a failed fill publishes nothing."""
        build = BUILD_PREFIX + transform.name
        self._drop(build)
        try:
            fill(self.rel(build))
        except BaseException:
            self._drop(build)
            raise
        return self._audit_and_publish(transform, checks, existing)

    def _view(
        self, transform: Transform, checks: Sequence[CheckSpec], existing: str | None
    ) -> BuildResult:
        sql = with_qualified_tables(
            transform.sql, self.warehouse.DIALECT, transform.where, self.resolved
        )
        build = BUILD_PREFIX + transform.name
        self._drop(build, "view")
        try:
            self._run_sql(transform, f"CREATE VIEW {self.rel(build)} AS\n{sql}", 1)
            results = run_checks(
                self.warehouse, self.rel(build), checks, search_path=self.search_path
            )
            raise_if_blocking(transform.name, results)
            with self.warehouse.transaction() as tx:
                if existing is not None:
                    tx.execute(
                        self.warehouse.drop_relation_sql(self.schema, transform.name, existing)
                    )
                tx.execute(f"CREATE VIEW {self.rel(transform.name)} AS\n{sql}")
        finally:
            self._drop(build, "view")
        return BuildResult(0, "view", results)

    def _incremental(self, transform: Transform, checks: Sequence[CheckSpec]) -> BuildResult | None:
        """Add the rows past the table's latest time; None when the table is empty."""
        options = transform.options
        q = self.warehouse.quote
        target, time_column = self.rel(transform.name), q(options.time_column or "")
        latest = self.warehouse.fetchall(f"SELECT max({time_column}) FROM {target}")[0][0]
        if latest is None:
            return None
        lookback = options.lookback_delta
        if lookback is not None and isinstance(latest, datetime | date):
            latest = latest - lookback
        merge = options.strategy == "merge"
        compare = ">=" if merge or lookback is not None else ">"
        new_rows = NEW_ROWS_PREFIX + transform.name
        self._drop(new_rows)
        self._run_sql(
            transform,
            f"CREATE TABLE {self.rel(new_rows)} AS SELECT * FROM (\n{transform.sql}\n) AS _gm_src"
            f" WHERE {time_column} {compare} {self.warehouse.literal(latest)}",
            1,
        )
        check_view = BUILD_PREFIX + transform.name
        try:
            columns = self._same_columns(transform, new_rows)
            cols = ", ".join(q(c) for c in columns)
            match = " AND ".join(f"s.{q(k)} = t.{q(k)}" for k in options.unique_key)
            old_rows = (
                f"SELECT {cols} FROM {target} AS t WHERE NOT EXISTS"
                f" (SELECT 1 FROM {self.rel(new_rows)} AS s WHERE {match})"
                if merge
                else f"SELECT {cols} FROM {target}"
            )
            results: list[CheckResult] = []
            if checks:
                self._drop(check_view, "view")
                self.warehouse.execute(
                    f"CREATE VIEW {self.rel(check_view)} AS {old_rows}"
                    f" UNION ALL SELECT {cols} FROM {self.rel(new_rows)}"
                )
                results = run_checks(
                    self.warehouse, self.rel(check_view), checks, search_path=self.search_path
                )
                raise_if_blocking(transform.name, results)
            rows = self.warehouse.row_count(self.schema, new_rows)
            with self.warehouse.transaction() as tx:
                if merge:
                    tx.execute(
                        f"DELETE FROM {target} AS t WHERE EXISTS"
                        f" (SELECT 1 FROM {self.rel(new_rows)} AS s WHERE {match})"
                    )
                tx.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {self.rel(new_rows)}")
        finally:
            self._drop(check_view, "view")
            self._drop(new_rows)
        return BuildResult(rows, "incremental", results)

    def _same_columns(self, transform: Transform, new_rows: str) -> list[str]:
        rows = self.warehouse.fetchall(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name IN ($2, $3) ORDER BY ordinal_position",
            [self.schema, transform.name, new_rows],
        )
        current = [c for t, c in rows if t == transform.name]
        incoming = [c for t, c in rows if t == new_rows]
        if sorted(current) != sorted(incoming):
            raise TransformError(
                f"{transform.where}: {transform.name} now returns columns {incoming}, but the "
                f"table has {current}. Rebuild it: gristmill run {transform.name} --full-refresh"
            )
        return current

    def _python(
        self, transform: Transform, checks: Sequence[CheckSpec], existing: str | None
    ) -> BuildResult:
        inputs: dict[str, pa.Table] = {}
        for written in transform.inputs:
            schema, _, name = written.rpartition(".")
            target = self.resolved[(schema, name)]
            if target[1] in inputs:
                raise ConfigError(
                    f"{transform.where}: two inputs are both called '{target[1]}'; "
                    "the function receives each input as an argument named after its table."
                )
            relation = self.warehouse.qualified(*target)
            try:
                table = self.warehouse.query_arrow(f"SELECT * FROM {relation}")
            except BackendError as exc:
                raise TransformError(
                    f"{transform.where}: {transform.name} cannot read {'.'.join(target)}: {exc}"
                ) from None
            inputs[target[1]] = table
        if self.executor is not None and self.executor.DISTRIBUTED:
            table = call_on_worker(self.executor, transform, inputs)
        else:
            table = call_transform(transform, inputs)
        build = BUILD_PREFIX + transform.name
        self.warehouse.recreate_table(self.schema, build, table.schema)
        self.warehouse.append(self.schema, build, table.to_batches(max_chunksize=65_536))
        return self._audit_and_publish(transform, checks, existing)

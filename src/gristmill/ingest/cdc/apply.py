"""A table synced from its source's change log (mode = "cdc"): loaded once in full from
the snapshot its log begins at, then kept up to date by applying the log's transactions.

Each micro-batch (whole source transactions, in commit order) is applied in one warehouse
transaction together with the log position it reaches, the table's sync state; the log is
confirmed only after that commit. A sync killed at any moment leaves the warehouse at the
end of a source transaction, and the next one reads again from the log what the
warehouse's position has not got: nothing is lost or applied twice.

Within a batch, the last change of each key wins (`row_number()` by the order of the log);
a TRUNCATE empties the table before the changes that follow it; a value an update left
unchanged (and the log does not carry) is taken from the batch's earlier change of the row,
else from the warehouse.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from gristmill.ingest.cdc.base import Change, ChangeLog, CommittedTransaction
from gristmill.ingest.cdc.pgoutput import format_lsn, parse_lsn
from gristmill.ingest.engine import TableResult, TableSync
from gristmill.ingest.schema import SchemaPlan, plan_evolution, schema_from_text, schema_to_text
from gristmill.ingest.sources.base import Extract, ReadRequest, Snapshot

if TYPE_CHECKING:
    from gristmill.features.live import LiveViews
    from gristmill.project import Project
    from gristmill.warehouse.base import Transaction

logger = logging.getLogger(__name__)

MAX_CHANGES = 50_000
"""About how many log messages one micro-batch holds (a larger transaction comes whole)."""
SEQUENCE = "_gm_seq"
OPERATION = "_gm_op"
UNCHANGED = "_gm_unchanged"


class CdcSync(TableSync):
    """Syncs one table from its change log (`Source.change_log`)."""

    log: ChangeLog
    live: LiveViews | None = None
    """The feature views built on the table, refreshed online with each batch."""
    max_changes = MAX_CHANGES

    def for_project(self, project: Project) -> CdcSync:
        """The table's change log, and the feature views to keep in step with it."""
        from gristmill.features.live import LiveViews

        self.log = self.source.change_log(self.spec.table, project.config.name)
        self.live = LiveViews.of_table(
            project, self.schema, self.spec.target, self.spec.primary_key
        )
        return self

    def _run(self) -> TableResult:
        spec = self.spec
        state = (
            None if self.full_refresh else self.warehouse.read_state(spec.source, spec.table.name)
        )
        usable = (
            state is not None
            and state.get("mode") == "cdc"
            and state.get("target") == spec.target
            and state.get("slot") == self.log.name
            and "position" in state
            and self.warehouse.table_exists(self.schema, spec.target)
            # A question of the slot's existence only: its status would decode the log.
            and self.log.exists()
        )
        try:
            if not usable:
                return self._initial_load()
            assert state is not None
            return self._catch_up(state)
        finally:
            self.log.close()

    # -- the initial load -------------------------------------------------------------------
    def _initial_load(self) -> TableResult:
        start = self.log.start()
        self._snapshot: Snapshot | None = start.snapshot
        self.extra_state = {
            "slot": self.log.name,
            "publication": self.log.publication,
            "position": format_lsn(start.position),
        }
        self.full_refresh = True  # whatever state there was, the table is loaded anew
        try:
            result = super()._run()
        finally:
            self._snapshot = None
            start.snapshot.close()
        result.cursor = format_lsn(start.position)
        return result

    def _extract(self, request: ReadRequest) -> Extract:
        request.snapshot = self._snapshot
        return self.source.extract(request)

    # -- changes ------------------------------------------------------------------------------
    def _catch_up(self, state: dict[str, Any]) -> TableResult:
        """Apply the log until the position the source had when the sync began."""
        spec = self.spec
        result = TableResult(spec.source, spec.table.name, spec.target, "cdc")
        name = f"{self.schema}.{spec.target}"
        plan = plan_evolution(name, schema_from_text(state["schema"]), self.incoming)
        result.schema_change = plan.describe() or None
        result.dropped_columns = plan.dropped
        position = parse_lsn(state["position"])
        until = self.log.current_position()
        while True:
            transactions = self.log.read(position, self.max_changes)
            if not transactions:
                break
            rows, deleted, read = self._apply_batch(transactions, plan, state)
            result.rows += rows
            result.deleted_rows += deleted
            result.rows_read += read
            result.changed = result.changed or bool(rows or deleted or plan.changed)
            position = transactions[-1].position
            self.log.confirm(position)
            plan = SchemaPlan(plan.table_schema)  # evolved with the first batch
            if position >= until:
                break
        if plan.changed:  # nothing to apply, but the columns still change
            self._apply_batch([], plan, state)
            result.changed = True
        result.cursor = format_lsn(position)
        self.table_schema = plan.table_schema
        self.state = state
        return result

    def _apply_batch(
        self, transactions: list[CommittedTransaction], plan: SchemaPlan, state: dict[str, Any]
    ) -> tuple[int, int, int]:
        """One micro-batch in one warehouse transaction with its position: (rows upserted,
        rows deleted, changes read)."""
        changes = [c for t in transactions for c in t.changes]
        truncated = max((i for i, c in enumerate(changes) if c.operation == "truncate"), default=-1)
        kept = [(i, c) for i, c in enumerate(changes) if i > truncated]
        unchanged = _fill_unchanged(
            kept, dict(zip(self.spec.columns, self.spec.names, strict=True)), self._source_keys()
        )
        self._drop_stages()
        try:
            if kept:
                self._stage_changes(kept, unchanged)
            with self.warehouse.transaction() as tx:
                self._evolve(tx, plan)
                if self.live is not None:
                    self.live.track(tx)
                deleted = self._truncate(tx) if truncated >= 0 else 0
                upserted, removed = self._merge_changes(tx, unchanged) if kept else (0, 0)
                deleted += removed
                if self.live is not None:
                    self.live.refresh(tx)
                changed = bool(upserted or deleted or plan.changed)
                last = transactions[-1] if transactions else None
                state.update(
                    {
                        "schema": schema_to_text(plan.table_schema),
                        "synced_at": datetime.now(UTC).isoformat(),
                        "version": (not changed and state.get("version")) or uuid.uuid4().hex,
                    }
                )
                if last is not None:
                    state["position"] = format_lsn(last.position)
                    state["committed_at"] = datetime.fromtimestamp(
                        last.commit_time_us / 1_000_000, UTC
                    ).isoformat()
                self.warehouse.write_state(tx, self.spec.source, self.spec.table.name, state)
        finally:
            self._drop_stages()
        return upserted, deleted, len(changes)

    def _source_keys(self) -> list[str]:
        spec = self.spec
        return [spec.columns[spec.names.index(k)] for k in spec.primary_key]

    def _stage_changes(self, kept: list[tuple[int, Change]], unchanged: list[str | None]) -> None:
        spec = self.spec
        # A column the table's entry leaves out is ignored by the source's conversion.
        rows = json.dumps([c.values for _, c in kept])
        typed = self.source.typed_rows(spec.table, spec.columns, rows)
        batches = list(self._renamed(typed, spec.names))
        table = (
            pa.Table.from_batches(batches, schema=self.incoming)
            if batches
            else self.incoming.empty_table()
        )
        table = table.append_column(SEQUENCE, pa.array([i for i, _ in kept], pa.int64()))
        operations = ["d" if c.operation == "delete" else "u" for _, c in kept]
        table = table.append_column(OPERATION, pa.array(operations, pa.string()))
        table = table.append_column(UNCHANGED, pa.array(unchanged, pa.string()))
        self.warehouse.recreate_table(self.schema, self.stage, table.schema)
        self.warehouse.append(self.schema, self.stage, table.to_batches())

    def _touched(self, tx: Transaction, rows: str) -> None:
        """Remember the entities of the query `rows` (of the target's columns) as touched."""
        if self.live is not None:
            self.live.touched(tx, rows)

    def _truncate(self, tx: Transaction) -> int:
        target = self.t(self.spec.target)
        self._touched(tx, f"SELECT * FROM {target}")
        count = int(tx.fetchall(f"SELECT count(*) FROM {target}")[0][0])
        tx.execute(f"DELETE FROM {target}")
        if self.live is not None:
            self.live.replace_rows(tx, None, f"SELECT * FROM {target}")
        return count

    def _merge_changes(self, tx: Transaction, unchanged: list[str | None]) -> tuple[int, int]:
        """Apply the staged changes, the last of each key: (rows upserted, rows deleted)."""
        spec = self.spec
        target = self.t(spec.target)
        keys = ", ".join(self.q(k) for k in spec.primary_key)
        latest = (
            f"SELECT * FROM (SELECT s.*, row_number() OVER (PARTITION BY {keys}"
            f" ORDER BY s.{SEQUENCE} DESC) AS _gm_rank FROM {self.t(self.stage)} AS s) AS r"
            " WHERE _gm_rank = 1"
        )
        match = self._key_match("n", "t", spec.primary_key)
        deleted = int(
            tx.fetchall(
                f"SELECT count(*) FROM {target} AS t WHERE EXISTS (SELECT 1 FROM ({latest}) AS n"
                f" WHERE n.{OPERATION} = 'd' AND {match})"
            )[0][0]
        )
        names = {c for marks in unchanged if marks for c in marks.strip("|").split("|")}
        columns = ", ".join(self.q(n) for n in spec.names)
        upserts = f"SELECT {columns} FROM ({latest}) AS n WHERE n.{OPERATION} = 'u'"
        if names:
            # The values the log left out come from the rows the warehouse holds now.
            literal = self.warehouse.dialect.string_literal
            kept = ", ".join(
                f"CASE WHEN position({literal(f'|{n}|')} IN coalesce(n.{UNCHANGED}, '')) > 0"
                f" THEN t.{self.q(n)} ELSE n.{self.q(n)} END AS {self.q(n)}"
                if n in names
                else f"n.{self.q(n)}"
                for n in spec.names
            )
            tx.execute(
                f"CREATE TABLE {self.t(self.keys_stage)} AS SELECT {kept} FROM ({latest}) AS n"
                f" LEFT JOIN {target} AS t ON {match} WHERE n.{OPERATION} = 'u'"
            )
            upserts = f"SELECT {columns} FROM {self.t(self.keys_stage)}"
        upserted = int(tx.fetchall(f"SELECT count(*) FROM ({upserts}) AS u")[0][0])
        self._touched(
            tx,
            f"SELECT t.* FROM {target} AS t WHERE EXISTS"
            f" (SELECT 1 FROM ({latest}) AS n WHERE {match})",
        )
        self._touched(tx, upserts)
        tx.execute(
            f"DELETE FROM {target} AS t WHERE EXISTS (SELECT 1 FROM ({latest}) AS n WHERE {match})"
        )
        if upserted:
            tx.execute(f"INSERT INTO {target} ({columns}) {upserts}")
        if self.live is not None:
            self.live.replace_rows(tx, f"SELECT {keys} FROM ({latest}) AS n", upserts)
        return upserted, deleted


def _fill_unchanged(
    kept: list[tuple[int, Change]], names: dict[str, str], keys: list[str]
) -> list[str | None]:
    """Per change, the warehouse names (`names`: source column -> warehouse column) of the
    columns whose value stays as the warehouse has it ("|a|b|"; None: none). A value an update left out is first taken from the batch's
    earlier change of the same row, which the warehouse does not hold yet."""
    if not any(change.unchanged for _, change in kept):
        return [None] * len(kept)
    latest: dict[tuple[str | None, ...], dict[str, str | None]] = {}
    marks: list[str | None] = []
    for _, change in kept:
        key = tuple(change.values.get(k) for k in keys)
        missing = []
        if change.unchanged:
            before = latest.get(key)
            for column in change.unchanged:
                if before is not None and column in before:
                    change.values[column] = before[column]
                elif column in names:
                    missing.append(names[column])
        if change.operation == "delete":
            latest.pop(key, None)
        else:
            latest[key] = {c: v for c, v in change.values.items()}
        marks.append("|" + "|".join(missing) + "|" if missing else None)
    return marks

"""PostgreSQL's logical replication as a change log: a publication of the table and a
replication slot with the pgoutput plugin, both named after the project, the source and
the table (`slot_name`).

The slot is created over a replication connection, which exports the snapshot the slot
begins at: the initial load reads the table in it, so that the load and the changes after
it meet exactly. Changes are then read with `pg_logical_slot_peek_binary_changes` on an
ordinary connection (whole transactions, in commit order) and confirmed with
`pg_replication_slot_advance` once the warehouse has committed them: a sync killed in
between reads them again, and skips those the warehouse's position says it applied.

Values arrive as the text of each type's output function, in sessions pinned to ISO dates,
UTC and exact floats; `PostgresSource.typed_rows` turns them into the types of a batch read.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import TYPE_CHECKING, Any

from gristmill.errors import BackendError, ConfigError, MissingDependencyError
from gristmill.ingest.cdc.base import (
    Change,
    ChangeLog,
    CommittedTransaction,
    LogStart,
    LogStatus,
)
from gristmill.ingest.cdc.pgoutput import (
    UNCHANGED,
    Begin,
    Commit,
    Delete,
    Insert,
    Relation,
    Truncate,
    Update,
    Value,
    decode,
    format_lsn,
    parse_lsn,
)
from gristmill.ingest.sources.base import Snapshot, SourceTable

if TYPE_CHECKING:
    from gristmill.ingest.sources.postgres import PostgresSource

MAX_NAME = 63
"""PostgreSQL's longest identifier."""
CONNECT_SECONDS = 10
STATEMENT_SECONDS = 300
"""The longest a read of the log may take (decoding a large backlog), then it fails."""
SESSION = (
    "-c DateStyle=ISO -c IntervalStyle=postgres -c TimeZone=UTC -c bytea_output=hex"
    " -c extra_float_digits=3"
)
"""How values are written as text: unambiguous to parse again whatever the server's defaults."""


def slot_name(project: str, source: str, table: str) -> str:
    """The slot's (and the publication's) name: `gm_<project>_<source>_<table>`, made of
    what PostgreSQL allows in a slot name, shortened with a hash when too long."""
    name = re.sub(r"[^a-z0-9_]", "_", f"gm_{project}_{source}_{table}".lower())
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: MAX_NAME - 11]}_{digest}"


class PostgresChangeLog(ChangeLog):
    def __init__(self, source: PostgresSource, table: SourceTable, project: str) -> None:
        self.source = source
        self.table = table
        self.name = slot_name(project, source.name, table.name)
        self.publication = self.name
        self._conn: Any = None
        self._relations: dict[int, Relation] = {}
        self._names: dict[int, tuple[str, ...]] = {}

    # -- connections and errors -------------------------------------------------------------
    def _connect(self, replication: bool = False) -> Any:
        try:
            import psycopg
        except ImportError:
            raise MissingDependencyError(
                "psycopg", "cdc", "Change data capture from PostgreSQL"
            ) from None
        options = f"{SESSION} -c statement_timeout={STATEMENT_SECONDS * 1000}"
        extra: dict[str, Any] = {"replication": "database"} if replication else {}
        try:
            return psycopg.connect(
                self.source.url,
                autocommit=True,
                connect_timeout=CONNECT_SECONDS,
                options=options,
                **extra,
            )
        except psycopg.Error as exc:
            raise self._translated(exc, "connect to the source") from None

    def _db(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def _rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            return list(self._db().execute(sql, params).fetchall())
        except psycopg.Error as exc:
            raise self._translated(exc, "read the change log") from None

    def _run(self, sql: str, params: list[Any] | None = None) -> None:
        import psycopg

        try:
            self._db().execute(sql, params)
        except psycopg.Error as exc:
            raise self._translated(exc, "set up the change log") from None

    def _translated(self, exc: Exception, what: str) -> Exception:
        """The server's refusal, with the setting or grant that fixes it."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f"Source '{self.source.name}', table '{self.table.name}'"
        if "wal_level" in text:
            return ConfigError(
                f'{where}: mode = "cdc" needs the server\'s wal_level = logical ({text}).'
                " Set it (ALTER SYSTEM SET wal_level = logical, or in postgresql.conf) and"
                " restart PostgreSQL; also check max_replication_slots and max_wal_senders."
            )
        if "superuser or replication role" in text or "REPLICATION attribute" in text:
            return ConfigError(
                f"{where}: the role of the source's url may not use replication slots"
                f" ({text}). Grant it: ALTER ROLE <role> WITH REPLICATION; it must also own"
                " the table (or be superuser) to create its publication."
            )
        if "is active for PID" in text:
            return ConfigError(
                f"{where}: replication slot {self.name} is in use by another process ({text})."
                " Another `gristmill stream` or ingest of this table may be running: stop it"
                " first, or wait for it to finish."
            )
        if "must be owner of table" in text or "permission denied" in text:
            return ConfigError(
                f"{where}: the source's role may not publish the table ({text}). Create the"
                f" publication as its owner: CREATE PUBLICATION {self.publication} FOR TABLE"
                f" {self.source.table_ref(self.table.name)}"
            )
        if "all replication slots are in use" in text:
            return ConfigError(
                f"{where}: the server has no free replication slot ({text}). Raise"
                " max_replication_slots, or drop unused slots (gristmill ingest"
                " SOURCE.TABLE --drop-slot)."
            )
        return BackendError(f"{where}: could not {what}: {text}", text)

    # -- the log ------------------------------------------------------------------------------
    def start(self) -> LogStart:
        self._check_server()
        self._publish()
        self._drop_slot()
        replication = self._connect(replication=True)
        try:
            created = replication.execute(
                f"CREATE_REPLICATION_SLOT {self.name} LOGICAL pgoutput EXPORT_SNAPSHOT"
            ).fetchone()
        except Exception as exc:
            replication.close()
            raise self._translated(exc, "create its replication slot") from None
        _, consistent, snapshot, _ = created
        setup = (
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            f"SET TRANSACTION SNAPSHOT '{snapshot}'",
        )
        # The snapshot lives while the replication connection does nothing else.
        return LogStart(parse_lsn(consistent), Snapshot(setup, replication.close))

    def _check_server(self) -> None:
        """Refuse before creating anything: the setting and the grant a slot needs."""
        level, allowed = self._rows(
            "SELECT current_setting('wal_level'),"
            " (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)"
        )[0]
        if level != "logical":
            raise self._translated(ValueError(f"wal_level is {level}"), "start")
        if not allowed:
            raise self._translated(ValueError("the role lacks the REPLICATION attribute"), "start")

    def _publish(self) -> None:
        """The publication of this table alone (made again if it publishes anything else)."""
        table = self.source.table_ref(self.table.name)
        schema, _, name = self.table.name.rpartition(".")
        published = self._rows(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables"
            " WHERE pubname = %s",
            [self.publication],
        )
        exists = self._rows("SELECT 1 FROM pg_publication WHERE pubname = %s", [self.publication])
        if exists and published == [(schema or self.source.db_schema, name)]:
            return
        if exists:
            self._run(f"DROP PUBLICATION {self.publication}")
        self._run(f"CREATE PUBLICATION {self.publication} FOR TABLE {table}")

    def _drop_slot(self) -> bool:
        found = self._rows(
            "SELECT active FROM pg_replication_slots WHERE slot_name = %s", [self.name]
        )
        if not found:
            return False
        self._run("SELECT pg_drop_replication_slot(%s)", [self.name])
        return True

    def read(self, after: int, max_changes: int) -> list[CommittedTransaction]:
        confirmed: int | None = None
        while True:
            transactions, applied = self._peek(after, max_changes)
            if transactions or applied is None or applied == confirmed:
                return transactions
            # Only transactions the warehouse has applied (a sync killed between its commit
            # and the slot's confirmation): confirmed now, so that the peek moves past them.
            self.confirm(applied)
            confirmed = applied

    def _peek(self, after: int, max_changes: int) -> tuple[list[CommittedTransaction], int | None]:
        """The transactions after `after` among the next `max_changes` messages, and the
        end of the last one at or before it (None: none was)."""
        rows = self._rows(
            "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, %s,"
            " 'proto_version', '1', 'publication_names', %s)",
            [self.name, max_changes, self.publication],
        )
        transactions: list[CommittedTransaction] = []
        applied: int | None = None
        changes: list[Change] = []
        begun: Begin | None = None
        for (data,) in rows:
            message = decode(bytes(data))
            if isinstance(message, Begin):
                begun, changes = message, []
            elif isinstance(message, Commit):
                if message.end_lsn > after:
                    transactions.append(
                        CommittedTransaction(
                            message.end_lsn, message.commit_time_us, tuple(changes)
                        )
                    )
                else:
                    applied = message.end_lsn
                begun = None
            elif isinstance(message, Relation):
                self._relations[message.oid] = message
                self._names.pop(message.oid, None)
            elif begun is not None:
                changes.extend(self._changes(message))
        return transactions, applied

    def _changes(self, message: object) -> list[Change]:
        if isinstance(message, Insert):
            return [self._upsert(message.relation_oid, message.new)]
        if isinstance(message, Update):
            found = []
            if message.old is not None:
                old = self._values(message.relation_oid, message.old)[0]
                new = self._values(message.relation_oid, message.new)[0]
                keys = self._key_columns(message.relation_oid)
                if any(old.get(k) != new.get(k) for k in keys):  # the key itself changed
                    found.append(Change("delete", {k: old.get(k) for k in keys}))
            found.append(self._upsert(message.relation_oid, message.new))
            return found
        if isinstance(message, Delete):
            old = self._values(message.relation_oid, message.old)[0]
            return [
                Change("delete", {k: old.get(k) for k in self._key_columns(message.relation_oid)})
            ]
        if isinstance(message, Truncate):
            return [Change("truncate")]
        return []  # types, origins, logical messages: nothing for the table

    def _relation(self, oid: int) -> Relation:
        relation = self._relations.get(oid)
        if relation is None:
            raise BackendError(
                f"Source '{self.source.name}': the change log sent a change of relation {oid}"
                " before describing it (a pgoutput protocol error)."
            )
        return relation

    def _key_columns(self, oid: int) -> list[str]:
        relation = self._relation(oid)
        keys = [c.name for c in relation.columns if c.key]
        if not keys:
            raise ConfigError(
                f"Source '{self.source.name}', table '{self.table.name}': its changes carry no"
                " key (REPLICA IDENTITY NOTHING?). Give it a primary key, or ALTER TABLE"
                f" {self.source.table_ref(self.table.name)} REPLICA IDENTITY FULL."
            )
        return keys

    def _values(
        self, oid: int, values: tuple[Value, ...]
    ) -> tuple[dict[str, str | None], tuple[str, ...]]:
        names = self._names.get(oid)
        if names is None:
            names = self._names[oid] = tuple(c.name for c in self._relation(oid).columns)
        if len(names) != len(values):
            raise BackendError(
                f"Source '{self.source.name}': a change of {self.table.name} has {len(values)}"
                f" values for its {len(names)} columns (a pgoutput protocol error)."
            )
        row = dict(zip(names, values, strict=True))
        if UNCHANGED not in values:
            return row, ()  # type: ignore[return-value]
        unchanged = tuple(n for n, v in row.items() if v is UNCHANGED)
        for name in unchanged:
            del row[name]
        return row, unchanged  # type: ignore[return-value]

    def _upsert(self, oid: int, values: tuple[Value, ...]) -> Change:
        row, unchanged = self._values(oid, values)
        return Change("upsert", row, unchanged)

    def confirm(self, position: int) -> None:
        # Advancing to where the slot already is (or behind it) is an error, not a no-op.
        self._rows(
            "SELECT pg_replication_slot_advance(slot_name, %s::pg_lsn) FROM pg_replication_slots"
            " WHERE slot_name = %s AND confirmed_flush_lsn < %s::pg_lsn",
            [format_lsn(position), self.name, format_lsn(position)],
        )

    def current_position(self) -> int:
        return parse_lsn(self._rows("SELECT pg_current_wal_lsn()::text")[0][0])

    def exists(self) -> bool:
        return bool(
            self._rows("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [self.name])
        )

    def status(self) -> LogStatus:
        found = self._rows(
            "SELECT active, confirmed_flush_lsn::text,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint"
            " FROM pg_replication_slots WHERE slot_name = %s",
            [self.name],
        )
        if not found:
            return LogStatus(self.name, self.publication, exists=False)
        active, confirmed, lag_bytes = found[0]
        waiting = (
            self._rows(
                "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, 1,"
                " 'proto_version', '1', 'publication_names', %s)",
                [self.name, self.publication],
            )
            if not active
            else []
        )
        lag_seconds = None if active else 0.0
        for (data,) in waiting:
            message = decode(bytes(data))
            if isinstance(message, Begin):
                lag_seconds = max(0.0, time.time() - message.commit_time_us / 1_000_000)
                break
        return LogStatus(
            self.name,
            self.publication,
            exists=True,
            active=bool(active),
            confirmed=parse_lsn(confirmed) if confirmed else None,
            lag_bytes=int(lag_bytes) if lag_bytes is not None else None,
            lag_seconds=lag_seconds,
        )

    def drop(self) -> bool:
        dropped = self._drop_slot()
        self._run(f"DROP PUBLICATION IF EXISTS {self.publication}")
        return dropped

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

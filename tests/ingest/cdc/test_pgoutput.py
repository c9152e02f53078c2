"""The pgoutput decoder: messages built byte by byte, fuzzed input, and a real server's slot."""

from __future__ import annotations

import copy
import pickle
import re
import secrets
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gristmill.errors import BackendError
from gristmill.ingest.cdc.pgoutput import (
    UNCHANGED,
    Begin,
    Column,
    Commit,
    Delete,
    Insert,
    LogicalMessage,
    Message,
    Origin,
    Relation,
    Truncate,
    TypeInfo,
    Unchanged,
    Update,
    decode,
    format_lsn,
    parse_lsn,
)
from tests.conftest import LogicalPostgres

US = timedelta(microseconds=1)
WHEN = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
WHEN_PG_US = (WHEN - datetime(2000, 1, 1, tzinfo=UTC)) // US  # what pgoutput sends
WHEN_UNIX_US = (WHEN - datetime(1970, 1, 1, tzinfo=UTC)) // US


def cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def tup(*values: str | Unchanged | None) -> bytes:
    """TupleData: Int16 column count, then per column 'n', 'u' or 't' + Int32 length + text."""
    out = struct.pack(">H", len(values))
    for v in values:
        if v is None:
            out += b"n"
        elif v is UNCHANGED:
            out += b"u"
        else:
            assert isinstance(v, str)
            out += b"t" + struct.pack(">I", len(v.encode())) + v.encode()
    return out


BEGIN = b"B" + struct.pack(">QqI", 0x1_0000_00A0, WHEN_PG_US, 734)
COMMIT = b"C" + struct.pack(">BQQq", 0, 0x1_0000_00A0, 0x1_0000_00D8, WHEN_PG_US)
RELATION = (
    b"R"
    + struct.pack(">I", 16384)
    + cstr("public")
    + cstr("items")
    + b"d"
    + struct.pack(">H", 3)
    + b"\x01"
    + cstr("id")
    + struct.pack(">Ii", 23, -1)
    + b"\x00"
    + cstr("amount")
    + struct.pack(">Ii", 1700, (10 << 16 | 2) + 4)
    + b"\x00"
    + cstr("é note")
    + struct.pack(">Ii", 25, -1)
)
INSERT = b"I" + struct.pack(">I", 16384) + b"N" + tup("1", "12.50", None)
UPDATE_NEW_ONLY = b"U" + struct.pack(">I", 16384) + b"N" + tup("1", "13.00", UNCHANGED)
UPDATE_KEY = b"U" + struct.pack(">I", 16384) + b"K" + tup("1", None, None) + b"N" + tup("2", "", "")
UPDATE_FULL = b"U" + struct.pack(">I", 7) + b"O" + tup("1", "a", None) + b"N" + tup("1", "b", None)
DELETE_KEY = b"D" + struct.pack(">I", 16384) + b"K" + tup("1", None, None)
DELETE_FULL = b"D" + struct.pack(">I", 7) + b"O" + tup("1", "b", "ünï €")
TRUNCATE = b"T" + struct.pack(">IB", 2, 3) + struct.pack(">II", 16384, 4_000_000_000)
TYPE = b"Y" + struct.pack(">I", 16390) + cstr("public") + cstr("mood")
ORIGIN = b"O" + struct.pack(">Q", 0xAB_0000_0001) + cstr("upstream")
MESSAGE = b"M" + struct.pack(">BQ", 1, 0x2000) + cstr("gm") + struct.pack(">I", 3) + b"a\0b"

EXPECTED: list[tuple[bytes, Message]] = [
    (BEGIN, Begin(0x1_0000_00A0, WHEN_UNIX_US, 734)),
    (COMMIT, Commit(0x1_0000_00A0, 0x1_0000_00D8, WHEN_UNIX_US)),
    (
        RELATION,
        Relation(
            16384,
            "public",
            "items",
            "d",
            (
                Column("id", 23, -1, key=True),
                Column("amount", 1700, 655366, key=False),
                Column("é note", 25, -1, key=False),
            ),
        ),
    ),
    (INSERT, Insert(16384, ("1", "12.50", None))),
    (UPDATE_NEW_ONLY, Update(16384, None, False, ("1", "13.00", UNCHANGED))),
    (UPDATE_KEY, Update(16384, ("1", None, None), True, ("2", "", ""))),
    (UPDATE_FULL, Update(7, ("1", "a", None), False, ("1", "b", None))),
    (DELETE_KEY, Delete(16384, ("1", None, None), True)),
    (DELETE_FULL, Delete(7, ("1", "b", "ünï €"), False)),
    (TRUNCATE, Truncate((16384, 4_000_000_000), cascade=True, restart_identity=True)),
    (TYPE, TypeInfo(16390, "public", "mood")),
    (ORIGIN, Origin(0xAB_0000_0001, "upstream")),
    (MESSAGE, LogicalMessage(True, 0x2000, "gm", b"a\0b")),
]
VALID = [raw for raw, _ in EXPECTED]


@pytest.mark.parametrize(("raw", "message"), EXPECTED, ids=lambda v: type(v).__name__)
def test_decodes_every_message_kind(raw: bytes, message: Message) -> None:
    assert decode(raw) == message
    assert decode(bytearray(raw)) == message
    assert decode(memoryview(raw)) == message


def test_commit_time_is_microseconds_since_the_unix_epoch() -> None:
    epoch = decode(b"B" + struct.pack(">QqI", 0, 0, 1))
    assert isinstance(epoch, Begin)
    assert epoch.commit_time_us == 946_684_800_000_000
    begin = decode(BEGIN)
    assert isinstance(begin, Begin)
    assert datetime.fromtimestamp(begin.commit_time_us / 1e6, UTC) == WHEN


def test_truncate_flags_and_empty_tuples() -> None:
    for options, cascade, restart in [(0, False, False), (1, True, False), (2, False, True)]:
        raw = b"T" + struct.pack(">IBI", 1, options, 99)
        assert decode(raw) == Truncate((99,), cascade, restart)
    assert decode(b"I" + struct.pack(">I", 5) + b"N" + tup()) == Insert(5, ())
    non_transactional = b"M" + struct.pack(">BQ", 0, 1) + cstr("") + struct.pack(">I", 0)
    assert decode(non_transactional) == LogicalMessage(False, 1, "", b"")


def test_unchanged_is_a_readable_singleton() -> None:
    assert repr(UNCHANGED) == "UNCHANGED"
    assert repr(Update(1, None, False, ("1", UNCHANGED))).endswith("new=('1', UNCHANGED))")
    assert pickle.loads(pickle.dumps(UNCHANGED)) is UNCHANGED
    assert copy.deepcopy(UNCHANGED) is UNCHANGED


HEAD = b"I" + struct.pack(">I", 1) + b"N"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "byte offset 0: it is empty"),
        (b"S\0\0\0\1", "byte offset 0: unknown type b'S'"),
        (b"I" + struct.pack(">I", 1) + b"N" + struct.pack(">H", 1) + b"b" + b"\0\0\0\1x", "'b'"),
        (b"I" + struct.pack(">I", 1) + b"N" + struct.pack(">H", 2) + b"nq", "offset 9: column 2"),
        (b"I" + struct.pack(">I", 1) + b"X" + tup("1"), "offset 5: tuple kind 'X'"),
        (b"D" + struct.pack(">I", 1) + b"N" + tup("1"), "offset 5: tuple kind 'N'"),
        (b"U" + struct.pack(">I", 1) + b"K" + tup("1") + b"K" + tup("1"), "offset 14: tuple kind"),
        (b"I" + struct.pack(">I", 1) + b"N" + tup("1", "x") + b"!!", "offset 20: 2 bytes follow"),
        (BEGIN + b"\0", f"offset {len(BEGIN)}: 1 bytes follow"),
        (BEGIN[:-1], f"Begin message at byte offset {len(BEGIN) - 1}: the message is truncated"),
        (HEAD + tup("1", "12.50")[:-1], "Insert message at byte offset 14: column 2's 5-byte"),
        (HEAD + tup("1", "ab?d").replace(b"?", b"\xff"), "offset 21: column 2's text is not"),
        (b"I" + struct.pack(">I", 1) + b"N" + struct.pack(">H", 3) + b"n", "within column 2 of 3"),
        (b"R" + RELATION[1:12] + b"items", "Relation message at byte offset 12: relation name"),
        (RELATION.replace(b"items\0d", b"items\0z"), "offset 18: unknown replica identity 'z'"),
        (TYPE.replace(b"mood", b"m\xffod"), "TypeInfo message at byte offset 13: type name is"),
        (b"T" + struct.pack(">IB", 0xFFFFFFFF, 0), "Truncate message at byte offset 6: the mes"),
        (MESSAGE[:-1], f"LogicalMessage message at byte offset {len(MESSAGE) - 1}: the mes"),
    ],
)
def test_malformed_input_names_the_fault_and_offset(raw: bytes, fragment: str) -> None:
    with pytest.raises(BackendError, match="pgoutput") as caught:
        decode(raw)
    assert fragment in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


@pytest.mark.parametrize("raw", VALID, ids=lambda raw: chr(raw[0]))
def test_every_truncation_of_a_valid_message_raises_backend_error(raw: bytes) -> None:
    for cut in range(len(raw)):
        with pytest.raises(BackendError) as caught:
            decode(raw[:cut])
        found = re.search(r"at byte offset (\d+)", str(caught.value))
        assert found and int(found[1]) <= cut  # the fault is placed within the bytes given


@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_backend_error(raw: bytes) -> None:
    _decode_or_backend_error(raw)


@given(st.sampled_from(b"BCRIUDTYOM"), st.binary(max_size=64))
def test_arbitrary_bodies_decode_or_raise_backend_error(kind: int, body: bytes) -> None:
    _decode_or_backend_error(bytes([kind]) + body)


@given(st.sampled_from(VALID), st.data())
def test_corrupted_messages_decode_or_raise_backend_error(raw: bytes, data: Any) -> None:
    at = data.draw(st.integers(0, len(raw) - 1))
    byte = data.draw(st.integers(0, 255))
    tail = data.draw(st.binary(max_size=4))
    _decode_or_backend_error(raw[:at] + bytes([byte]) + raw[at + 1 :] + tail)


def _decode_or_backend_error(raw: bytes) -> None:
    try:
        message = decode(raw)
    except BackendError as e:
        assert "byte offset" in str(e)
    else:
        assert type(message).__name__ in {type(m).__name__ for _, m in EXPECTED}


@pytest.mark.parametrize(
    ("lsn", "text"),
    [
        (0, "0/0"),
        (0x16B3748, "0/16B3748"),
        (0x1_0000_0000, "1/0"),
        (2**64 - 1, "FFFFFFFF/FFFFFFFF"),
    ],
)
def test_lsn_text_form(lsn: int, text: str) -> None:
    assert format_lsn(lsn) == text
    assert parse_lsn(text) == lsn
    assert parse_lsn(text.lower()) == lsn


@given(st.integers(0, 2**64 - 1))
def test_lsn_round_trip(lsn: int) -> None:
    assert parse_lsn(format_lsn(lsn)) == lsn


@pytest.mark.parametrize(
    "text",
    ["", "0", "/", "/1", "1/", "1/2/3", "0x1/2", " 1/2", "1/2 ", "+1/2", "-1/2", "1_0/2", "g/1",
     "123456789/0", "0/123456789", "\uff11/2"],
)  # fmt: skip
def test_parse_lsn_refuses_bad_text(text: str) -> None:
    with pytest.raises(ValueError, match="is not an LSN"):
        parse_lsn(text)


@pytest.mark.parametrize("lsn", [-1, 2**64])
def test_format_lsn_refuses_out_of_range(lsn: int) -> None:
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        format_lsn(lsn)


@pytest.fixture
def logical_pg_url(logical_postgres: LogicalPostgres) -> Iterator[str]:
    """A database of its own on the session's cluster with wal_level=logical; its slots
    (named alike in every test) are dropped after."""
    import psycopg

    url = logical_postgres.new_database()
    yield url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE database = current_database()"
        )


def _changes(conn: Any, slot: str, publication: str, *options: str) -> list[Message]:
    """Consumes the slot: each row's message, its lsn and xid checked against the message."""
    rows = conn.execute(
        "SELECT lsn::text, xid::text::bigint, data FROM pg_logical_slot_get_binary_changes("
        f"%s, NULL, NULL, 'proto_version', '1', 'publication_names', %s{', %s' * len(options)})",
        (slot, publication, *options),
    ).fetchall()
    messages = [decode(data) for _, _, data in rows]
    for (lsn, xid, _), message in zip(rows, messages, strict=True):
        if isinstance(message, Begin):
            assert message.xid == xid
        if isinstance(message, Commit):
            assert message.end_lsn == parse_lsn(lsn)
    return messages


def test_decodes_a_real_slot(logical_pg_url: str) -> None:
    import psycopg

    body = secrets.token_urlsafe(7_500)  # 10 kB of random text: stored out of line (TOAST)
    with psycopg.connect(logical_pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text, amount numeric(10, 2), "
            "note text, body text)"
        )
        conn.execute("CREATE PUBLICATION pub FOR TABLE items")
        conn.execute("SELECT pg_create_logical_replication_slot('s', 'pgoutput')")
        oid = conn.execute("SELECT 'items'::regclass::oid::bigint").fetchone()[0]
        before_us = time.time_ns() // 1000
        with conn.transaction():
            xid = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()[0]
            conn.execute("INSERT INTO items VALUES (1, 'ann', 12.5, NULL, %s)", (body,))
        with conn.transaction():
            conn.execute("UPDATE items SET amount = 13 WHERE id = 1")
            conn.execute("DELETE FROM items WHERE id = 1")
            conn.execute("TRUNCATE items RESTART IDENTITY")
        after_us = time.time_ns() // 1000

        messages = _changes(conn, "s", "pub")

    kinds = [type(m).__name__ for m in messages]
    assert kinds == [
        "Begin", "Relation", "Insert", "Commit",
        "Begin", "Update", "Delete", "Relation", "Truncate", "Commit",
    ]  # fmt: skip
    begin, relation, insert, commit, begin2, update, delete, again, truncate, commit2 = messages
    assert again == relation  # TRUNCATE gives the table a new file: its layout is sent again
    assert relation == Relation(
        oid,
        "public",
        "items",
        "d",
        (
            Column("id", 23, -1, key=True),
            Column("name", 25, -1, key=False),
            Column("amount", 1700, (10 << 16 | 2) + 4, key=False),
            Column("note", 25, -1, key=False),
            Column("body", 25, -1, key=False),
        ),
    )
    assert insert == Insert(oid, ("1", "ann", "12.50", None, body))
    assert update == Update(oid, None, False, ("1", "ann", "13.00", None, UNCHANGED))
    assert delete == Delete(oid, ("1", None, None, None, None), old_is_key_only=True)
    assert truncate == Truncate((oid,), cascade=False, restart_identity=True)
    assert isinstance(begin, Begin) and isinstance(commit, Commit)
    assert isinstance(begin2, Begin) and isinstance(commit2, Commit)
    assert begin.xid == xid and begin2.xid > xid
    for b, c in [(begin, commit), (begin2, commit2)]:
        assert b.final_lsn == c.commit_lsn < c.end_lsn
        assert b.commit_time_us == c.commit_time_us
        assert before_us - 1_000_000 <= c.commit_time_us <= after_us + 1_000_000
    assert commit.end_lsn <= begin2.final_lsn


def test_replica_identity_full_types_messages_and_origins(logical_pg_url: str) -> None:
    import psycopg

    with psycopg.connect(logical_pg_url, autocommit=True) as conn:
        conn.execute("CREATE TYPE mood AS ENUM ('ok', 'meh')")
        conn.execute("CREATE TABLE people (id int PRIMARY KEY, name text, mood mood)")
        conn.execute("ALTER TABLE people REPLICA IDENTITY FULL")
        conn.execute("CREATE PUBLICATION pub_full FOR TABLE people")
        conn.execute("SELECT pg_create_logical_replication_slot('s_full', 'pgoutput')")
        oid, mood = conn.execute(
            "SELECT 'people'::regclass::oid::bigint, 'mood'::regtype::oid::bigint"
        ).fetchone()
        conn.execute("INSERT INTO people VALUES (2, 'bo', 'ok')")
        with conn.transaction():
            conn.execute("UPDATE people SET mood = 'meh' WHERE id = 2")
            conn.execute("DELETE FROM people WHERE id = 2")
            conn.execute("SELECT pg_logical_emit_message(true, 'gm', 'in\\000tx'::bytea)")
        conn.execute("SELECT pg_logical_emit_message(false, 'gm', 'now')")
        # A change replayed from elsewhere carries its origin: name, and the LSN it had there.
        conn.execute("SELECT pg_replication_origin_create('upstream')")
        conn.execute("SELECT pg_replication_origin_session_setup('upstream')")
        with conn.transaction():
            conn.execute("SELECT pg_replication_origin_xact_setup('AB/CD', now())")
            conn.execute("INSERT INTO people VALUES (3, NULL, NULL)")
        conn.execute("SELECT pg_replication_origin_session_reset()")
        wal_lsn, wal_lsn_number = conn.execute(
            "SELECT pg_current_wal_lsn()::text, (pg_current_wal_lsn() - '0/0')::bigint"
        ).fetchone()

        messages = _changes(conn, "s_full", "pub_full", "messages", "true")

    assert parse_lsn(wal_lsn) == wal_lsn_number and format_lsn(wal_lsn_number) == wal_lsn
    kinds = [type(m).__name__ for m in messages]
    assert kinds == [
        "Begin", "TypeInfo", "Relation", "Insert", "Commit",
        "Begin", "Update", "Delete", "LogicalMessage", "Commit",
        "LogicalMessage",
        "Begin", "Origin", "Insert", "Commit",
    ]  # fmt: skip
    assert messages[1] == TypeInfo(mood, "public", "mood")
    relation = messages[2]
    assert isinstance(relation, Relation) and relation.replica_identity == "f"
    assert [c.key for c in relation.columns] == [True, True, True]  # FULL: every column
    assert relation.columns[2] == Column("mood", mood, -1, key=True)
    assert messages[6] == Update(oid, ("2", "bo", "ok"), False, ("2", "bo", "meh"))
    assert messages[7] == Delete(oid, ("2", "bo", "meh"), old_is_key_only=False)
    in_tx, outside = messages[8], messages[10]
    assert isinstance(in_tx, LogicalMessage) and isinstance(outside, LogicalMessage)
    assert (in_tx.transactional, in_tx.prefix, in_tx.content) == (True, "gm", b"in\0tx")
    assert (outside.transactional, outside.prefix, outside.content) == (False, "gm", b"now")
    assert messages[12] == Origin(parse_lsn("AB/CD"), "upstream")
    assert messages[13] == Insert(oid, ("3", None, None))

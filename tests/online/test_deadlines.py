"""Every call to an online store has a deadline ([online] timeout): a stalled or cut Redis
(behind a real TCP proxy in front of the real server) and a locked SQLite file fail the
call with OnlineStoreUnavailableError within the deadline and a small margin, never hang.
Errors that are not about reaching the store are a BackendError."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gristmill.config import OnlineConfig
from gristmill.errors import BackendError, OnlineStoreUnavailableError
from gristmill.online import open_online_store
from gristmill.online.base import OnlineStore
from tests.conftest import require_server

TIMEOUT = 0.3
MARGIN = 1.2
"""Past the deadline: scheduling on a busy machine, never a retry or a second wait."""


class Proxy:
    """TCP between the store and Redis that forwards, stalls (takes every byte and answers
    nothing, as a hung server does) or cuts (resets every connection, old and new)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "forward"
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.mode == "cut":
                _reset(client)
                continue
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
                if not data:
                    break
                if self.mode == "forward":
                    target.sendall(data)
            except OSError:
                break
        for end in (source, target):
            _reset(end)

    def cut(self) -> None:
        self.mode = "cut"
        with self.lock:
            for s in self.sockets:
                _reset(s)

    def close(self) -> None:
        self.listener.close()
        self.cut()


def _reset(s: socket.socket) -> None:
    """Close with a RST, as a crashed peer or a firewall does, not a polite FIN."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    except OSError:
        pass


def _bounded(call: Callable[[], Any]) -> tuple[BaseException | None, float]:
    """The error `call` raised and how long it took; the test fails, instead of hanging,
    if it has not returned well past the deadline."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    started = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(TIMEOUT + 10)
    assert outcome, f"the call was still waiting after {TIMEOUT + 10} s"
    return outcome[0], time.monotonic() - started


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    require_server("Redis", "127.0.0.1", 6379)
    opened = Proxy(("127.0.0.1", 6379))
    yield opened
    opened.close()


@pytest.fixture
def redis_store(proxy: Proxy, tmp_path: Path) -> Iterator[OnlineStore]:
    config = OnlineConfig(
        type="redis", url=proxy.url, prefix=f"t{uuid.uuid4().hex}", timeout=f"{TIMEOUT}s"
    )
    store = open_online_store(config, tmp_path)
    store.write("v", {"k": [(1, b"1")]}, {})
    yield store
    proxy.mode = "forward"
    # A connection a cut reset fails its next call (no retries): one the test left unused.
    with contextlib.suppress(OnlineStoreUnavailableError):
        store.ping()
    store.clear("v")
    store.close()


CALLS: dict[str, Callable[[OnlineStore], Any]] = {
    "read": lambda s: s.read("v", ["k", "other"]),
    # A server's read: Redis's asyncio client, on an event loop of its own.
    "read on an event loop": lambda s: asyncio.run(s.read_views_async([("v", ["k", "other"])])),
    "write": lambda s: s.write("v", {"k": [(2, b"2")]}, {}),
    "ping": lambda s: s.ping(),
    "meta": lambda s: s.get_meta("v", "watermark_us"),
}


@pytest.mark.parametrize("call", CALLS)
def test_a_stalled_redis_fails_the_call_within_the_deadline(
    redis_store: OnlineStore, proxy: Proxy, call: str
) -> None:
    proxy.mode = "stall"
    error, took = _bounded(lambda: CALLS[call](redis_store))
    assert isinstance(error, OnlineStoreUnavailableError), error
    assert TIMEOUT * 0.9 <= took <= TIMEOUT + MARGIN
    assert f"deadline: {TIMEOUT:g} s" in str(error) and f":{proxy.port}/0" in str(error)
    proxy.mode = "forward"
    assert redis_store.read("v", ["k"]) == [[b"1"]]  # and the store recovers


@pytest.mark.parametrize("call", CALLS)
def test_a_cut_redis_connection_fails_the_call_at_once(
    redis_store: OnlineStore, proxy: Proxy, call: str
) -> None:
    proxy.cut()
    error, took = _bounded(lambda: CALLS[call](redis_store))
    assert isinstance(error, OnlineStoreUnavailableError), error
    assert took <= TIMEOUT + MARGIN


def test_opening_a_stalled_redis_fails_within_the_deadline(proxy: Proxy, tmp_path: Path) -> None:
    proxy.mode = "stall"
    config = OnlineConfig(type="redis", url=proxy.url, timeout=f"{TIMEOUT}s")
    error, took = _bounded(lambda: open_online_store(config, tmp_path))
    assert isinstance(error, OnlineStoreUnavailableError), error
    assert "Cannot reach the Redis online store" in str(error)
    assert took <= TIMEOUT + MARGIN


def test_a_refused_connection_is_unavailable_and_names_no_password(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    config = OnlineConfig(type="redis", url=f"redis://user:s3cret@127.0.0.1:{port}/0")
    with pytest.raises(OnlineStoreUnavailableError, match=f"127.0.0.1:{port}") as raised:
        open_online_store(config, tmp_path)
    assert "s3cret" not in str(raised.value)


def test_a_command_redis_refuses_is_a_backend_error(tmp_path: Path) -> None:
    require_server("Redis", "127.0.0.1", 6379)
    prefix = f"t{uuid.uuid4().hex}"
    config = OnlineConfig(type="redis", url="redis://127.0.0.1:6379/0", prefix=prefix)
    store = open_online_store(config, tmp_path)
    try:
        store.set_meta("v", "version", "1")
        store.write("v", {"k": [(1, b"1")]}, {})
        import redis

        redis.Redis.from_url("redis://127.0.0.1:6379/0").set(f"{prefix}:v:e:k", "not a set")
        with pytest.raises(BackendError, match="WRONGTYPE") as raised:
            store.read("v", ["k"])
        assert not isinstance(raised.value, OnlineStoreUnavailableError)
    finally:
        store.clear("v")
        store.close()


@pytest.fixture
def sqlite_config(tmp_path: Path) -> OnlineConfig:
    return OnlineConfig(path=str(tmp_path / "online.sqlite"), timeout=f"{TIMEOUT}s")


def _lock(config: OnlineConfig, exclusive: bool = False) -> sqlite3.Connection:
    """Another process's connection that holds the file's write lock (exclusive: every
    lock, which it can only take while no other connection has the file open)."""
    other = sqlite3.connect(config.path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    if exclusive:
        other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("CREATE TABLE IF NOT EXISTS meta (view TEXT, name TEXT, value TEXT)")
    other.execute("BEGIN EXCLUSIVE" if exclusive else "BEGIN IMMEDIATE")
    other.execute("INSERT INTO meta VALUES ('v', 'lock', 'held')")
    return other


WRITES: dict[str, Callable[[OnlineStore], Any]] = {
    "write": CALLS["write"],
    "meta": lambda s: s.set_meta("v", "watermark_us", "7"),
    "clear": lambda s: s.clear("v"),
}


@pytest.mark.parametrize("call", WRITES)
def test_a_locked_sqlite_fails_the_call_within_the_deadline(
    sqlite_config: OnlineConfig, tmp_path: Path, call: str
) -> None:
    store = open_online_store(sqlite_config, tmp_path)
    store.write("v", {"k": [(1, b"1")]}, {})
    other = _lock(sqlite_config)
    try:
        error, took = _bounded(lambda: WRITES[call](store))
        assert store.read("v", ["k"]) == [[b"1"]]  # readers do not wait for the writer
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert isinstance(error, OnlineStoreUnavailableError), error
    assert TIMEOUT * 0.9 <= took <= TIMEOUT + MARGIN
    assert f"deadline: {TIMEOUT:g} s" in str(error) and "online.sqlite" in str(error)
    WRITES[call](store)  # nothing half-written kept the store from working again
    store.close()


def test_opening_a_locked_sqlite_fails_within_the_deadline(
    sqlite_config: OnlineConfig, tmp_path: Path
) -> None:
    other = _lock(sqlite_config, exclusive=True)
    try:
        error, took = _bounded(lambda: open_online_store(sqlite_config, tmp_path))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert isinstance(error, OnlineStoreUnavailableError), error
    assert took <= TIMEOUT + MARGIN


def test_a_sqlite_error_that_is_not_a_wait_is_a_backend_error(
    sqlite_config: OnlineConfig, tmp_path: Path
) -> None:
    store = open_online_store(sqlite_config, tmp_path)
    with sqlite3.connect(sqlite_config.path) as other:
        other.execute("DROP TABLE events")
    with pytest.raises(BackendError, match="no such table") as raised:
        store.read("v", ["k"])
    assert not isinstance(raised.value, OnlineStoreUnavailableError)
    store.close()

"""The server's processes: one listening socket, N supervised workers, deadlines per
connection.

The parent binds the port once (a second server on the same port fails instead of
sharing it) and hands the socket to each worker, which runs uvicorn on it. The parent
replaces a worker that dies and gives up when they keep dying; a worker ends when its
parent does, even when the parent is killed with SIGKILL. With several workers, their
Prometheus metrics are written to a folder they share, so /metrics answers the total.

A connection has `[serve] header_timeout` to send its request line and headers and
`[serve] body_timeout` to send its body: a client that trickles bytes is answered 408
and cut off, and cannot hold one of the `[serve] max_connections` for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from gristmill.durations import parse_duration
from gristmill.errors import ConfigError, GristmillError

if TYPE_CHECKING:
    import uvicorn

    from gristmill.config import ServeConfig

log = logging.getLogger(__name__)

FACTORY = "gristmill.serve.app:create_app_from_environment"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PREFIX = "gristmill-metrics-"
RESPAWN_WINDOW_SECONDS = 60.0
"""Workers dying more than max(5, 2 x workers) times within this long stop the server:
they die of something a new worker will not fix."""
PARENT_POLL_SECONDS = 0.5
BODY_GRACE_SECONDS = 0.5
"""The connection's body deadline comes this long after [serve] body_timeout, so that
the app's own (a 408 it answers and counts) normally fires first; the connection's cuts
off a client still trickling a body the app did not read (after a 401, say)."""
_PR_SET_PDEATHSIG = 1


def bind(host: str, port: int, workers: int) -> list[socket.socket]:
    """The server's listening sockets, one per worker. The kernel spreads connections over
    them (SO_REUSEPORT); a socket shared by every worker would leave most connections to
    whichever worker accepts first (asyncio accepts up to 100 at a wakeup). Another server
    on the port is refused first: a probe bound without SO_REUSEPORT fails while anything
    listens there, a server of ours included. Made with IPPROTO_TCP, so that asyncio sets
    TCP_NODELAY on its connections (without it each response waits for a delayed ACK)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise ConfigError(f"Cannot listen on {host}: {exc}. Pass --host ADDRESS.") from None
    _listening(family, host, port, share=False).close()
    if workers == 1:
        return [_listening(family, host, port, share=False)]
    first = _listening(family, host, port, share=True)
    port = first.getsockname()[1]  # the port the kernel chose, for --port 0
    return [first, *(_listening(family, host, port, share=True) for _ in range(workers - 1))]


def _listening(family: int, host: str, port: int, share: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    # Only lets a restarted server bind while the old one's connections are in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if share:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"Port {port} on {host} is in use: stop the process listening there, "
                "or pass --port with a free port."
            ) from None
        raise ConfigError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(sockets: list[socket.socket], config: ServeConfig) -> None:
    """Serve until SIGINT or SIGTERM: in this process on one socket, else with a
    supervised worker process on each."""
    if len(sockets) == 1:
        _run_uvicorn(sockets[0], config)
        return
    code = Supervisor(sockets, _grace_seconds(config)).run()
    if code:
        raise GristmillError(
            f"The server's workers died {Supervisor.limit(len(sockets))} times within "
            f"{RESPAWN_WINDOW_SECONDS:.0f} s; see the errors above. Serving stopped."
        )


def _grace_seconds(config: ServeConfig) -> int:
    """How long a stop waits for requests in flight, which their deadlines bound."""
    deadlines = (config.header_timeout, config.body_timeout, config.request_timeout)
    return max(1, round(sum(parse_duration(d).total_seconds() for d in deadlines)))


def uvicorn_config(config: ServeConfig) -> uvicorn.Config:
    import uvicorn

    header = parse_duration(config.header_timeout).total_seconds()
    body = parse_duration(config.body_timeout).total_seconds()
    return uvicorn.Config(
        FACTORY,
        factory=True,
        http=deadline_protocol(header, body),
        limit_concurrency=config.max_connections,
        ws="none",  # no WebSocket routes: an upgrade request is plain HTTP
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=_grace_seconds(config),
    )


def _run_uvicorn(sock: socket.socket, config: ServeConfig) -> None:
    import uvicorn

    uvicorn.Server(uvicorn_config(config)).run(sockets=[sock])


def deadline_protocol(header_seconds: float, body_seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with a deadline for each request's headers and one
    for its body: past either the client is answered 408 and the connection closed."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class DeadlineProtocol(HttpToolsProtocol):
        deadline: asyncio.TimerHandle | None = None

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self.deadline = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(header_seconds)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            # The next request on a kept-alive connection: its headers start now.
            self._arm(header_seconds)

        def on_headers_complete(self) -> None:
            self._arm(body_seconds + BODY_GRACE_SECONDS)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def _expired(self) -> None:
            self.deadline = None
            if self.transport.is_closing():
                return
            cycle = self.cycle
            answered = cycle is not None and cycle.scope is self.scope and cycle.response_started
            if not answered:
                if cycle is not None and cycle.scope is self.scope:
                    # The app waiting for the rest of the body hears the client left.
                    cycle.disconnected = True
                    cycle.message_event.set()
                self.transport.write(_TIMED_OUT)
            self.transport.close()

    return DeadlineProtocol


_TIMED_OUT_BODY = b"The request was not received in time."
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TIMED_OUT_BODY), _TIMED_OUT_BODY)
)


class Supervisor:
    """Runs a worker process on each socket: replaces each that dies (on the same
    socket), stops them all on SIGINT or SIGTERM."""

    def __init__(self, sockets: list[socket.socket], grace_seconds: float = 30) -> None:
        self.sockets = sockets
        self.workers = len(sockets)
        self.grace_seconds = grace_seconds
        self.children: list[subprocess.Popen[bytes]] = []
        self.deaths: deque[float] = deque()
        self.stopping = threading.Event()

    @staticmethod
    def limit(workers: int) -> int:
        return max(5, 2 * workers)

    def run(self) -> int:
        """0 once stopped by a signal, 1 when the workers kept dying."""
        _remove_orphaned_metrics()
        metrics = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")
        env = {**os.environ, MULTIPROC_ENV: metrics}
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.children = [self._spawn(sock, env) for sock in self.sockets]
            return self._watch(env)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self._stop_children()
            shutil.rmtree(metrics, ignore_errors=True)

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping.set()

    def _spawn(self, sock: socket.socket, env: dict[str, str]) -> subprocess.Popen[bytes]:
        fd = sock.fileno()
        command = [sys.executable, "-m", "gristmill.serve.process", str(fd), str(os.getpid())]
        return subprocess.Popen(command, env=env, pass_fds=(fd,))

    def _watch(self, env: dict[str, str]) -> int:
        while not self.stopping.wait(0.2):
            for i, child in enumerate(self.children):
                code = child.poll()
                if code is None or self.stopping.is_set():
                    continue
                now = time.monotonic()
                self.deaths.append(now)
                while self.deaths and self.deaths[0] < now - RESPAWN_WINDOW_SECONDS:
                    self.deaths.popleft()
                if len(self.deaths) >= self.limit(self.workers):
                    log.error("worker %d exited (%s); giving up", child.pid, code)
                    return 1
                log.warning("worker %d exited (%s); starting another", child.pid, code)
                self.children[i] = self._spawn(self.sockets[i], env)
        return 0

    def _stop_children(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        # A little longer than the workers' own graceful stop, which ends them first.
        deadline = time.monotonic() + self.grace_seconds + 5
        for child in self.children:
            try:
                child.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _remove_orphaned_metrics() -> None:
    """Remove the metrics folders of servers that were killed before they could."""
    for folder in Path(tempfile.gettempdir()).glob(f"{METRICS_PREFIX}*-*"):
        pid = folder.name.removeprefix(METRICS_PREFIX).partition("-")[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def _die_with_parent(parent: int) -> None:
    """End this worker when its parent ends: the kernel sends SIGTERM when the parent
    dies (Linux), and a thread watching the parent's pid covers other systems."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(PARENT_POLL_SECONDS)

    # Also covers a parent that died before prctl took effect.
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker(argv: list[str]) -> None:
    fd, parent = int(argv[0]), int(argv[1])
    _die_with_parent(parent)
    from gristmill.project import Project

    config = Project.load(Path(os.environ.get("GRISTMILL_PROJECT", "."))).config.serve
    _run_uvicorn(socket.socket(fileno=fd), config)


if __name__ == "__main__":
    _worker(sys.argv[1:])

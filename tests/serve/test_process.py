"""`gristmill serve` as processes: one port per server, supervised workers that end with
their parent, deadlines on slow clients, a connection limit, metrics summed over workers,
and an API key that resolves to nothing refusing to start. Real servers on free ports."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.serve import process
from tests.helpers import free_port
from tests.serve.test_app import TRANSACTION

GRISTMILL = (sys.executable, "-m", "gristmill")
KEY_VARIABLE = "GM_PROCESS_TEST_KEY"
KEY = "k3y-for-process-tests"
SERVE = f"""
[serve]
api_keys = ["${{{KEY_VARIABLE}}}"]
header_timeout = "1s"
body_timeout = "2s"
max_connections = 6
"""
PREDICTS = re.compile(
    r'^gristmill_requests_total\{[^}]*route="predict"[^}]*status="200"[^}]*\} (\S+)$'
)


@pytest.fixture(scope="module")
def project(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("process") / "demo"
    shutil.copytree(built, root)
    with (root / "gristmill.toml").open("a", encoding="utf-8") as toml:
        toml.write(SERVE)
    return root


class Server:
    """`gristmill serve` in a subprocess, stopped (and its workers checked gone) at exit."""

    def __init__(self, root: Path, workers: int, **env: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                *GRISTMILL,
                "serve",
                "-p",
                str(root),
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env={**os.environ, KEY_VARIABLE: KEY, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def __enter__(self) -> Server:
        until(lambda: self.process.poll() is not None or get(self.port, "/healthz")[0] == 200)
        assert self.process.poll() is None, self.process.communicate()
        return self

    def __exit__(self, *exc: object) -> None:
        workers = self.workers()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=30)
        assert not [pid for pid in workers if alive(pid)]

    def workers(self) -> list[int]:
        return children(self.process.pid)


def until(condition: object, seconds: float = 30) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def get(port: int, path: str, body: dict[str, object] | None = None) -> tuple[int, str]:
    """Status and text of one request, on a connection of its own."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-API-Key": KEY, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def predict(port: int) -> int:
    return get(port, "/v1/models/fraud/predict", TRANSACTION)[0]


def predicted(port: int) -> float:
    """The 200s to predict requests that /metrics counts."""
    text = get(port, "/metrics")[1]
    return sum(float(m.group(1)) for m in map(PREDICTS.match, text.splitlines()) if m)


def children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] not in "ZX":
            found.append(int(stat.parent.name))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in "ZX"


def serve_once(root: Path, port: int, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GRISTMILL, "serve", "-p", str(root), "--port", str(port)],
        env={**os.environ, KEY_VARIABLE: KEY, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def pair(project: Path) -> Iterator[Server]:
    with Server(project, workers=2) as server:
        yield server


def test_a_second_server_on_the_port_fails(pair: Server, project: Path) -> None:
    second = serve_once(project, pair.port)
    assert second.returncode == 2
    assert f"Port {pair.port} on 127.0.0.1 is in use" in second.stderr
    assert predict(pair.port) == 200


def test_metrics_count_every_worker(pair: Server) -> None:
    before = predicted(pair.port)
    for _ in range(40):  # each on a connection of its own, to whichever worker accepts it
        assert predict(pair.port) == 200
    # Whichever worker answers /metrics reports the sum over both.
    assert {predicted(pair.port) for _ in range(8)} == {before + 40}


def test_a_killed_worker_is_replaced(pair: Server) -> None:
    first = pair.workers()
    assert len(first) == 2
    os.kill(first[0], signal.SIGKILL)

    # A new process took its place (pids are not handed out in order: no position says
    # which). One listing per check: two listings could straddle a process starting.
    def replaced() -> bool:
        now = set(pair.workers())
        return len(now) == 2 and first[0] not in now and len(now - set(first)) == 1

    until(replaced)
    until(lambda: predict(pair.port) == 200)
    assert all(predict(pair.port) == 200 for _ in range(10))


def test_killing_the_parent_takes_its_workers_down(project: Path) -> None:
    server = Server(project, workers=2).__enter__()
    workers = server.workers()
    try:
        assert len(workers) == 2
        environ = Path(f"/proc/{workers[0]}/environ").read_bytes().split(b"\0")
        metrics = Path(
            next(v for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR="))
            .decode()
            .partition("=")[2]
        )
        server.process.kill()
        server.process.communicate()
        until(lambda: not any(alive(pid) for pid in workers), seconds=5)
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    # The killed parent left its metrics behind; the next server removes them.
    assert metrics.is_dir()
    process._remove_orphaned_metrics()
    assert not metrics.exists()


def test_slow_clients_are_cut_off_and_free_their_connection(project: Path) -> None:
    with Server(project, workers=1) as server:
        head = (
            b"POST /v1/models/fraud/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 80\r\n"
            b"X-API-Key: " + KEY.encode() + b"\r\n\r\n"
        )
        # Headers at 1 byte/s: a 408 once header_timeout (1s) has passed.
        elapsed, answer = trickle(server.port, b"", head)
        assert answer.startswith(b"HTTP/1.1 408") and 0.9 < elapsed < 3

        # The body at 1 byte/s after prompt headers: a 408 once body_timeout (2s) has passed.
        elapsed, answer = trickle(server.port, head, json.dumps(TRANSACTION).encode())
        assert answer.startswith(b"HTTP/1.1 408") and 1.9 < elapsed < 4

        # A body the app never reads (no key: 401 at once) cannot be trickled forever.
        keyless = head.replace(b"X-API-Key: " + KEY.encode(), b"X-Other: 1")
        elapsed, answer = trickle(server.port, keyless, json.dumps(TRANSACTION).encode())
        assert answer.startswith(b"HTTP/1.1 401") and 1.9 < elapsed < 4

        # max_connections (6): idle connections fill it, then the deadline frees it.
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(6)]
        assert predict(server.port) == 503
        for sock in idle:
            sock.settimeout(5)
            assert sock.recv(100).startswith(b"HTTP/1.1 408")
            sock.close()
        assert predict(server.port) == 200


def trickle(port: int, promptly: bytes, slowly: bytes) -> tuple[float, bytes]:
    """Send `promptly` at once and then `slowly` at 1 byte/s: the seconds until the server
    closed the connection, and all it answered."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(promptly)
        started, received = time.monotonic(), b""
        sock.settimeout(1.0)
        for byte in slowly:
            try:
                sock.sendall(bytes([byte]))
                chunk = sock.recv(1000)
            except TimeoutError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                return time.monotonic() - started, received
            received += chunk
    raise AssertionError(f"the server waited for the whole trickle; it answered {received!r}")


def test_an_api_key_that_resolves_to_nothing_refuses_to_start(project: Path) -> None:
    port = free_port()
    refused = serve_once(project, port, **{KEY_VARIABLE: ""})
    assert refused.returncode == 2
    assert f"${{{KEY_VARIABLE}}}" in refused.stderr and "empty" in refused.stderr
    assert get(port, "/healthz")[0] == 0  # nothing listens


def test_commands_that_do_not_serve_need_no_serve_variables(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != KEY_VARIABLE}
    result = subprocess.run(
        [*GRISTMILL, "features", "get", "user_velocity", "user_id=7", "--json", "-p", str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "tx_count_24h" in result.stdout


def test_workers_that_keep_dying_stop_the_server() -> None:
    class Doomed(process.Supervisor):
        spawned = 0

        def _spawn(self, sock: socket.socket, env: dict[str, str]) -> subprocess.Popen[bytes]:
            self.spawned += 1
            return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"], env=env)

    with socket.socket() as one, socket.socket() as two:
        supervisor = Doomed([one, two])
        assert supervisor.run() == 1
    # Replaced until max(5, 2 x 2) deaths, each within the minute.
    assert supervisor.spawned == 2 + 4 and len(supervisor.deaths) == 5

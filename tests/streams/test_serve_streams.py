"""`gristmill serve --with-streams`: the server's process follows the streams too (once,
whatever the workers), and stops them cleanly with itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gristmill.features.api import materialize
from gristmill.project import Project
from tests.helpers import free_port, write_project
from tests.streams.test_brokers import RedisProducer, event, online, project, warehouse


def serve(root: Path, port: int, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gristmill",
            "serve",
            "--port",
            str(port),
            "-p",
            str(root),
            *options,
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TZ": "America/St_Johns"},
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_the_server_follows_the_streams(tmp_path: Path, workers: int) -> None:
    import httpx2 as httpx

    producer = RedisProducer()
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        root = project(tmp_path, producer)
        port = free_port()
        server = serve(root, port, "--with-streams", "--workers", str(workers))
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            producer.add_many([event(i, now) for i in range(500)])
            while time.monotonic() < deadline and not (
                warehouse(root, "SELECT count(*) FROM raw.payment_events") == [(500,)]
                and producer.settled()
            ):
                time.sleep(0.1)
            assert warehouse(root, "SELECT count(*) FROM raw.payment_events") == [(500,)]
            # One follower, whatever the workers: one consumer of the group.
            consumers = producer.client.xinfo_consumers(producer.stream, "gristmill")
            assert len(consumers) == 1
        finally:
            server.send_signal(signal.SIGTERM)
            _, errors = server.communicate(timeout=60)
        assert server.returncode == 0, errors
        users = list(range(17))
        at = now + timedelta(seconds=1)
        streamed = online(root, users, at)
        with Project.load(root) as p:
            materialize(p, ["spender"], full=True)
            runs = p.catalog.runs(5)
        assert streamed == online(root, users, at)
        # Stopped cleanly: the run history holds the stream's run, finished and ok.
        assert [(r["command"], r["status"]) for r in runs][:1] == [("stream", "ok")], runs
    finally:
        producer.close()


def test_nothing_to_follow_refuses_to_start(tmp_path: Path) -> None:
    root = write_project(tmp_path, {})
    server = serve(root, free_port(), "--with-streams")
    _, errors = server.communicate(timeout=60)
    assert server.returncode != 0
    assert "[streams" in errors and "Traceback" not in errors, errors

"""Sources opened ahead on a thread: what happens when one of them does not answer."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill import config as gristmill_config
from tests.helpers import run_ingest, write_project


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word, as a host behind a
    firewall that drops the handshake would."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_source_that_does_not_answer_fails_alone_within_the_connect_timeout(
    project_dir: Path, silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("adbc_driver_postgresql")
    monkeypatch.setattr(gristmill_config, "CONNECT_TIMEOUT_SECONDS", 2)
    write_project(
        project_dir,
        {
            "first": {"type": "sqlite", "path": "missing.sqlite", "tables": {"t": {}}},
            "second": {
                "type": "postgres",
                "url": f"postgresql://postgres@127.0.0.1:{silent_server}/test",
                "tables": {"t": {}},
            },
        },
    )
    started = time.perf_counter()

    first, second = run_ingest(project_dir).tables

    assert time.perf_counter() - started < 10
    assert first.status == second.status == "failed"
    assert "no SQLite database" in (first.error or "")
    assert f"127.0.0.1:{silent_server}" in (second.error or "")

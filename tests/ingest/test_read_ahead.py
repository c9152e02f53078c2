"""Sources opened ahead on a thread: what happens when one of them does not answer."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.errors import ConnectionFailedError
from tests.helpers import run_ingest, write_project


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word, as a host behind a
    firewall that drops the handshake would."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_source_that_does_not_answer_does_not_hold_up_an_earlier_error(
    project_dir: Path, silent_server: int
) -> None:
    pytest.importorskip("adbc_driver_postgresql")
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

    with pytest.raises(ConnectionFailedError, match="no SQLite database"):
        run_ingest(project_dir)

    assert time.perf_counter() - started < 10

"""Real processes registering and promoting at once, and a writer killed mid-version."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gristmill.registry import open_registry

WORKERS = 4
VERSIONS_EACH = 5
PROMOTIONS_EACH = 15
_start: Any = None
"""In each worker: the event all workers wait for, so that they really run at once."""


def _set_start(event: Any) -> None:
    global _start
    _start = event


def _register_versions(root: str, worker: int) -> int:
    registry = open_registry(Path(root))
    _start.wait()
    for index in range(VERSIONS_EACH):
        payload = f"{worker}:{index}:".encode() * 2000
        registry.register("churn", {"model.bin": payload}, {"worker": worker, "index": index})
    return VERSIONS_EACH


def _promote_versions(root: str, worker: int) -> int:
    registry = open_registry(Path(root))
    _start.wait()
    moved = 0
    for index in range(PROMOTIONS_EACH):
        move = registry.promote("churn", 1 + (worker + index) % 4)
        moved += move.previous != move.version
    return moved


def _run_workers(target: Callable[[str, int], int], root: Path) -> list[int]:
    # spawn, not fork: each worker is a fresh interpreter, like two `gristmill` commands.
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    with context.Pool(WORKERS, initializer=_set_start, initargs=(start,)) as pool:
        results = [pool.apply_async(target, (str(root), w)) for w in range(WORKERS)]
        time.sleep(0.5)  # let every worker import and reach the start line
        start.set()
        return [result.get(timeout=60) for result in results]


def test_concurrent_registrations_get_distinct_whole_versions(tmp_path: Path) -> None:
    _run_workers(_register_versions, tmp_path)
    registry = open_registry(tmp_path)
    versions = registry.list_versions("churn")
    assert [v.version for v in versions] == list(range(1, WORKERS * VERSIONS_EACH + 1))
    seen = set()
    for version in versions:
        worker, index = version.metadata["worker"], version.metadata["index"]
        payload = registry.read_artifact("churn", version.version, "model.bin")
        assert payload == f"{worker}:{index}:".encode() * 2000
        seen.add((worker, index))
    assert len(seen) == WORKERS * VERSIONS_EACH
    assert not list((tmp_path / ".gristmill/registry/churn/versions").glob(".draft-*"))


def test_concurrent_promotions_lose_no_move(tmp_path: Path) -> None:
    registry = open_registry(tmp_path)
    for number in range(4):
        registry.register("churn", {"m": str(number).encode()}, {})
    moved = sum(_run_workers(_promote_versions, tmp_path))
    history = registry.alias_history("churn", "champion")
    assert len(history) == moved > 0
    for before, after in itertools.pairwise(history):
        assert after.previous == before.version
    assert registry.aliases("churn") == {"champion": history[-1].version}


KILLED_WRITER = """
import sys
from pathlib import Path
from gristmill.registry import open_registry

registry = open_registry(Path(sys.argv[1]))
payload = bytes(range(256)) * 16384  # 4 MB
for index in range(10_000):
    registry.register("churn", {"model.bin": payload}, {"index": index})
    if index == 1:
        print("registering", flush=True)
"""


def test_a_writer_killed_mid_registration_leaves_only_whole_versions(tmp_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline() == "registering\n"
    time.sleep(0.3)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdout.close()

    registry = open_registry(tmp_path)
    numbers = [v.version for v in registry.list_versions("churn")]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 2
    for number in numbers:
        assert len(registry.read_artifact("churn", number, "model.bin")) == 4 * 1024 * 1024
    assert registry.register("churn", {"model.bin": b"after"}, {}).version == len(numbers) + 1
    versions_dir = tmp_path / ".gristmill/registry/churn/versions"
    assert not list(versions_dir.glob(".draft-*"))


STALLED_WRITER = """
import sys, time
from collections.abc import Mapping
from pathlib import Path
from gristmill.registry import open_registry

class Stalling(Mapping):
    # Yields one artifact, then hangs while the draft is half written.
    def __getitem__(self, key): return b"first"
    def __len__(self): return 2
    def __iter__(self):
        yield "first.bin"
        print("half written", flush=True)
        time.sleep(60)
        yield "second.bin"

open_registry(Path(sys.argv[1])).storage.publish_version("churn", Stalling(), lambda n: b"{}")
"""


def test_a_killed_writers_draft_is_invisible_then_removed(tmp_path: Path) -> None:
    registry = open_registry(tmp_path)
    registry.register("churn", {"m": b"1"}, {})
    writer = subprocess.Popen(
        [sys.executable, "-c", STALLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline() == "half written\n"
    versions_dir = tmp_path / ".gristmill/registry/churn/versions"
    # While the writer lives, its draft is kept; registering meanwhile works.
    assert registry.register("churn", {"m": b"2"}, {}).version == 2
    assert len(list(versions_dir.glob(".draft-*.lock"))) == 1
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdout.close()

    assert [v.version for v in registry.list_versions("churn")] == [1, 2]
    assert registry.register("churn", {"m": b"3"}, {}).version == 3
    assert sorted(p.name for p in versions_dir.iterdir()) == ["1", "2", "3"]
    assert json.loads((versions_dir / "3" / "metadata.json").read_text())["version"] == 3

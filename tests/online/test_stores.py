"""One conformance suite for every online store: the same tests over SQLite and Redis."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from gristmill.config import OnlineConfig
from gristmill.errors import ConnectionFailedError
from gristmill.online import open_online_store
from gristmill.online.base import OnlineStore


def test_events_come_back_oldest_first_per_key(store: OnlineStore) -> None:
    store.write("v", {"[1]": [(30, b'"c"'), (10, b'"a"')], '["x y"]': [(5, b'"z"')]}, {})
    store.write("v", {"[1]": [(20, b'"b"')]}, {})
    assert store.read("v", ["[1]"]) == [[b'"a"', b'"b"', b'"c"']]
    assert store.read("v", ['["x y"]', "[2]", "[1]"]) == [
        [b'"z"'],
        [],
        [b'"a"', b'"b"', b'"c"'],
    ]


def test_forgetting_and_replacing(store: OnlineStore) -> None:
    store.write("v", {"k": [(t, str(t).encode()) for t in (1, 2, 3, 4)]}, {})
    store.write("v", {"k": [(5, b"5")]}, {"k": 3})
    assert store.read("v", ["k"]) == [[b"3", b"4", b"5"]]
    store.write("v", {"k": [(9, b"9")], "other": [(1, b"1")]}, {}, replace=True)
    assert store.read("v", ["k", "other"]) == [[b"9"], [b"1"]]


def test_several_views_read_at_once(store: OnlineStore) -> None:
    store.write("v", {"a": [(1, b"1"), (3, b"3")], "b": [(2, b"2")]}, {})
    store.write("w", {"a": [(4, b"4")]}, {})
    assert store.read_views([("v", ["b", "a"]), ("w", ["a", "zz"]), ("v", [])]) == [
        [[b"2"], [b"1", b"3"]],
        [[b"4"], []],
        [],
    ]


def test_views_are_apart_and_clear_forgets_one(store: OnlineStore) -> None:
    store.write("v", {"k": [(1, b"1")]}, {})
    store.write("w", {"k": [(2, b"2")]}, {})
    store.set_meta("v", "watermark_us", "7")
    store.clear("v")
    assert store.read("v", ["k"]) == [[]] and store.get_meta("v", "watermark_us") is None
    assert store.read("w", ["k"]) == [[b"2"]]


def test_an_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    config = OnlineConfig(type="redis", url="redis://127.0.0.1:1/0")
    with pytest.raises(ConnectionFailedError, match="Cannot reach the Redis online store"):
        open_online_store(config, tmp_path)


WRITER = """
import sys
from pathlib import Path
from gristmill.config import OnlineConfig
from gristmill.online import open_online_store

store = open_online_store(OnlineConfig.model_validate_json(sys.argv[1]), Path(sys.argv[2]))
batch = 0
while True:
    events = {f"k{i}": [(batch, f"{batch}:{i}".encode())] for i in range(200)}
    store.write("v", events, {})
    batch += 1
    if batch == 3:
        print("writing", flush=True)
"""


def test_a_writer_killed_mid_write_leaves_whole_batches(
    store: OnlineStore, config: OnlineConfig, tmp_path: Path
) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, config.model_dump_json(), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None and writer.stdout.readline() == "writing\n"
    time.sleep(0.3)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    events = store.read("v", [f"k{i}" for i in range(200)])
    batches = Counter(e.split(b":")[0] for key_events in events for e in key_events)
    assert len(batches) >= 3 and set(batches.values()) == {200}

"""A batch read is N single reads, whatever N (around any chunk size a store might use)
and however often a key repeats: over every store, and through OnlineReader, the path a
batch of predictions takes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill.config import ProjectConfig
from gristmill.features import FeatureView, aggregate, expression
from gristmill.features.api import OnlineReader, Pusher
from gristmill.features.discover import Definitions
from gristmill.features.events import TYPES_META, encode_types
from gristmill.online.base import Events, OnlineStore
from tests.helpers import ForwardingStore


def _hostile_key(i: int) -> str:
    """Keys that look like JSON, globs, quotes, other scripts and separators."""
    return [f"[{i}]", f'["{i}"]', f"k*{i}[a]?", f'é {i} "\\\u2028', f"{i}:e:{i}", f"😀{i}"][i % 6]


def _fill(store: OnlineStore, keys: Sequence[str], rng: random.Random) -> dict[str, list[bytes]]:
    """0 to 3 events per key, some of them at the same time (ties: in the order of their
    bytes), written out of order; returns each key's events as a read must give them."""
    events: dict[str, Events] = {}
    for i, key in enumerate(keys):
        times = [rng.randrange(5) for _ in range(i % 4)]
        events[key] = [(t, f"{key}|{rng.randrange(100)}|{j}".encode()) for j, t in enumerate(times)]
    store.write("v", events, {})
    return {key: [e for _, e in sorted(evs)] for key, evs in events.items()}


@pytest.mark.parametrize("n", [1, 499, 500, 501, 5000])
def test_a_batch_of_n_keys_is_n_single_reads(store: OnlineStore, n: int) -> None:
    rng = random.Random(n)
    expected = _fill(store, [_hostile_key(i) for i in range(n)], rng)
    distinct = [*expected, "never-written"]
    # Repeats on both sides of every multiple of 500, and the batch in any order.
    batch = [*distinct, *rng.choices(distinct, k=max(2, n // 3)), distinct[0]]
    rng.shuffle(batch)
    singles = [store.read("v", [key])[0] for key in batch]
    assert singles == [expected.get(key, []) for key in batch]
    assert store.read("v", batch) == singles
    lookups = [("v", batch), ("w", batch[:3])]
    assert store.read_views(lookups) == [singles, [[], [], []]]
    # A server's read, awaited on its event loop, answers the same.
    assert asyncio.run(store.read_views_async(lookups)) == [singles, [[], [], []]]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    keys=st.lists(
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
        min_size=1,
        max_size=30,
    ),
    seed=st.integers(0, 2**16),
)
def test_any_keys_read_in_a_batch_as_one_by_one(
    store: OnlineStore, keys: list[str], seed: int
) -> None:
    rng = random.Random(seed)
    expected = _fill(store, list(dict.fromkeys(keys)), rng)
    batch = keys + rng.choices(keys, k=len(keys))
    singles = [store.read("v", [key])[0] for key in batch]
    assert store.read("v", batch) == singles == [expected[key] for key in batch]
    store.clear("v")


VIEW = FeatureView(
    name="v",
    entity=["user_id"],
    timestamp="happened",
    source="payments",
    features=[
        aggregate("paid", "sum", "amount", windows=["1h", "1d"]),
        aggregate("payments", "count", windows=["1d"]),
        expression("last_amount", "amount"),
    ],
)
PAYMENTS = pa.schema(
    [("user_id", pa.int64()), ("amount", pa.int64()), ("happened", pa.timestamp("us"))]
)


class Counting(ForwardingStore):
    """A store that remembers the keys each read asked for."""

    def __init__(self, inner: OnlineStore) -> None:
        super().__init__(inner)
        self.asked: list[list[str]] = []

    def read(self, view: str, keys: Sequence[str]) -> list[list[bytes]]:
        self.asked.append(list(keys))
        return self.inner.read(view, keys)

    def read_views(self, lookups: Sequence[tuple[str, Sequence[str]]]) -> list[list[list[bytes]]]:
        self.asked += [list(keys) for _, keys in lookups]
        return self.inner.read_views(lookups)


def test_a_batch_of_entities_reads_each_once_and_equals_single_reads(store: OnlineStore) -> None:
    counting = Counting(store)
    project: Any = SimpleNamespace(online=counting, config=ProjectConfig())
    # The source's column types, as materialize leaves them for pushes to be checked by.
    store.set_meta("v", TYPES_META, encode_types(PAYMENTS))
    store.set_meta("v", "version", VIEW.version)
    definitions = Definitions(views={"v": VIEW})
    now = datetime.now(UTC).replace(tzinfo=None)
    rng = random.Random(17)
    users = list(range(1, 801))
    events = [
        {"user_id": u, "amount": rng.randint(1, 500), "happened": now - timedelta(minutes=m)}
        for u in users
        for m in rng.sample(range(1, 1500), u % 5)
    ]
    pusher = Pusher(project, definitions)
    pusher.push("v", events)
    pusher.close()
    batch = [{"user_id": u} for u in [*users, *rng.choices(users, k=400), 10**6]]
    rng.shuffle(batch)
    reader = OnlineReader(project, definitions)
    features = ["v.paid_1h", "v.paid_1d", "v.payments_1d", "v.last_amount"]
    counting.asked.clear()
    found = reader.read(features, batch, at=now)
    [asked] = counting.asked
    assert sorted(asked) == sorted({f"[{e['user_id']}]" for e in batch})
    singles = [reader.read(features, [entity], at=now)[0] for entity in batch]
    assert [(f.values, f.age_seconds) for f in found] == [
        (s.values, s.age_seconds) for s in singles
    ]
    assert {f.values["payments_1d"] for f in found} == {0, 1, 2, 3, 4}
    awaited = asyncio.run(reader.read_async(features, batch, at=now))
    assert [(f.values, f.age_seconds) for f in awaited] == [
        (f.values, f.age_seconds) for f in found
    ]


def test_sqlite_refuses_a_key_it_would_read_as_another(tmp_path: Any) -> None:
    from gristmill.config import OnlineConfig
    from gristmill.errors import BackendError
    from gristmill.online.sqlite import SQLiteOnlineStore

    store = SQLiteOnlineStore(OnlineConfig(path=str(tmp_path / "o.sqlite")), tmp_path)
    store.write("v", {"a": [(1, b"1")]}, {})
    with pytest.raises(BackendError, match="NUL"):
        store.read("v", ["a\x00b"])
    with pytest.raises(BackendError, match="NUL"):
        store.write("v", {"a\x00b": [(1, b"2")]}, {})
    assert store.read("v", ["a"]) == [[b"1"]]
    store.close()

"""`features verify` replays the events through a scratch store of the project's own kind,
out of order, reads entities with no events too, and leaves rows dated beyond the
serving clock out of both paths."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gristmill.features import api
from gristmill.features.api import get_online_features, materialize, verify
from gristmill.project import Project
from tests.features._helpers import VIEW, now, payments_project, redis_keys

TTL_VIEW = VIEW.replace('source="raw.payments",', 'source="raw.payments",\n    ttl="2d",')


def rows(start: datetime, count: int = 400) -> list[tuple[Any, ...]]:
    """Payments of eight users over the last twenty days, some in bursts at one moment,
    and two rows dated beyond the serving clock."""
    rng = random.Random(11)
    made: list[tuple[Any, ...]] = []
    for _ in range(count):
        moment = start - timedelta(seconds=rng.randrange(1, 20 * 86400))
        for _ in range(rng.choice([1, 1, 1, 3])):
            made.append(
                (
                    rng.randint(1, 8),
                    rng.choice([None, Decimal(rng.randint(1, 99_999)) / 100]),
                    rng.choice([None, rng.random()]),
                    rng.choice(["a", "b", "c", None]),
                    rng.random() < 0.3,
                    moment,
                )
            )
    made.append((1, Decimal("1.00"), 0.1, "forged", False, start + timedelta(days=8)))
    made.append((2, Decimal("1.00"), 0.1, "forged", False, datetime(9999, 12, 31)))
    return made


@pytest.mark.parametrize("view", [VIEW, TTL_VIEW], ids=["no ttl", "ttl"])
@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_verify_replays_through_the_configured_store(tmp_path: Path, store: str, view: str) -> None:
    start = now()
    with (
        payments_project(tmp_path / "p", rows(start), store=store, view=view) as root,
        Project.load(root) as project,
    ):
        materialize(project)
        before = get_online_features(project, ["payments"], [{"user_id": u} for u in range(1, 9)])
        result = verify(project, "payments", samples=300, seed=4)
        assert result.mismatches == [], result.mismatches[:3]
        assert (result.store, result.samples, result.unknown_keys) == (store, 300, 30)
        assert result.future_events == 2 and result.events == len(rows(start)) - 2
        # The project's own online data is untouched; the scratch store is gone.
        after = get_online_features(project, ["payments"], [{"user_id": u} for u in range(1, 9)])
        assert [a.values for a in after] == [b.values for b in before]
        if store == "redis":
            assert redis_keys(f"{project.config.online.prefix}-verify") == []
        assert not list(root.rglob("replay.sqlite"))


def test_verify_reads_keys_with_no_events_and_text_keys(tmp_path: Path) -> None:
    view = VIEW.replace('entity=["user_id"]', 'entity=["device"]')
    columns = "device VARCHAR, amount DECIMAL(12, 2), score DOUBLE, shop VARCHAR,"
    columns += " declined BOOLEAN, happened TIMESTAMP, user_id BIGINT"
    start = now()
    data = [(f"00{r[0]}", *r[1:], r[0]) for r in rows(start, 60)]
    with (
        payments_project(tmp_path / "p", data, view=view, columns=columns) as root,
        Project.load(root) as project,
    ):
        result = verify(project, "payments", samples=50, seed=1)
        assert result.mismatches == [] and result.unknown_keys == 5


def test_verify_pushes_out_of_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay pushes each batch of events shuffled, in several pushes, and up to the
    clock skew ahead of the instant it reads next."""
    pushes: list[tuple[list[int], int]] = []
    apply = api.apply_events

    def recorded(store: Any, view: Any, events: Any, *, now: int, **kwargs: Any) -> int:
        pushes.append((events.column("_gm_time").to_pylist(), now))
        return apply(store, view, events, now=now, **kwargs)

    monkeypatch.setattr(api, "apply_events", recorded)
    start = now()
    with (
        payments_project(tmp_path / "p", rows(start)) as root,
        Project.load(root) as project,
    ):
        result = verify(project, "payments", samples=100, seed=2)
    assert result.mismatches == []
    times = [t for pushed, _ in pushes for t in pushed]
    assert result.events / 2 < len(times) <= result.events  # up to the last instant read
    assert any(pushed != sorted(pushed) for pushed, _ in pushes)
    assert any(max(pushed) > at for pushed, at in pushes)  # early, within the skew
    assert all(max(pushed) <= at + 5 * 60 * 1_000_000 for pushed, at in pushes)

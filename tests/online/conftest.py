"""Every online store, so that one suite holds them all to the same contract."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.config import OnlineConfig
from gristmill.online import open_online_store
from gristmill.online.base import OnlineStore
from tests.conftest import require_server

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["sqlite", "redis"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> OnlineConfig:
    if request.param == "redis":
        require_server("Redis", "127.0.0.1", 6379)
        return OnlineConfig(type="redis", url=REDIS_URL, prefix=f"t{uuid.uuid4().hex}")
    return OnlineConfig(path=str(tmp_path / "online.sqlite"))


@pytest.fixture
def store(config: OnlineConfig, tmp_path: Path) -> Iterator[OnlineStore]:
    opened = open_online_store(config, tmp_path)
    yield opened
    opened.clear("v")
    opened.clear("w")
    opened.close()

"""The quickstart project the serving tests share: built once per test process, copied
for each test that changes it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def built(built_quickstart: Path) -> Path:
    return built_quickstart


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "demo"
    shutil.copytree(built, root)
    yield root

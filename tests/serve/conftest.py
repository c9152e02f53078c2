"""The quickstart project the serving tests share: built once per test process, copied
for each test that changes it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.quickstart.project import run_quickstart


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve") / "demo"
    assert run_quickstart(root, rows=5_000).ok
    return root


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "demo"
    shutil.copytree(built, root)
    yield root

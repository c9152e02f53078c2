from __future__ import annotations

import platform

import pytest

from gristmill.memory import return_large_buffers_to_the_system


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_glibc_is_told_to_map_large_buffers_on_their_own() -> None:
    assert return_large_buffers_to_the_system() is True
    assert return_large_buffers_to_the_system() is True  # once per process, then cached

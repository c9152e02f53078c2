"""Running one contender of a benchmark in a child process of its own, so that its peak
memory (max RSS) is its own."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def measure(cmd: list[str], out: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and standard output of `cmd` (kept in `out`); stops the
    benchmark when the command fails."""
    started = time.perf_counter()
    with out.open("wb") as handle:
        process = subprocess.Popen(cmd, stdout=handle)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with status {status}:\n{out.read_text()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, out.read_text()

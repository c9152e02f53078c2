"""Benchmark: does a shadow model delay the answers? `gristmill serve` (one worker, the
quickstart's LightGBM model, a local Redis online store) under the same open-loop load,
first with the champion alone, then with a second version in the `shadow` alias (scored
after each answer, on the server's shadow thread), then with the champion's own version
as the shadow.

    .venv/bin/python benchmarks/serve_shadow.py [--rows N] [--rates R ...] [--seconds S]

The project, the requests and the load generator are serve_latency.py's (real
transactions of the project, raw HTTP/1.1 on keep-alive connections, latency counted from
each request's scheduled time). Reported per run: p50/p95/p99, and for the shadow run the
shadow lines the log holds (each request scored by the shadow, or dropped and counted).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_latency import (
    GRISTMILL,
    PREDICT,
    PROJECT,
    clear_online,
    fmt,
    free_port,
    http_requests,
    open_loop,
    prepare,
    sample_requests,
    start,
    stop,
    with_server_cpu,
)


def shadow_lines() -> tuple[int, int]:
    """(decided lines, shadow lines) in the project's prediction log."""
    decided = shadow = 0
    for path in (PROJECT / ".gristmill" / "predictions").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            alias = json.loads(line).get("alias")
            shadow += alias == "shadow"
            decided += alias != "shadow"
    return decided, shadow


def run(label: str, requests: list[bytes], args: argparse.Namespace) -> None:
    port = free_port()
    cmd = [str(GRISTMILL), "serve", "--port", str(port), "-p", str(PROJECT)]
    process = start(cmd, port, "/readyz", {**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        import asyncio

        asyncio.run(open_loop(port, requests, 100, 3.0))  # warm-up
        for rate in args.rates:
            time.sleep(1)
            before = shadow_lines()
            found = with_server_cpu(process, open_loop(port, requests, rate, args.seconds))
            time.sleep(2)  # the shadow thread catches up
            after = shadow_lines()
            print(
                f"{label}, open loop {rate:g}/s: {fmt(found.row())};"
                f" logged {after[0] - before[0]:,} decisions, {after[1] - before[1]:,} shadow",
                flush=True,
            )
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rates", type=float, nargs="+", default=[200.0, 400.0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    prepare(args.rows)
    try:
        subprocess.run(
            [str(GRISTMILL), "train", "fraud", "--force", "-p", str(PROJECT)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        requests = http_requests(PREDICT, [json.dumps(r).encode() for r in sample_requests(5_000)])
        run("champion alone", requests, args)
        subprocess.run(
            [
                str(GRISTMILL),
                "models",
                "promote",
                "fraud",
                "2",
                "--alias",
                "shadow",
                "-p",
                str(PROJECT),
            ],
            check=True,
        )
        run("with v2 in shadow", requests, args)
        subprocess.run(
            [
                str(GRISTMILL),
                "models",
                "promote",
                "fraud",
                "1",
                "--alias",
                "shadow",
                "-p",
                str(PROJECT),
            ],
            check=True,
        )
        run("with v1 in shadow (the champion's own version)", requests, args)
    finally:
        clear_online()


if __name__ == "__main__":
    main()

"""The quickstart's last step: `gristmill serve` started in the background, a normal
transaction and a risky one scored over HTTP, then live traffic, the server stopped. The
risky one belongs to a new user who has just made eight foreign-IP transfers from eight
devices, pushed as events a moment before: the features that catch it are seconds old.
The traffic is ordinary transactions replayed, then a burst of drifted ones (a partner
app's transfers, ten times the usual amount), for `gristmill monitor` to tell apart."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gristmill.errors import GristmillError

BURST = 8
ORDINARY = 500
"""Replayed transactions scored before the drifted burst: as many as a PSI needs."""
DRIFTED = 1_000
AMOUNT_FACTOR = 10
BATCH = 100
"""Rows per predict request, within [serve] max_batch_rows' default."""


@dataclass
class DemoDecision:
    label: str
    request: dict[str, Any]
    response: dict[str, Any]


def drifted(request: dict[str, Any]) -> dict[str, Any]:
    """A partner app's transfer: a p2p transfer of ten times the amount."""
    return {**request, "kind": "p2p_transfer", "amount": request["amount"] * AMOUNT_FACTOR}


def _send(url: str, requests: list[dict[str, Any]]) -> None:
    for start in range(0, len(requests), BATCH):
        _call(f"{url}/v1/models/fraud/predict", {"rows": requests[start : start + BATCH]})


def _call(url: str, body: Any = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        found: dict[str, Any] = json.loads(answer.read())
        return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serving_demo(
    root: Path,
    user: int,
    merchant: int,
    new_user: int,
    traffic: list[dict[str, Any]] | None = None,
    between: Callable[[], None] | None = None,
) -> tuple[str, list[DemoDecision]]:
    """(the server's address, the decisions): a normal transaction of `user`, then one of
    `new_user` right after a burst of transfers. Then `traffic` (requests), its first
    ORDINARY as they are, `between` called, the rest `drifted`."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "gristmill", "serve", "--port", str(port), "-p", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _call(f"{url}/readyz")
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    error = server.stderr.read().decode() if server.stderr else ""
                    raise GristmillError(
                        f"gristmill serve did not start: {error[-2000:]}"
                    ) from None
                time.sleep(0.2)
        normal = {"user_id": user, "merchant_id": merchant, "amount": 250.0, "kind": "payment"}
        decisions = [
            DemoDecision("normal", normal, _call(f"{url}/v1/models/fraud/predict", normal))
        ]
        now = datetime.now(UTC).replace(tzinfo=None)
        burst = [
            {
                "transaction_id": 10**12 + i,
                "user_id": new_user,
                "merchant_id": merchant,
                "amount": 90_000.0,
                "kind": "p2p_transfer",
                "created_at": (now - timedelta(minutes=BURST - i)).isoformat(),
                "device_id": f"dev-burst-{i}",
                "status": "failed" if i % 2 else "completed",
                "foreign_ip": True,
            }
            for i in range(BURST)
        ]
        for view in ("user_velocity", "merchant_velocity"):
            _call(f"{url}/v1/events/{view}", burst)
        risky = {**normal, "user_id": new_user, "amount": 150_000.0, "kind": "p2p_transfer"}
        decisions.append(
            DemoDecision(
                f"after {BURST} foreign-IP transfers in {BURST} minutes",
                risky,
                _call(f"{url}/v1/models/fraud/predict", risky),
            )
        )
        if traffic:
            _send(url, traffic[:ORDINARY])
            if between is not None:
                between()
            _send(url, [drifted(r) for r in traffic[ORDINARY:]])
        return url, decisions
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()

"""Deadlines: a stalled online store costs a request its deadline (a 503 with Retry-After),
never the server; the event loop keeps answering while store work waits; a body trickled
slower than body_timeout is a 408."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import anyio
from starlette.testclient import TestClient

from gristmill.durations import parse_duration
from gristmill.errors import OnlineStoreUnavailableError
from gristmill.online.base import OnlineStore
from gristmill.project import Project
from gristmill.serve.app import create_app
from gristmill.serve.log import read_log
from tests.helpers import ForwardingStore
from tests.serve.test_app import TRANSACTION

EVENT = {
    **TRANSACTION,
    "transaction_id": 10**9,
    "created_at": "2026-01-01T00:00:00",
    "device_id": "dev-new",
    "status": "completed",
    "foreign_ip": False,
}

STALL_SECONDS = 5.0
"""How long a stalled call waits at most: longer than every deadline the tests set."""


class FlakyStore(ForwardingStore):
    """A real store behind a switch: answering, down (refusing at once) or stalled (every
    call waits until released, as a Redis that stopped answering does)."""

    def __init__(self, inner: OnlineStore) -> None:
        super().__init__(inner)
        self.down = False
        self.stalled = False
        self.entered = threading.Event()
        self.released = threading.Event()

    def before(self, call: str) -> None:
        if self.down:
            raise OnlineStoreUnavailableError("The online store refused the connection.")
        if self.stalled:
            self.entered.set()
            self.released.wait(STALL_SECONDS)


def serve_with_flaky_store(root: Path, **serve: str) -> tuple[Project, FlakyStore, Any]:
    """The app over `root` with its online store behind a switch and `serve` settings."""
    import tomllib

    import tomli_w

    config = tomllib.loads((root / "gristmill.toml").read_text())
    config["serve"] = serve
    (root / "gristmill.toml").write_text(tomli_w.dumps(config))
    project = Project.load(root)
    store = FlakyStore(project.online)
    project.__dict__["online"] = store  # what every reader and pusher of the project uses
    return project, store, create_app(project)


def test_a_stalled_store_costs_a_503_within_the_deadline(project: Path) -> None:
    _, store, app = serve_with_flaky_store(project, request_timeout="300ms")
    earlier = len(read_log(project))
    with TestClient(app) as api:
        store.stalled = True
        try:
            for path, body in (
                ("/v1/models/fraud/predict", TRANSACTION),
                ("/v1/events/user_velocity", EVENT),
            ):
                started = time.monotonic()
                response = api.post(path, json=body)
                took = time.monotonic() - started
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] == "1" and took < 0.3 + 1.0
        finally:
            store.released.set()
    assert len(read_log(project)) == earlier  # an abandoned prediction is no decision


def test_the_event_loop_answers_while_a_predict_waits_for_the_store(project: Path) -> None:
    _, store, app = serve_with_flaky_store(project, request_timeout="4s")
    answers: list[int] = []
    with TestClient(app) as api:
        store.stalled = True
        waiting = threading.Thread(
            target=lambda: answers.append(
                api.post("/v1/models/fraud/predict", json=TRANSACTION).status_code
            )
        )
        waiting.start()
        try:
            assert store.entered.wait(STALL_SECONDS)
            started = time.monotonic()
            assert api.get("/healthz").json() == {"status": "ok"}
            assert time.monotonic() - started < 0.5
        finally:
            store.stalled = False
            store.released.set()
            waiting.join()
    assert answers == [200]  # released within its deadline: it scores


def test_the_stores_deadline_fits_within_the_requests(project: Path) -> None:
    served, _, _ = serve_with_flaky_store(project, request_timeout="400ms")
    assert parse_duration(served.config.online.timeout).total_seconds() <= 0.4


def test_a_body_slower_than_body_timeout_is_a_408(project: Path) -> None:
    _, _, app = serve_with_flaky_store(project, body_timeout="300ms")
    sent: list[dict[str, Any]] = []

    async def trickle() -> None:
        async def receive() -> dict[str, Any]:
            await anyio.sleep(0.1)  # a byte at a time, forever
            return {"type": "http.request", "body": b"{", "more_body": True}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/models/fraud/predict",
            "raw_path": b"/v1/models/fraud/predict",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        with anyio.fail_after(3):  # a server without a body deadline would wait forever
            await app(scope, receive, send)

    anyio.run(trickle)
    assert sent[0]["status"] == 408

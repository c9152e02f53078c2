"""Ready means what a predict needs: every model loaded at its alias and the online store
answering. What a caller is told of a problem names no file of the server's."""

from __future__ import annotations

import time
from pathlib import Path

from starlette.testclient import TestClient

from tests.serve.test_app import TRANSACTION
from tests.serve.test_deadlines import serve_with_flaky_store


def test_ready_while_the_store_answers_and_not_while_it_is_down(project: Path) -> None:
    _, store, app = serve_with_flaky_store(project)
    with TestClient(app) as api:
        ready = api.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "models": {"fraud": "loaded"},
            "online_store": "ok",
        }
        store.down = True
        down = api.get("/readyz")
        assert down.status_code == 503 and down.headers["retry-after"] == "1"
        assert down.json() == {
            "status": "unavailable",
            "models": {"fraud": "loaded"},
            "online_store": "unavailable",
        }
        predicted = api.post("/v1/models/fraud/predict", json=TRANSACTION)
        assert predicted.status_code == 503, predicted.text
        assert "unavailable" in predicted.json()["error"]
        store.down = False
        assert api.get("/readyz").status_code == 200
        assert api.post("/v1/models/fraud/predict", json=TRANSACTION).status_code == 200


def test_a_stalled_store_is_not_ready_within_the_deadline(project: Path) -> None:
    _, store, app = serve_with_flaky_store(project, request_timeout="300ms")
    with TestClient(app) as api:
        store.stalled = True
        try:
            started = time.monotonic()
            answer = api.get("/readyz")
            assert time.monotonic() - started < 0.3 * 2 + 1.0  # the models', then the store's
        finally:
            store.released.set()
    assert answer.status_code == 503 and answer.json()["online_store"] == "unavailable"


def test_a_model_that_does_not_load_is_not_ready_and_no_path_is_told(project: Path) -> None:
    artifact = next((project / ".gristmill" / "registry").rglob("model.txt"))
    artifact.write_text(artifact.read_text().replace("tree", "tr3e", 1))
    _, _, app = serve_with_flaky_store(project)
    with TestClient(app) as api:
        ready = api.get("/readyz")
        assert ready.status_code == 503 and ready.json()["models"] == {"fraud": "tampered"}
        answers = [
            ready,
            api.post("/v1/models/fraud/predict", json=TRANSACTION),
            api.post("/v1/models/fraud/predict", content=b"{"),
            api.post("/v1/events/user_velocity", json={"user_id": 7}),
            api.get("/openapi.json"),
            api.get("/docs"),
            api.get("/metrics"),
        ]
    assert answers[1].status_code == 503
    for answer in answers:
        for folder in {str(project), str(project.resolve()), ".gristmill", "registry"}:
            assert folder not in answer.text, (answer.request.url, answer.text)


def test_an_app_served_again_after_a_shutdown_still_logs(project: Path) -> None:
    from gristmill.serve.log import read_log

    _, _, app = serve_with_flaky_store(project)
    earlier = len(read_log(project))
    for _ in range(2):  # the first shutdown closes the log; the second start must reopen it
        with TestClient(app) as api:
            assert api.post("/v1/models/fraud/predict", json=TRANSACTION).status_code == 200
    assert len(read_log(project)) == earlier + 2

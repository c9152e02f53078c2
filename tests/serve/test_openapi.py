"""The server against its own OpenAPI document: schemathesis generates requests from it
(valid and not) and none may get a 5xx."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from gristmill.project import Project
from gristmill.serve.app import create_app


@pytest.fixture(scope="module")
def app(built: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("openapi") / "demo"
    shutil.copytree(built, root)
    project = Project.load(root)
    yield create_app(project)
    project.close()


def test_the_document_describes_each_model_and_view(app) -> None:  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    with TestClient(app) as api:
        document = api.get("/openapi.json").json()
        page = api.get("/docs").text
    predict = document["paths"]["/v1/models/fraud/predict"]["post"]
    row = predict["requestBody"]["content"]["application/json"]["schema"]["oneOf"][0]
    assert row["required"] == ["user_id", "merchant_id", "amount", "kind"]
    assert row["properties"]["user_id"] == {"type": "integer", "nullable": True}
    assert row["properties"]["kind"] == {"type": "string", "nullable": True}
    assert (
        "/v1/events/user_velocity" in document["paths"] and "POST /v1/models/fraud/predict" in page
    )


def test_no_generated_request_gets_a_5xx(app) -> None:  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    calls = 0

    # Requests that fit the document, and requests built to break it.
    for operation, mode in itertools.product(
        [o.ok() for o in schema.get_all_operations()], list(GenerationMode)
    ):
        strategy = operation.as_strategy(generation_mode=mode)

        @settings(
            max_examples=200,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=strategy)
        def run(case):  # type: ignore[no-untyped-def]
            nonlocal calls
            response = case.call()
            calls += 1
            assert response.status_code < 500, (case.path, case.body, response.text)

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to break in GET /healthz
    assert calls >= 1_000

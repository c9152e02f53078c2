"""The HTTP API over the quickstart project: scoring with online features, decisions,
reasons, pushes, the prediction log, API keys, hot promotion, and bad input as 4xx."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gristmill.errors import ConfigError
from gristmill.project import Project
from gristmill.serve import scoring
from gristmill.serve.app import create_app
from gristmill.serve.log import read_log

TRANSACTION = {"user_id": 7, "merchant_id": 3, "amount": 250.0, "kind": "payment"}


def client(root: Path, **serve: Any) -> TestClient:
    if serve:
        import tomllib

        import tomli_w

        config = tomllib.loads((root / "gristmill.toml").read_text())
        config["serve"] = serve
        (root / "gristmill.toml").write_text(tomli_w.dumps(config))
    return TestClient(create_app(Project.load(root)))


def test_a_prediction_has_a_score_a_decision_reasons_and_freshness(project: Path) -> None:
    earlier = len(read_log(project))  # the quickstart's own demo predictions
    with client(project) as api:
        response = api.post("/v1/models/fraud/predict", json=TRANSACTION)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["model"], body["version"], body["alias"]) == ("fraud", 1, "champion")
        assert 0 <= body["score"] <= 1 and body["decision"] in ("approve", "review", "decline")
        assert len(body["reasons"]) == 3 and {"feature", "value", "effect"} <= set(
            body["reasons"][0]
        )
        assert set(body["freshness_seconds"]) == {"user_velocity", "merchant_velocity"}
        batch = api.post("/v1/models/fraud/predict", json={"rows": [TRANSACTION, TRANSACTION]})
        assert len(batch.json()["predictions"]) == 2
        huge = api.post("/v1/models/fraud/predict", json={**TRANSACTION, "amount": 9e6}).json()
        assert (huge["decision"], huge["why"]) == ("review", "rule: amount > 5000000")
    logged = read_log(project)[earlier:]
    assert len(logged) == 4 and logged[0]["request"] == TRANSACTION
    assert logged[0]["version"] == 1 and "tx_count_24h" in logged[0]["features"]
    assert logged[0]["policy_version"] == body["policy_version"]


def test_reasons_by_paths_or_by_shapley_values(project: Path) -> None:
    """Both methods credit the same log-odds: effects plus bias sum to the raw score."""
    answers = {}
    for method in ("paths", "shap"):
        with client(project, reasons=method) as api:
            answers[method] = api.post("/v1/models/fraud/predict", json=TRANSACTION).json()
    paths, shap = answers["paths"], answers["shap"]
    assert paths["score"] == pytest.approx(shap["score"])
    assert len(paths["reasons"]) == len(shap["reasons"]) == 3
    assert paths["reasons"] != shap["reasons"]  # different credit, same model
    with pytest.raises(ConfigError, match="reasons"):
        client(project, reasons="lime")


def test_a_pushed_event_counts_at_once(project: Path) -> None:
    with client(project) as api:
        before = api.post("/v1/models/fraud/predict", json=TRANSACTION)
        event = {
            **TRANSACTION,
            "transaction_id": 10**9,
            "created_at": datetime.now(UTC).replace(tzinfo=None).isoformat(),
            "device_id": "dev-new",
            "status": "completed",
            "foreign_ip": False,
        }
        pushed = api.post("/v1/events/user_velocity", json=event)
        assert pushed.status_code == 200, pushed.text
        after = api.post("/v1/models/fraud/predict", json=TRANSACTION)
    assert (
        after.json()["freshness_seconds"]["user_velocity"]
        < 60
        < before.json()["freshness_seconds"]["user_velocity"]
    )
    first, second = read_log(project)[-2:]
    assert second["features"]["tx_count_1h"] == first["features"]["tx_count_1h"] + 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"user_id": 7, "amount": 1.0, "kind": "payment"}, 422, "missing field 'merchant_id'"),
        ({**TRANSACTION, "amount": "lots"}, 422, "rows[0].amount: expected a number"),
        ({**TRANSACTION, "kind": 5}, 422, "rows[0].kind: expected a string"),
        ({"rows": []}, 422, "rows: expected a non-empty list"),
        ({"rows": [1]}, 422, "rows[0]: expected an object"),
        ([1, 2], 422, "must be a JSON object"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(
    project: Path, body: Any, status: int, message: str
) -> None:
    with client(project) as api:
        response = api.post("/v1/models/fraud/predict", json=body)
    assert response.status_code == status and message in response.json()["error"]


def test_unknown_models_bodies_and_sizes(project: Path) -> None:
    with client(project, max_body_bytes=2_000) as api:
        unknown = api.post("/v1/models/fruad/predict", json=TRANSACTION)
        assert unknown.status_code == 404 and "Did you mean 'fraud'" in unknown.json()["error"]
        garbled = api.post("/v1/models/fraud/predict", content=b"{not json")
        assert garbled.status_code == 422 and "not JSON" in garbled.json()["error"]
        big = api.post("/v1/models/fraud/predict", content=b"[" + b"1," * 2_000 + b"1]")
        assert big.status_code == 413
        view = api.post("/v1/events/no_such_view", json={})
        assert view.status_code == 404
        assert api.get("/healthz").json() == {"status": "ok"}
        assert api.get("/readyz").json()["models"] == {"fraud": "loaded"}
        api.post("/v1/models/fraud/predict", json=TRANSACTION)
        metrics = api.get("/metrics").text
    assert 'gristmill_requests_total{model="fraud",route="predict",status="200"} 1.0' in metrics
    assert 'gristmill_requests_total{model="(unknown)",route="predict",status="404"} 1.0' in metrics
    assert 'gristmill_predict_seconds_count{model="fraud"} 1.0' in metrics
    assert "gristmill_decisions_total" in metrics and "gristmill_scores_bucket" in metrics


def test_api_keys_are_required_and_never_logged(project: Path) -> None:
    with client(project, api_keys=["s3cret-key"]) as api:
        assert api.post("/v1/models/fraud/predict", json=TRANSACTION).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (
            api.post("/v1/models/fraud/predict", json=TRANSACTION, headers=wrong).status_code == 401
        )
        right = {"Authorization": "Bearer s3cret-key"}
        assert (
            api.post("/v1/models/fraud/predict", json=TRANSACTION, headers=right).status_code == 200
        )
        assert (
            api.post(
                "/v1/models/fraud/predict", json=TRANSACTION, headers={"X-API-Key": "s3cret-key"}
            ).status_code
            == 200
        )
    logs = b"".join(p.read_bytes() for p in (project / ".gristmill" / "predictions").glob("*"))
    assert b"s3cret-key" not in logs


def test_a_promotion_reaches_a_running_server(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gristmill.train.trainer import train_model

    monkeypatch.setattr(scoring, "RELOAD_SECONDS", 0.0)
    with client(project) as api:
        assert api.post("/v1/models/fraud/predict", json=TRANSACTION).json()["version"] == 1
        with Project.load(project) as p:
            assert train_model(p, "fraud", force=True).alias == "challenger"
            p.registry.promote("fraud", 2)
        assert api.post("/v1/models/fraud/predict", json=TRANSACTION).json()["version"] == 2


def test_gristmill_serve_answers_over_http(project: Path) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx2 as httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gristmill", "serve", "--port", str(port), "-p", str(project)],
        stderr=subprocess.PIPE,
        env={**os.environ},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        response = httpx.post(f"{url}/v1/models/fraud/predict", json=TRANSACTION)
        assert response.status_code == 200 and response.json()["version"] == 1
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


def test_run_loads_the_prediction_log_into_the_warehouse(project: Path) -> None:
    from gristmill.ingest import ingest

    with client(project) as api:
        for amount in (10.0, 20.0, 30.0):
            api.post("/v1/models/fraud/predict", json={**TRANSACTION, "amount": amount})
    log = next((project / ".gristmill" / "predictions").glob("*.jsonl"))
    with log.open("ab") as handle:
        handle.write(b'{"prediction_id": "cut-sh')  # a crash in the middle of a line
    for _ in range(2):  # the second sync re-reads the grown file: merged, not doubled
        with Project.load(project) as p:
            assert ingest(p, "gristmill.predictions").ok
    with Project.load(project) as p:
        rows = p.warehouse.fetchall(
            "SELECT count(*), count(DISTINCT prediction_id), sum(CASE WHEN json_extract("
            "request, '$.amount')::DOUBLE IN (10, 20, 30) THEN 1 ELSE 0 END)"
            " FROM raw.predictions"
        )
    logged = len(read_log(project))
    assert rows == [(logged, logged, 3)]


def test_batch_scoring_uses_the_training_sets_features(project: Path) -> None:
    import numpy as np

    from gristmill.errors import ConfigError
    from gristmill.serve.batch import score_table
    from gristmill.train.encode import Encoding
    from gristmill.train.estimators import estimator

    with Project.load(project) as p:
        result = score_table(p, "fraud", "clean_transactions", "scored", batch_rows=1_000)
        [(rows,)] = p.warehouse.fetchall("SELECT count(*) FROM analytics.clean_transactions")
        assert (result.rows, result.table, result.version) == (rows, "analytics.scored", 1)
        scored = p.warehouse.query_arrow(
            "SELECT s.transaction_id, s.score, s.decision FROM analytics.scored s"
            " JOIN analytics.fraud_training USING (transaction_id) ORDER BY transaction_id LIMIT 50"
        )
        training = p.warehouse.query_arrow(
            "SELECT * FROM analytics.fraud_training ORDER BY transaction_id LIMIT 50"
        )
        version = p.registry.get("fraud", 1)
        fitted = p.registry.load_estimator("fraud", 1)
        X = Encoding.from_dict(version.metadata["encoding"]).transform(training)
        expected = estimator("lightgbm").predict(fitted, X, "binary")
        assert np.allclose(scored.column("score").to_numpy(), expected)
        assert set(scored.column("decision").to_pylist()) <= {"approve", "review", "decline"}
        p.warehouse.execute(
            "CREATE TABLE analytics.partial AS SELECT user_id FROM analytics.clean_transactions"
        )
        with pytest.raises(ConfigError, match="lacks"):
            score_table(p, "fraud", "partial", "nowhere")
        assert ("analytics", "_gm_build_nowhere") not in p.warehouse.relations()


def test_a_model_without_contributions_still_decides(project: Path) -> None:
    import importlib.util

    from gristmill.train.trainer import train_model

    spec = project / "models" / "fraud.py"
    spec.write_text(
        spec.read_text()
        .replace('estimator="lightgbm"', 'estimator="decision_tree"')
        .replace(
            'params={"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15}', "params={}"
        )
    )
    with Project.load(project) as p:
        version = train_model(p, "fraud", force=True).version
        p.registry.promote("fraud", version)
    with client(project) as api:
        answer = api.post("/v1/models/fraud/predict", json=TRANSACTION)
    assert answer.status_code == 200 and answer.json()["decision"] in (
        "approve",
        "review",
        "decline",
    )
    if importlib.util.find_spec("shap") is None:  # TreeSHAP for scikit-learn trees is optional
        assert answer.json()["reasons"] == []


def test_a_model_whose_reasons_cannot_be_computed_still_decides(project: Path) -> None:
    """LightGBM with linear leaves has neither path attributions nor TreeSHAP."""
    from gristmill.train.trainer import train_model

    spec = project / "models" / "fraud.py"
    spec.write_text(
        spec.read_text().replace('"num_leaves": 15}', '"num_leaves": 15, "linear_tree": True}')
    )
    with Project.load(project) as p:
        version = train_model(p, "fraud", force=True).version
        p.registry.promote("fraud", version)
    for method in ("paths", "shap"):
        with client(project, reasons=method) as api:
            answer = api.post("/v1/models/fraud/predict", json=TRANSACTION)
        assert answer.status_code == 200, answer.text
        assert answer.json()["reasons"] == [] and answer.json()["version"] == version

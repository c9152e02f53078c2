"""Shadow and canary releases over HTTP: the canary decides for its share of entities,
always the same ones; the shadow scores every request after its answer, logged beside
the champion's, and a broken shadow never touches the answers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gristmill.errors import ConfigError
from gristmill.project import Project
from gristmill.serve.app import create_app
from gristmill.serve.log import read_log
from gristmill.serve.releases import BUCKETS, bucket, in_canary
from gristmill.serve.scoring import Scorer
from gristmill.train.trainer import train_model

TRANSACTION = {"merchant_id": 3, "amount": 250.0, "kind": "payment"}
ENTITIES = 10_000


def second_version(root: Path) -> None:
    spec = root / "models" / "fraud.py"
    spec.write_text(spec.read_text().replace('"n_estimators": 300', '"n_estimators": 40'))
    with Project.load(root) as p:
        assert train_model(p, "fraud").version == 2


def predict_all(root: Path, users: list[int]) -> list[dict[str, Any]]:
    """Every user's answer, 100 rows a request (the server shut down at the end)."""
    answers: list[dict[str, Any]] = []
    with TestClient(create_app(Project.load(root))) as api:
        for start in range(0, len(users), 100):
            rows = [{**TRANSACTION, "user_id": u} for u in users[start : start + 100]]
            said = api.post("/v1/models/fraud/predict", json={"rows": rows})
            assert said.status_code == 200, said.text
            answers.extend(said.json()["predictions"])
    return answers


@pytest.mark.parametrize("share", [0.01, 2.5, 10, 50, 100])
def test_buckets_give_the_share_of_entities(share: float) -> None:
    picked = sum(in_canary(user, share) for user in range(ENTITIES))
    assert abs(picked / ENTITIES - share / 100) <= 0.02
    assert all(0 <= bucket(v) < BUCKETS for v in (None, "é", -1, 2**63 - 1, 1.5))


def test_a_canary_decides_for_its_share_of_entities_always_the_same(project: Path) -> None:
    second_version(project)
    with Project.load(project) as p:
        with pytest.raises(ConfigError, match="--share"):
            p.registry.promote("fraud", 2, alias="canary")
        with pytest.raises(ConfigError, match="--share is for the canary"):
            p.registry.promote("fraud", 2, alias="shadow", share=5)
        with pytest.raises(ConfigError, match="at most 100"):
            p.registry.promote("fraud", 2, alias="canary", share=101)
        p.registry.promote("fraud", 2, alias="canary", share=10)
    users = list(range(ENTITIES))
    before = len(read_log(project))  # the quickstart's own demo predictions
    first = predict_all(project, users)
    canaried = {u for u, a in zip(users, first, strict=True) if a["version"] == 2}
    assert abs(len(canaried) / ENTITIES - 0.10) <= 0.02
    assert {a["alias"] for a in first} == {"champion", "canary"}
    # Sticky: the same users in another order and other batches meet the same versions.
    again = predict_all(project, users[::-1][:3_000])
    assert {u for u, a in zip(users[::-1], again, strict=False) if a["version"] == 2} == (
        canaried & set(users[::-1][:3_000])
    )
    logged = read_log(project)[before : before + ENTITIES]
    by_version = Counter(r["version"] for r in logged)
    assert by_version[2] == len(canaried) and by_version[1] == ENTITIES - len(canaried)
    # Each logged decision is the one its version gives, as a direct score says.
    with Project.load(project) as p:
        direct = Scorer(p, alias="canary").score("fraud", [{**TRANSACTION, "user_id": 7}])[1]
    [seven] = [r for r in logged if r["request"]["user_id"] == 7]
    if seven["version"] == 2:
        assert seven["score"] == pytest.approx(direct[0].headline)


def test_the_shadow_scores_every_request_after_its_answer(project: Path) -> None:
    second_version(project)
    with Project.load(project) as p:
        p.registry.promote("fraud", 2, alias="shadow")
    before = len(read_log(project))
    answers = predict_all(project, list(range(300)))
    assert {a["version"] for a in answers} == {1}  # the shadow decides nothing
    logged = read_log(project)[before:]
    champion = {r["prediction_id"]: r for r in logged if r["alias"] == "champion"}
    shadow = [r for r in logged if r["alias"] == "shadow"]
    assert len(champion) == len(shadow) == 300
    assert all(r["shadow_of"] in champion and r["version"] == 2 for r in shadow)
    assert all(
        champion[r["shadow_of"]]["request"] == r["request"] for r in shadow
    )  # beside the champion's line for the same request
    with Project.load(project) as p:
        requests = [r["request"] for r in shadow[:20]]
        direct = Scorer(p, alias="shadow").score("fraud", requests)[1]
    assert [r["score"] for r in shadow[:20]] == pytest.approx([d.headline for d in direct])
    # The monitor counts the decisions, not the shadow's scores.
    from gristmill.monitor import monitor

    with Project.load(project) as p:
        report = monitor(p, "fraud")
    assert report.predictions == before + 300 and report.versions == {1: before + 300}


def test_a_broken_shadow_never_touches_the_answers(project: Path) -> None:
    second_version(project)
    with Project.load(project) as p:
        p.registry.promote("fraud", 2, alias="shadow")
    artifacts = sorted((project / ".gristmill" / "registry").rglob("*"))
    damaged = [a for a in artifacts if a.is_file() and "/2/" in str(a) and "model" in a.name]
    assert damaged, artifacts
    damaged[0].write_bytes(b"not a model")
    answers = predict_all(project, list(range(50)))
    assert len(answers) == 50 and {a["version"] for a in answers} == {1}
    assert not [r for r in read_log(project) if r.get("alias") == "shadow"]

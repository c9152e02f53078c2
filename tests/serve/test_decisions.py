"""Served decisions that know what they don't know: missing and stale features in every
answer, rules that route them, reasons that never cite a missing value, the degraded
decision when the online store is down, and request values refused by name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from gristmill.errors import OnlineStoreUnavailableError
from gristmill.features.api import push
from gristmill.project import Project
from gristmill.quickstart.project import run_quickstart
from gristmill.serve.app import create_app
from gristmill.serve.log import read_log
from gristmill.serve.scoring import BadRequestError, Scorer

TRANSACTION = {"user_id": 7, "merchant_id": 3, "amount": 250.0, "kind": "payment"}
OLD_USER, NEW_USER = 424_242, 525_252
DAYS = 40
USER_FEATURES = {
    "tx_count_1h",
    "tx_count_24h",
    "tx_count_7d",
    "amount_sum_24h",
    "amount_sum_7d",
    "amount_max_7d",
    "devices_24h",
    "devices_7d",
    "merchants_24h",
    "failed_24h",
    "foreign_ip_7d",
    "last_amount",
}
QUICKSTART_RULES = 'rules=[Rule("amount", ">", 5_000_000, "review")],'


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("decisions") / "demo"
    assert run_quickstart(root, rows=5_000, traffic=False).ok
    with Project.load(root) as p:  # a user whose latest event is older than the 30d ttl
        moment = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=DAYS)
        event = {
            "user_id": OLD_USER,
            "merchant_id": 3,
            "amount": 80.0,
            "device_id": "dev-old",
            "status": "completed",
            "foreign_ip": False,
            "created_at": moment,
        }
        assert push(p, "user_velocity", [event]) == 1
    return root


def with_policy(root: Path, rules: str, extra: str = "") -> None:
    spec = root / "models" / "fraud.py"
    text = spec.read_text()
    assert QUICKSTART_RULES in text
    spec.write_text(text.replace(QUICKSTART_RULES, f"rules=[{rules}],{extra}"))


def predict(root: Path, body: dict[str, Any], down: bool = False) -> Any:
    project = Project.load(root)
    if down:  # the store refuses, as a stopped Redis past its deadline does

        def unavailable(*_: Any) -> Any:
            raise OnlineStoreUnavailableError("Redis at 127.0.0.1:1 did not answer within 2s.")

        async def unavailable_async(*_: Any) -> Any:
            unavailable()

        project.online.read_views = unavailable  # type: ignore[method-assign,assignment]
        project.online.read_views_async = unavailable_async  # type: ignore[method-assign]
    with TestClient(create_app(project)) as api:
        return api.post("/v1/models/fraud/predict", json=body)


def test_missing_and_stale_features_are_reported_with_their_age(project: Path) -> None:
    old = predict(project, {**TRANSACTION, "user_id": OLD_USER})
    assert old.status_code == 200, old.text
    body = old.json()
    assert set(body["stale_features"]) == USER_FEATURES
    for age in body["stale_features"].values():
        assert DAYS * 86_400 <= age < DAYS * 86_400 + 600
    # The latest event is past the ttl: its value is gone, and sums over no events too.
    assert {"last_amount", "amount_sum_24h", "amount_max_7d"} <= set(body["missing_features"])
    assert body["degraded"] is False and body["score"] is not None

    new = predict(project, {**TRANSACTION, "user_id": NEW_USER}).json()
    assert new["stale_features"] == {}  # no event at all: nothing is old, much is missing
    assert {"last_amount", "amount_sum_7d"} <= set(new["missing_features"])
    assert not {"tx_count_7d", "amount"} & set(new["missing_features"])  # 0 is a value
    assert new["freshness_seconds"]["user_velocity"] is None


def test_a_null_entity_key_scores_as_the_training_set_scored_it(built: Path) -> None:
    """A transfer without a merchant: the training set joined its null key to no event
    (counts 0, means missing); the served request gets the same features, not a 422."""
    merchant_features = ["merchant_tx_count_1h", "merchant_amount_mean_7d", "merchant_users_24h"]
    with Project.load(built) as p:
        training = p.warehouse.query_arrow(
            f"SELECT {', '.join(merchant_features)} FROM analytics.fraud_training"
            " WHERE merchant_id IS NULL"
        ).to_pylist()
        assert training, "the quickstart has transactions without a merchant"
        [scored] = Scorer(p).score("fraud", [{**TRANSACTION, "merchant_id": None}])[1]
    assert all(row == training[0] for row in training)
    assert {f: scored.features[f] for f in merchant_features} == training[0]
    assert "merchant_amount_mean_7d" in scored.missing
    body = predict(built, {**TRANSACTION, "merchant_id": None})
    assert body.status_code == 200, body.text
    assert predict(built, {**TRANSACTION, "user_id": None}).status_code == 200


def test_every_answer_says_what_was_missing_or_stale(project: Path) -> None:
    project_ = Project.load(project)
    with TestClient(create_app(project_)) as api:
        batch = api.post("/v1/models/fraud/predict", json={"rows": [TRANSACTION] * 2}).json()
    for answer in batch["predictions"]:
        assert {"missing_features", "stale_features", "degraded"} <= set(answer)


def test_a_rule_routes_stale_features_to_review(project: Path) -> None:
    with_policy(project, 'Rule.stale("last_amount", "review")')
    old = predict(project, {**TRANSACTION, "user_id": OLD_USER}).json()
    assert (old["decision"], old["why"]) == ("review", "rule: last_amount is stale")
    fresh = predict(project, {**TRANSACTION, "user_id": NEW_USER}).json()
    assert fresh["why"] != "rule: last_amount is stale"


def test_a_rule_on_the_count_of_missing_features(project: Path) -> None:
    with_policy(project, 'Rule("missing_features", ">=", 3, "decline")')
    new = predict(project, {**TRANSACTION, "user_id": NEW_USER}).json()
    assert (new["decision"], new["why"]) == ("decline", "rule: missing_features >= 3")


def test_reasons_never_cite_a_missing_value(project: Path) -> None:
    """Even when the missing feature's effect is the largest of all."""
    with Project.load(project) as p:
        scorer = Scorer(p)
        loaded = scorer.model("fraud")
        names = loaded.encoding.names
        effects = np.zeros((1, len(names) + 1))
        effects[0, names.index("last_amount")] = 9.0
        effects[0, names.index("amount_sum_24h")] = -8.0
        effects[0, names.index("amount")] = 1.0
        effects[0, names.index("tx_count_7d")] = 0.5
        loaded.explain = lambda X: np.repeat(effects, len(X), axis=0)
        _, [scored] = scorer.score("fraud", [{**TRANSACTION, "user_id": NEW_USER}])
    assert "last_amount" in scored.missing
    cited = [r["feature"] for r in scored.reasons]
    assert cited[:2] == ["amount", "tx_count_7d"] and "last_amount" not in cited
    assert all(r["value"] is not None for r in scored.reasons)


def test_a_degraded_decision_when_the_store_is_down(project: Path) -> None:
    assert predict(project, TRANSACTION, down=True).status_code == 503  # none declared

    earlier = len(read_log(project))
    with_policy(project, 'Rule("amount", ">", 5_000_000, "review")', ' unavailable="hold",')
    answer = predict(project, TRANSACTION, down=True)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["score"], body["decision"], body["degraded"]) == (None, "hold", True)
    assert body["why"] == "the online store is unavailable" and body["reasons"] == []
    assert set(body["missing_features"]) >= USER_FEATURES
    assert "amount" not in body["missing_features"]
    huge = predict(project, {**TRANSACTION, "amount": 9e6}, down=True).json()
    assert (huge["decision"], huge["degraded"]) == ("review", True)  # the rules come first
    logged = read_log(project)[earlier:]
    assert [(r["decision"], r["score"]) for r in logged] == [("hold", None), ("review", None)]


def test_a_degraded_decision_with_a_redis_that_is_not_there(project: Path) -> None:
    """A real store on a closed port: whatever the client's own error, the server decides."""
    import tomllib

    import tomli_w

    pytest.importorskip("redis")
    config = tomllib.loads((project / "gristmill.toml").read_text())
    config["online"] = {"type": "redis", "url": "redis://127.0.0.1:1/0"}
    (project / "gristmill.toml").write_text(tomli_w.dumps(config))
    with_policy(project, QUICKSTART_RULES[7:-2], ' unavailable="review",')
    answer = predict(project, TRANSACTION)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["decision"], answer.json()["degraded"]) == ("review", True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amount": float("nan")}, "rows[0].amount: nan is not a finite number"),
        ({"amount": float("inf")}, "rows[0].amount: inf is not a finite number"),
        ({"amount": 10**400}, "rows[0].amount: an integer of 1329 bits"),
        ({"kind": "pay\ud800"}, "rows[0].kind: not valid Unicode"),
        ({"note": {"deep": "\udfff"}}, "rows[0].note.deep: not valid Unicode"),
        ({"no\ud800te": 1}, "rows[0]: the field name 'no\\ud800te' is not valid Unicode"),
        ({"user_id": 2**63}, "rows[0].user_id: 9223372036854775808 is out of range for int64"),
        ({"user_id": -(2**63) - 1}, "rows[0].user_id: -9223372036854775809 is beyond"),
    ],
)
def test_hostile_values_are_refused_naming_the_field(
    built: Path, change: dict[str, Any], message: str
) -> None:
    with Project.load(built) as p:
        scorer = Scorer(p)
        with pytest.raises(BadRequestError) as refused:
            scorer.score("fraud", [{**TRANSACTION, **change}])
    assert message in str(refused.value)


def test_nesting_is_bounded(built: Path) -> None:
    deep: Any = "x"
    for _ in range(200):
        deep = [deep]
    with Project.load(built) as p, pytest.raises(BadRequestError, match=r"rows\[0\]\.note"):
        Scorer(p).score("fraud", [{**TRANSACTION, "note": deep}])


def test_batch_scoring_routes_rows_by_their_features_as_of_their_own_time(
    project: Path,
) -> None:
    """Rows dated 40 days after the last event have only stale user features; rows at
    their own time do not, and batch decisions equal single ones given the same facts."""
    from gristmill.serve.batch import score_table

    rules = 'Rule.stale("tx_count_7d", "review"), Rule.missing("last_amount", "hold")'
    with_policy(project, rules)
    with Project.load(project) as p:
        p.warehouse.execute(
            "CREATE TABLE analytics.later AS SELECT transaction_id, user_id, merchant_id, amount,"
            " kind, (SELECT max(created_at) FROM analytics.clean_transactions)"
            f" + INTERVAL {DAYS} DAY AS created_at FROM analytics.clean_transactions LIMIT 40"
        )
        score_table(p, "fraud", "later", "later_scored")
        later = p.warehouse.query_arrow("SELECT * FROM analytics.later_scored").to_pylist()
        score_table(p, "fraud", "clean_transactions", "now_scored")
        now = p.warehouse.query_arrow("SELECT * FROM analytics.now_scored").to_pylist()
    assert {r["decision"] for r in later} == {"review"}
    assert not any(c.startswith("_gm_") for c in later[0])
    assert sum(r["decision"] == "review" for r in now) < len(now) / 2
    first = [r for r in now if r["last_amount"] is None]  # a user's first transaction
    assert first and {r["decision"] for r in first} <= {"review", "hold"}
    assert "hold" in {r["decision"] for r in first}

"""Bodies built to break the server: numbers JSON does not allow or no column holds, lone
surrogates, deep nesting, too many rows. Each is a 422 naming where it is; nothing of it
is scored, logged as a decision, counted as a prediction or stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gristmill.serve.body import parse_json
from gristmill.serve.log import read_log
from gristmill.serve.scoring import BadRequestError
from tests.serve.test_app import TRANSACTION, client
from tests.serve.test_deadlines import EVENT

ROW = '"user_id": 7, "merchant_id": 3, "kind": "payment"'


def _predicted(metrics: str) -> list[str]:
    """The lines of /metrics that count predictions and decisions."""
    return [
        line
        for line in metrics.splitlines()
        if line.startswith(("gristmill_predict_seconds_count", "gristmill_decisions_total"))
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (f'{{{ROW}, "amount": NaN}}', "amount: NaN"),
        (f'{{{ROW}, "amount": Infinity}}', "amount: Infinity"),
        (f'{{{ROW}, "amount": -Infinity}}', "amount: -Infinity"),
        (f'{{{ROW}, "amount": 1e309}}', "amount: a number beyond the range of a 64-bit float"),
        (f'{{"rows": [{{{ROW}, "amount": 1.0}}, {{{ROW}, "amount": 1e309}}]}}', "rows[1].amount"),
        (
            f'{{"merchant_id": 3, "kind": "payment", "amount": 1.0, "user_id": {10**400}}}',
            "user_id: 100000000000",
        ),
        ('{"user_id": 7, "merchant_id": 3, "kind": "pay\\ud800", "amount": 1.0}', "kind: the text"),
        (f'{{{ROW}, "amount": {"[" * 10_000}{"]" * 10_000}}}', "nests deeper than 32"),
        (f'{{{ROW}, "amount": {"[" * 40}{"]" * 40}}}', "amount[0][0]"),
    ],
    ids=["nan", "inf", "-inf", "1e309", "batch", "10**400", "surrogate", "deep", "40-deep"],
)
def test_a_hostile_predict_body_is_a_422_naming_the_field(
    project: Path, body: str, field: str
) -> None:
    earlier = len(read_log(project))
    with client(project) as api:
        before = _predicted(api.get("/metrics").text)
        response = api.post(
            "/v1/models/fraud/predict",
            content=body.encode(),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert field in response.json()["error"]
        assert _predicted(api.get("/metrics").text) == before
    assert len(read_log(project)) == earlier


def test_a_body_not_utf8_is_a_422(project: Path) -> None:
    with client(project) as api:
        response = api.post("/v1/models/fraud/predict", content=b'{"kind": "\xff"}')
    assert response.status_code == 422 and "not UTF-8" in response.json()["error"]


def test_a_batch_holds_at_most_max_batch_rows(project: Path) -> None:
    with client(project, max_batch_rows=5) as api:
        document = api.get("/openapi.json").json()
        schema = document["paths"]["/v1/models/fraud/predict"]["post"]["requestBody"]
        rows = schema["content"]["application/json"]["schema"]["oneOf"][1]["properties"]["rows"]
        assert rows["maxItems"] == 5
        assert api.post("/v1/models/fraud/predict", json={"rows": [TRANSACTION] * 5}).is_success
        six = api.post("/v1/models/fraud/predict", json={"rows": [TRANSACTION] * 6})
        assert six.status_code == 422 and "at most 5" in six.json()["error"]
        pushed = api.post("/v1/events/user_velocity", json=[EVENT] * 6)
        assert pushed.status_code == 422 and "at most 5" in pushed.json()["error"]


def test_a_refused_push_is_a_422_counted_and_never_stored(project: Path) -> None:
    with client(project) as api:
        before = api.post("/v1/models/fraud/predict", json=TRANSACTION).json()
        nan = json.dumps({**EVENT, "amount": float("nan")}).encode()
        refused = api.post("/v1/events/user_velocity", content=nan)
        assert refused.status_code == 422 and "amount: NaN" in refused.json()["error"]
        wrong = api.post("/v1/events/user_velocity", json={**EVENT, "foreign_ip": "maybe"})
        assert wrong.status_code == 422
        # The database's own words (and what it was running) stay in the server's log.
        assert "Error:" not in wrong.text and "SELECT" not in wrong.text
        after = api.post("/v1/models/fraud/predict", json=TRANSACTION).json()
        metrics = api.get("/metrics").text
    assert after["freshness_seconds"] == pytest.approx(before["freshness_seconds"], abs=60)
    assert 'gristmill_refused_pushes_total{view="user_velocity"} 2.0' in metrics


# Any JSON a client may send, within the limits: it parses to what json.dumps was given.
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"])), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(_JSON)
def test_json_within_the_limits_parses_as_sent(value: Any) -> None:
    assert parse_json(json.dumps(value).encode()) == value


@given(
    st.lists(st.sampled_from(["rows", "a_b", "x9"]), min_size=1, max_size=5),
    st.sampled_from(
        [float("nan"), float("inf"), -float("inf"), 2**63, -(2**63) - 1, 10**400, "\udfff"]
    ),
)
def test_a_value_out_of_range_is_refused_by_its_path(keys: list[str], hostile: Any) -> None:
    body: Any = hostile
    for key in reversed(keys):
        body = {key: [body]}
    text = json.dumps(body, ensure_ascii=True).encode()  # NaN and Infinity as Python writes them
    with pytest.raises(BadRequestError) as refused:
        parse_json(text)
    assert str(refused.value).startswith("".join(f".{k}[0]" for k in keys)[1:] + ":")

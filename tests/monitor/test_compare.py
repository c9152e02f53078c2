"""`models compare` and promote_if against a brute-force computation over the same log:
the champion's decisions paired with the shadow's scores of the same requests."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from gristmill.cli.main import app as cli
from gristmill.errors import ConfigError, PromotionRefusedError
from gristmill.monitor.compare import compare, promote
from gristmill.project import Project
from gristmill.train.trainer import train_model
from tests.monitor.test_monitor import _with_labels, project, record, write_log

__all__ = ["project"]

PAIRS = 400


def shadowed_log(root: Path) -> list[dict[str, Any]]:
    """PAIRS requests decided by v1 and scored in shadow by v2 (distinct scores, so that
    ranks have no ties), half 40 days old (their labels matured), half 2 days old; plus a
    v1 request without a shadow and a shadow line of another version."""
    now = datetime.now(UTC)
    rng = np.random.default_rng(3)
    a_scores = rng.permutation(PAIRS) / PAIRS + 0.0001
    b_scores = np.clip(a_scores + rng.normal(0, 0.15, PAIRS), 0, 1) + rng.random(PAIRS) * 1e-9
    records, truth = [], []
    for i in range(PAIRS):
        at = now - (timedelta(days=40) if i % 2 else timedelta(days=2))
        request = json.dumps({"transaction_id": 10_000 + i})
        a = record({}, at, i, score=float(a_scores[i]), request=request)
        a["decision"] = "decline" if a_scores[i] > 0.7 else "approve"
        b = record({}, at, i, score=float(b_scores[i]), request=request, version=2)
        b.update(alias="shadow", shadow_of=a["prediction_id"], latency_ms=None)
        b["decision"] = "decline" if b_scores[i] > 0.7 else "approve"
        records += [a, b]
        truth.append((a, b, bool(rng.random() < a_scores[i]), at))
    records.append(record({}, now, 1, request="{}"))
    records.append(
        {
            **record({}, now, 2, request="{}", version=1),
            "alias": "shadow",
            "shadow_of": uuid.uuid4().hex,
        }
    )
    write_log(root, records)
    with Project.load(root) as p:
        p.warehouse.execute("CREATE TABLE raw.outcomes (transaction_id BIGINT, is_bad BOOLEAN)")
        p.warehouse.execute(
            "INSERT INTO raw.outcomes VALUES "
            + ", ".join(f"({10_000 + i}, {str(t[2]).lower()})" for i, t in enumerate(truth))
        )
    return truth


def test_compare_and_promote_if_against_brute_force(project: Path) -> None:
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    _with_labels(project)
    with Project.load(project) as p:
        assert train_model(p, "fraud", force=True).version == 2
    truth = shadowed_log(project)
    with Project.load(project) as p:
        found = compare(p, "fraud", "champion", "2")
    a = np.array([t[0]["score"] for t in truth])
    b = np.array([t[1]["score"] for t in truth])
    agree = np.mean([t[0]["decision"] == t[1]["decision"] for t in truth])
    assert found.pairs == PAIRS
    assert found.agreement == pytest.approx(agree) and found.flip_rate == pytest.approx(1 - agree)
    assert found.score_correlation == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert found.spearman == pytest.approx(spearmanr(a, b).statistic)
    flips = Counter(
        f"{t[0]['decision']} -> {t[1]['decision']}"
        for t in truth
        if t[0]["decision"] != t[1]["decision"]
    )
    assert found.flips == dict(flips)
    # Only labels of requests older than label_maturity (30d) count as good.
    now = datetime.now(UTC)
    matured = [t for t in truth if t[2] or t[3] <= now - timedelta(days=30)]
    y = [int(t[2]) for t in matured]
    assert found.champion_outcomes is not None and found.challenger_outcomes is not None
    assert found.champion_outcomes.auc == pytest.approx(
        roc_auc_score(y, [t[0]["score"] for t in matured])
    )
    assert found.challenger_outcomes.auc == pytest.approx(
        roc_auc_score(y, [t[1]["score"] for t in matured])
    )

    # promote_if: refused with the figures, then passed once the checks allow it.
    spec = project / "models" / "fraud.py"
    text = spec.read_text()
    checks = '    promote_if=["auc >= champion.auc - 0.005", "flip_rate < 0.02"],\n'
    spec.write_text(text.replace("    policy=Policy(", checks + "    policy=Policy("))
    with Project.load(project) as p:
        with pytest.raises(PromotionRefusedError, match=r"flip_rate < 0\.02: flip_rate is"):
            promote(p, "fraud", "2")
        assert p.registry.aliases("fraud")["champion"] == 1
    said = CliRunner().invoke(cli, ["models", "promote", "fraud", "2", "-p", str(project)])
    assert isinstance(said.exception, PromotionRefusedError)  # exit 1 through main's boundary
    assert "--force promotes anyway" in str(said.exception)
    loose = '    promote_if=["auc >= champion.auc - 1", "flip_rate < 0.9", "pairs >= 400"],\n'
    spec.write_text(text.replace("    policy=Policy(", loose + "    policy=Policy("))
    with Project.load(project) as p:
        assert promote(p, "fraud", "2").version == 2
    shown = CliRunner().invoke(
        cli, ["models", "compare", "fraud", "1", "2", "--json", "-p", str(project)]
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["pairs"] == PAIRS


@pytest.mark.parametrize(
    "check", ["auc >> 1", "import os", "aucc > 0.5", "flip_rate < 0.02 + ", "__class__ > 1"]
)
def test_a_check_that_cannot_be_read_is_refused_when_the_spec_loads(check: str) -> None:
    from gristmill.train import Model

    with pytest.raises(ConfigError, match="promote_if"):
        Model(name="m", training_set="t", target="y", promote_if=[check])

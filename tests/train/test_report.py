"""The HTML report of an evaluation: one offline page per task, escaped, with charts that
Chromium lays out and paints (the browser helpers are the profile report tests')."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from gristmill.errors import EvaluationError
from gristmill.train.evaluation import (
    Evaluation,
    compare_with_rule,
    evaluate_binary,
    evaluate_multiclass,
    evaluate_regression,
)
from gristmill.train.explain import PermutationImportance, PermutationScore
from gristmill.train.report import render_report
from tests.profile.test_report import MEASURE, _chromium, _decode_png, _run_chromium

XSS = "<script>alert(1)</script>"
IMPORTANCE = [("amount", 0.5), ("velocity_1h", 0.3), (XSS, 0.2)]
META = {"model": "fraud", "version": 3, "training_set": "fraud_training", "created_at": "today"}


def binary() -> Evaluation:
    rng = np.random.default_rng(0)
    n = 4000
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * x - 4)))).astype(int)
    score = 1 / (1 + np.exp(-(2 * x + rng.normal(scale=0.7, size=n) - 4)))
    amount = x + rng.normal(size=n)
    return evaluate_binary(
        y,
        score,
        costs={"fp": 1, "fn": 20},
        rules={"amount above p99": amount > np.quantile(amount, 0.99)},
    )


def regression() -> Evaluation:
    rng = np.random.default_rng(0)
    y = rng.gamma(2.0, 10.0, size=3000)
    return evaluate_regression(y, y * 0.9 + rng.normal(scale=4, size=3000))


def multiclass() -> Evaluation:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet([3, 2, 2, 1], size=800)
    y = np.array([rng.choice(4, p=row) for row in proba])
    classes = ["card", "bank_transfer", XSS, "wallet"]
    return evaluate_multiclass(np.array(classes, dtype=object)[y], proba, classes)


TASKS = {"binary": binary, "regression": regression, "multiclass": multiclass}


@pytest.mark.parametrize("task", list(TASKS))
def test_page_is_offline_escaped_and_complete(task: str) -> None:
    evaluation = TASKS[task]()
    permutation = PermutationImportance("roc_auc", 0.8, 100, 3, [PermutationScore(XSS, 0.1, 0.01)])
    page = render_report(f"model {XSS}", evaluation, IMPORTANCE, META, permutation=permutation)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<svg") >= {"binary": 7, "regression": 5, "multiclass": 3}[task]
    assert "Content-Security-Policy" in page
    assert f"<b>task</b><span>{task}</span>" in page and "fraud_training" in page
    expected = {
        "binary": [
            "ROC curve",
            "Precision-recall",
            "Calibration",
            "Cumulative gain",
            "Lift by decile",
            "Confusion matrices",
            "amount above p99",
        ],
        "regression": [
            "Predicted against actual",
            "Residuals against predicted",
            "Residual distribution",
        ],
        "multiclass": ["Per class", "Confusion matrix", "bank_transfer"],
    }[task]
    for text in expected:
        assert text in page, text


def test_rule_comparisons_made_apart_are_shown() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    score = np.linspace(0.9, 0.1, 10)
    flagged = np.array([0, 1, 1, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    comparison = compare_with_rule(y, score, flagged, name="big <amount>")
    page = render_report("m", evaluate_binary(y, score), rules=[comparison])
    assert "big &lt;amount&gt;" in page and "Against the baseline rule" in page
    with pytest.raises(EvaluationError, match="binary"):
        render_report("m", regression(), rules=[comparison])


def test_single_class_page_still_renders() -> None:
    page = render_report("m", evaluate_binary(np.zeros(20), np.linspace(0, 0.5, 20)))
    assert "Curves need both classes" in page and "only negatives" in page


# ----------------------------------------------------------------------------- Chromium


def test_charts_lay_out_with_shapes(tmp_path: Path) -> None:
    binary_path = _chromium()
    page = render_report("fraud", TASKS["binary"](), IMPORTANCE, META)
    # The report's CSP forbids scripts; the test page drops it to measure the layout.
    measured = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    file = tmp_path / "report.html"
    file.write_text(measured.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    done = _run_chromium(
        binary_path, tmp_path, "--virtual-time-budget=2000", "--dump-dom", file.as_uri()
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="measured">([^<]*)</pre>', done.stdout)
    assert found, "the measuring script did not run"
    charts = [tuple(int(v) for v in item.split(",")) for item in found.group(1).split(";")]
    assert len(charts) == page.count("<svg")
    for width, height, shapes in charts:
        assert width > 200 and height > 50 and shapes >= 3, charts


@pytest.mark.parametrize("task", list(TASKS))
def test_screenshot_is_not_blank(task: str, tmp_path: Path) -> None:
    binary_path = _chromium()
    file = tmp_path / "report.html"
    file.write_text(render_report(task, TASKS[task](), IMPORTANCE, META), encoding="utf-8")
    png = tmp_path / "report.png"
    done = _run_chromium(
        binary_path, tmp_path, f"--screenshot={png}", "--window-size=1280,1600", file.as_uri()
    )
    assert png.exists(), done.stderr[-2000:]
    pixels = _decode_png(png.read_bytes())
    assert pixels.shape[:2] == (1600, 1280)
    rgb = pixels[:, :, :3].astype(np.int16)
    assert rgb.std() > 8  # far from one flat colour
    ink = (rgb.max(axis=2) - rgb.min(axis=2) > 40) | (rgb.max(axis=2) < 200)
    assert ink.mean() > 0.01  # text and charts (the multiclass page is short)
    blue = (rgb[:, :, 2] - rgb[:, :, 0] > 40) & (rgb[:, :, 0] < 190)  # charts' #4c78a8 family
    assert blue.sum() > 2000

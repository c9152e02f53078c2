"""A model evaluation as one self-contained HTML page: inline CSS and SVG, no script.

The page is built of `gristmill.pages`' parts: the profile report's look and rules (it
opens offline; every name and value is escaped).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from gristmill.errors import EvaluationError
from gristmill.pages import box as _box
from gristmill.pages import e as _e
from gristmill.pages import figure as _figure
from gristmill.pages import page
from gristmill.pages import table as _table
from gristmill.profile import svg
from gristmill.profile.report import fmt
from gristmill.train.evaluation import (
    BinaryEvaluation,
    Evaluation,
    MulticlassEvaluation,
    RegressionEvaluation,
    RuleComparison,
    ThresholdResult,
)
from gristmill.train.evaluation.base import count, num, share
from gristmill.train.explain import PermutationImportance

MAX_FEATURES = 25
"""Features shown in an importance chart (the largest)."""
META_ORDER = ("model", "version", "task", "training_set", "rows", "created_at")
GREEN = "#54a24b"

EXTRA_CSS = """
.gm .split{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:0 32px;
 align-items:start}
.gm .split td:first-child{color:#52606d}
.gm td.mv{text-align:right;font-variant-numeric:tabular-nums}
.gm .callout{font-size:15px;background:#f0f6fc;border-left:4px solid #4c78a8;
 padding:10px 14px;border-radius:4px;margin:0 0 12px}
.gm .cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:16px}
.gm .card{border:1px solid #e1e5ea;border-radius:8px;padding:12px 14px}
.gm table.cm{width:auto;margin:6px 0 8px}
.gm table.cm td,.gm table.cm th{border:1px solid #e1e5ea;text-align:center;padding:6px 12px}
.gm table.cm td.hit{background:#e3eefa}
.gm .note{font-size:12px;color:#7b8794;margin:6px 0 0}
"""


def _percent_label(value: float) -> str:
    return f"{value * 100:.0f}%"


# ----------------------------------------------------------------------------- common parts


def _header(title: str, evaluation: Evaluation, meta: Mapping[str, Any]) -> str:
    facts = {"task": evaluation.task, "rows": evaluation.rows, **meta}
    keys = [k for k in META_ORDER if k in facts] + [k for k in facts if k not in META_ORDER]
    cells = "".join(
        f'<div class="fact"><b>{_e(k.replace("_", " "))}</b><span>{_e(fmt(facts[k]))}</span></div>'
        for k in keys
    )
    return (
        f'<header><div class="kicker">Model evaluation</div><h1>{_e(title)}</h1>'
        f'<div class="facts">{cells}</div></header>'
    )


def _metrics(evaluation: Evaluation) -> str:
    pairs = evaluation.summary(detail=False)
    # Three side by side on a wide page (they wrap on a narrow one).
    size = math.ceil(len(pairs) / 3)
    columns = "".join(
        '<table class="stats"><tbody>'
        + "".join(f'<tr><td>{_e(k)}</td><td class="mv">{_e(v)}</td></tr>' for k, v in part)
        + "</tbody></table>"
        for part in (pairs[i : i + size] for i in range(0, len(pairs), size))
    )
    notes = "".join(f"<li>{_e(n)}</li>" for n in evaluation.notes)
    body = f'<div class="split">{columns}</div>'
    if notes:
        body += f'<ul class="colwarn">{notes}</ul>'
    return _box("Metrics", body, "metrics")


def _importance(
    importance: Sequence[tuple[str, float]] | None, permutation: PermutationImportance | None
) -> str:
    figures = []
    if importance:
        top = list(importance)[:MAX_FEATURES]
        rows = [(name, value, share(value)) for name, value in top]
        chart = svg.hbars(rows, title="Gain importance per feature", width=520)
        more = f" (top {len(top)} of {len(importance)})" if len(importance) > len(top) else ""
        figures.append(_figure(f"Gain importance, share of total{more}", chart))
    if permutation is not None and permutation.scores:
        top_scores = permutation.scores[:MAX_FEATURES]
        rows = [(s.feature, s.mean, f"{num(s.mean)} ± {num(s.std)}") for s in top_scores]
        colors = [svg.BLUE if s.mean >= 0 else svg.GREY for s in top_scores]
        chart = svg.hbars(rows, title="Permutation importance", width=520, colors=colors)
        note = (
            f"Drop in {permutation.metric} (from {num(permutation.baseline)}) when a feature's "
            f"values are shuffled; {permutation.repeats} shuffles of {permutation.rows:,} rows."
        )
        figures.append(_figure("Permutation importance", chart, note))
    if not figures:
        return ""
    return _box("Feature importance", f'<div class="row">{"".join(figures)}</div>', "importance")


# ----------------------------------------------------------------------------- binary


def _rules(e: BinaryEvaluation) -> str:
    if not e.rules:
        return ""
    parts = []
    for c in e.rules:
        r = c.rule
        parts.append(f'<p class="callout">{_e(c.sentence())}</p>')
        rows = [
            [
                f"rule: {r.name}",
                share(r.flag_rate),
                share(r.recall),
                share(r.precision),
                f"{num(r.lift, 2)}x" if r.lift is not None else "—",
            ],
            [
                "model, same flag rate",
                share(r.flag_rate),
                share(c.model_recall),
                share(c.model_precision),
                f"{num(c.model_lift, 2)}x" if c.model_lift is not None else "—",
            ],
        ]
        parts.append(_table(["", "Flags", "Recall", "Precision", "Lift"], rows))
    return _box("Against the baseline rule", "".join(parts), "rules")


def _binary_charts(e: BinaryEvaluation) -> str:
    unit = (0.0, 1.0)
    chance = svg.Line("chance", [(0, 0), (1, 1)], svg.GREY, dashed=True)
    roc = svg.lines(
        [svg.Line("model", list(zip(e.roc.x, e.roc.y, strict=True))), chance],
        title="ROC curve",
        x_title="false positive rate",
        y_title="true positive rate",
        x_range=unit,
        y_range=unit,
    )
    pr = svg.lines(
        [
            svg.Line("model", list(zip(e.pr.x, e.pr.y, strict=True))),
            svg.Line("base rate", [(0, e.base_rate), (1, e.base_rate)], svg.GREY, dashed=True),
        ],
        title="Precision-recall curve",
        x_title="recall",
        y_title="precision",
        x_range=unit,
        y_range=unit,
    )
    top = max([b.mean_predicted for b in e.calibration] + [b.observed_rate for b in e.calibration])
    calibration = svg.lines(
        [
            svg.Line(
                "model",
                [(b.mean_predicted, b.observed_rate) for b in e.calibration],
                dots=True,
            ),
            svg.Line("perfect", [(0, 0), (top, top)], svg.GREY, dashed=True),
        ],
        title="Calibration",
        x_title="mean predicted probability",
        y_title="observed rate",
    )
    gain_lines = [
        svg.Line("model", list(zip(e.gain.x, e.gain.y, strict=True))),
        svg.Line("random", [(0, 0), (1, 1)], svg.GREY, dashed=True),
    ]
    gain_lines += [
        svg.Line(f"rule {c.rule.name}", [(c.rule.flag_rate, c.rule.recall)], svg.ORANGE, dots=True)
        for c in e.rules
        if c.rule.recall is not None
    ]
    gain = svg.lines(
        gain_lines,
        title="Cumulative gain",
        x_title="share of rows flagged (highest scores first)",
        y_title="share of positives caught",
        x_range=unit,
        y_range=unit,
        x_label=_percent_label,
        y_label=_percent_label,
    )
    lift_rows = [
        (f"decile {d.decile}", d.lift or 0.0, f"{num(d.lift, 2)}x · rate {share(d.rate)}")
        for d in e.deciles
    ]
    colors = [svg.ORANGE if (d.lift or 0) > 1 else svg.BLUE for d in e.deciles]
    lift = svg.hbars(
        lift_rows, title="Lift by decile", colors=colors, refs=[(1.0, "base rate")], width=380
    )
    figures = [
        _figure(f"ROC curve · AUC {num(e.roc_auc)}", roc),
        _figure(f"Precision-recall · average precision {num(e.pr_auc)}", pr),
        _figure(
            f"Calibration · ECE {num(e.calibration_error)}",
            calibration,
            "Each dot is a tenth of the rows by score.",
        ),
        _figure("Cumulative gain", gain),
        _figure("Lift by decile (decile 1: highest scores)", lift),
    ]
    if not (e.roc.x or e.gain.x):
        figures.append('<p class="empty">Curves need both classes in y_true.</p>')
    return _box("Curves", f'<div class="charts">{"".join(figures)}</div>', "curves")


def _confusion(t: ThresholdResult, costs: Mapping[str, float] | None) -> str:
    matrix = (
        '<table class="cm"><thead><tr><th></th><th>flagged</th><th>not flagged</th></tr>'
        f'</thead><tbody><tr><th>positive</th><td class="hit">{count(t.tp)}</td>'
        f"<td>{count(t.fn)}</td></tr><tr><th>negative</th><td>{count(t.fp)}</td>"
        f'<td class="hit">{count(t.tn)}</td></tr></tbody></table>'
    )
    stats = [
        ("Flags", share(t.flag_rate)),
        ("Precision", share(t.precision)),
        ("Recall", share(t.recall)),
        ("F1", num(t.f1)),
        ("False positive rate", share(t.false_positive_rate)),
    ]
    if t.cost is not None and costs is not None:
        stats.append(("Cost", f"{num(t.cost)} (fp {costs['fp']:g}, fn {costs['fn']:g} each)"))
    table = "".join(f'<tr><td>{_e(k)}</td><td class="n">{_e(v)}</td></tr>' for k, v in stats)
    return (
        f'<div class="card"><h3>Score ≥ {_e(num(t.threshold))} · {_e(t.reason)}</h3>'
        f'{matrix}<table class="stats"><tbody>{table}</tbody></table></div>'
    )


def _thresholds(e: BinaryEvaluation) -> str:
    cards = "".join(_confusion(t, e.costs) for t in e.thresholds)
    return _box("Confusion matrices", f'<div class="cards">{cards}</div>', "thresholds")


def _binary_tables(e: BinaryEvaluation) -> str:
    deciles = _table(
        ["Decile", "Scores", "Rows", "Positives", "Rate", "Lift", "Cum. gain", "Cum. lift"],
        [
            [
                str(d.decile),
                f"{num(d.min_score)} to {num(d.max_score)}",
                count(d.count),
                count(round(d.positives, 1)),
                share(d.rate),
                num(d.lift, 2),
                share(d.cumulative_gain),
                num(d.cumulative_lift, 2),
            ]
            for d in e.deciles
        ],
    )
    calibration = _table(
        ["Bin", "Scores", "Rows", "Mean predicted", "Observed rate"],
        [
            [
                str(b.bin),
                f"{num(b.min_score)} to {num(b.max_score)}",
                count(b.count),
                share(b.mean_predicted, 2),
                share(b.observed_rate, 2),
            ]
            for b in e.calibration
        ],
    )
    body = f"<h3>Lift and gain by decile</h3>{deciles}<h3 style='margin-top:16px'>Calibration</h3>{calibration}"
    return _box("Tables", body, "tables")


def _binary(e: BinaryEvaluation) -> str:
    return _rules(e) + _binary_charts(e) + _thresholds(e) + _binary_tables(e)


# ----------------------------------------------------------------------------- regression


def _regression(e: RegressionEvaluation) -> str:
    import numpy as np

    predicted, actual = np.asarray(e.sample_predicted), np.asarray(e.sample_actual)
    low = float(min(predicted.min(), actual.min()))
    high = float(max(predicted.max(), actual.max()))
    versus = svg.scatter(
        list(zip(e.sample_predicted, e.sample_actual, strict=True)),
        title="Predicted against actual",
        x_title="predicted",
        y_title="actual",
        guides=[svg.Line("perfect", [(low, low), (high, high)], svg.GREY, dashed=True)],
    )
    residuals = actual - predicted
    # A few extreme residuals would flatten the rest: they are drawn at the edge.
    r_low, r_high = svg.nice_range(*(float(v) for v in np.quantile(residuals, [0.005, 0.995])))
    bins = e.by_predicted
    by_bin = svg.scatter(
        list(zip(e.sample_predicted, residuals.tolist(), strict=True)),
        title="Residuals against predicted",
        x_title="predicted",
        y_title="residual (actual - predicted)",
        y_range=(r_low, r_high),
        guides=[
            svg.Line(
                "mean residual",
                [(b.mean_predicted, b.mean_residual) for b in bins],
                "#1f2933",
                dots=True,
            ),
            svg.Line(
                "p10 / p90",
                [(b.mean_predicted, b.p10_residual) for b in bins],
                svg.ORANGE,
                dashed=True,
            ),
            svg.Line(
                "", [(b.mean_predicted, b.p90_residual) for b in bins], svg.ORANGE, dashed=True
            ),
            svg.Line(
                "zero", [(float(predicted.min()), 0.0), (float(predicted.max()), 0.0)], svg.GREY
            ),
        ],
    )
    h = e.histogram
    histogram = svg.histogram(
        h.edges, h.counts, lambda v: svg.compact(float(f"{v:.3g}")), title="Residuals", height=280
    )
    beyond = (
        f"{h.below:,} below and {h.above:,} above the range shown." if h.below or h.above else ""
    )
    figures = [
        _figure("Predicted against actual", versus, f"A sample of {len(predicted):,} rows."),
        _figure(
            "Residuals against predicted",
            by_bin,
            "Lines: per tenth of the rows by prediction. The most extreme residuals are drawn "
            "at the edge.",
        ),
        _figure("Residual distribution", histogram, beyond),
    ]
    table = _table(
        ["Bin", "Predicted", "Rows", "Mean actual", "Mean residual", "p10", "p90"],
        [
            [
                str(b.bin),
                f"{num(b.min_predicted)} to {num(b.max_predicted)}",
                count(b.count),
                num(b.mean_actual),
                num(b.mean_residual),
                num(b.p10_residual),
                num(b.p90_residual),
            ]
            for b in bins
        ],
    )
    return _box("Residuals", f'<div class="charts">{"".join(figures)}</div>', "residuals") + _box(
        "Residuals by predicted value", table, "tables"
    )


# ----------------------------------------------------------------------------- multiclass


def _multiclass(e: MulticlassEvaluation) -> str:
    table = _table(
        ["Class", "Rows", "Predicted", "Precision", "Recall", "F1", "AUC (one vs rest)"],
        [
            [
                c.label,
                f"{c.support:,}",
                f"{c.predicted:,}",
                share(c.precision),
                share(c.recall),
                num(c.f1),
                num(c.auc),
            ]
            for c in e.per_class
        ],
    )
    totals = [sum(row) for row in e.confusion]
    shares = [
        [v / t if t else 0.0 for v in row] for row, t in zip(e.confusion, totals, strict=True)
    ]
    notes = [[f"{v:,}" for v in row] for row in e.confusion]
    chart = svg.matrix(
        e.classes,
        e.classes,
        shares,
        notes,
        title="Confusion matrix",
        row_title="actual",
        column_title="predicted",
    )
    figure = _figure("Confusion matrix (shaded by share of the actual class)", chart)
    return _box("Per class", table, "classes") + _box("Confusion matrix", figure, "confusion")


# ----------------------------------------------------------------------------- page


def render_report(
    title: str,
    evaluation: Evaluation,
    importance: Sequence[tuple[str, float]] | None = None,
    meta: Mapping[str, Any] | None = None,
    *,
    permutation: PermutationImportance | None = None,
    rules: Sequence[RuleComparison] = (),
) -> str:
    """The evaluation as one HTML document that needs nothing from the network.

    `meta` fills the header (model, version, task, training_set, rows, created_at first,
    any other keys after); `importance` is (feature, share) pairs as `explain.importance`
    returns them; `permutation` adds a permutation-importance chart; `rules` adds
    comparisons made apart (`compare_with_rule`) to those the binary evaluation holds.
    """
    if rules:
        if not isinstance(evaluation, BinaryEvaluation):
            raise EvaluationError(
                f"A baseline rule is compared with a binary model; this is a {evaluation.task} one."
            )
        evaluation = dataclasses.replace(evaluation, rules=[*evaluation.rules, *rules])
    if isinstance(evaluation, BinaryEvaluation):
        task = _binary(evaluation)
    elif isinstance(evaluation, RegressionEvaluation):
        task = _regression(evaluation)
    else:
        task = _multiclass(evaluation)
    body = (
        _header(title, evaluation, meta or {})
        + _metrics(evaluation)
        + task
        + _importance(importance, permutation)
        + "<footer>Evaluated by gristmill</footer>"
    )
    return page(title, body, EXTRA_CSS)

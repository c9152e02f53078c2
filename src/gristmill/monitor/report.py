"""A monitoring report as one self-contained HTML page (`gristmill monitor --html`):
alerts, each feature's PSI per day against the training set, the scores' deciles now and
in training, decisions and latency per day (`gristmill.pages`' parts and the profile's
SVG charts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gristmill.monitor.model import FEATURE_COLUMNS, WINDOW_COLUMNS
from gristmill.monitor.realized import COLUMNS
from gristmill.pages import box, e, figure, page, table
from gristmill.profile import svg
from gristmill.profile.drift import DRIFT_PSI

if TYPE_CHECKING:
    from gristmill.monitor.model import MonitorReport

MAX_LINES = 8
"""Features drawn in the PSI chart (the largest PSI); the table lists them all."""
COLORS = ("#4c78a8", "#e45756", "#54a24b", "#f58518", "#b279a2", "#72b7b2", "#9d755d", "#eeca3b")

EXTRA_CSS = """
.gm .alert{background:#fdecea;border-left:4px solid #e45756;padding:8px 12px;margin:4px 0;
 border-radius:4px}
.gm .warn{background:#fff8e1;border-left:4px solid #f2c94c;padding:8px 12px;margin:4px 0;
 border-radius:4px}
.gm .cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:16px}
"""


def render(report: MonitorReport) -> str:
    days = [w.day for w in report.windows]
    body = _header(report) + _callouts(report)
    body += box("Inputs", _inputs(report, days), "inputs")
    body += box("Scores", _scores(report), "scores")
    body += box("Decisions and latency", _traffic(report, days), "traffic")
    if report.realized is not None:
        body += box("Realized performance", _realized(report, days), "realized")
    body += "<footer>Monitored by gristmill</footer>"
    return page(f"{report.model}: monitoring", body, EXTRA_CSS)


def _header(report: MonitorReport) -> str:
    versions = ", ".join(f"v{v}: {n:,}" for v, n in report.versions.items()) or "none"
    facts = {
        "model": report.model,
        "window": f"{_moment(report.start)} to {_moment(report.end)} UTC",
        "predictions": f"{report.predictions:,} ({versions})",
        "reference": f"v{report.version}, training set {report.training_set}",
    }
    cells = "".join(
        f'<div class="fact"><b>{e(k)}</b><span>{e(v)}</span></div>' for k, v in facts.items()
    )
    return (
        '<header><div class="kicker">Model monitoring</div>'
        f'<h1>{e(report.model)}</h1><div class="facts">{cells}</div></header>'
    )


def _moment(iso: str) -> str:
    return iso[:16].replace("T", " ")


def _callouts(report: MonitorReport) -> str:
    parts = [f'<div class="alert">{e(a.message)}</div>' for a in report.alerts]
    if report.webhook_error:
        parts.append(f'<div class="alert">webhook: {e(report.webhook_error)}</div>')
    parts += [f'<div class="warn">{e(w)}</div>' for w in report.warnings]
    return "".join(parts)


def _day_label(days: list[str]) -> Callable[[float], str]:
    def label(x: float) -> str:
        return days[int(x)][5:] if x == int(x) and 0 <= int(x) < len(days) else ""

    return label


def _daily(
    series: list[svg.Line], title: str, y_title: str, days: list[str], **options: Any
) -> str:
    """Lines over the days (x: each day's index, labelled with its date)."""
    return svg.lines(
        series, title=title, x_title="day (UTC)", y_title=y_title, x_label=_day_label(days),
        **options,
    )  # fmt: skip


def _guide(name: str, value: float, days: list[str]) -> svg.Line:
    """A dashed horizontal line at `value` across the days."""
    return svg.Line(name, [(0.0, value), (float(max(len(days) - 1, 1)), value)], svg.GREY, True)


def _inputs(report: MonitorReport, days: list[str]) -> str:
    ranked = report.ranked_features
    drawn = [f for f in ranked if f.psi_by_day][:MAX_LINES]
    series = [
        svg.Line(
            f.name,
            [(float(days.index(d)), v) for d, v in f.psi_by_day.items() if d in days],
            COLORS[i % len(COLORS)],
            dots=True,
        )
        for i, f in enumerate(drawn)
    ]
    if days:
        series.append(_guide("", DRIFT_PSI, days))
    chart = _daily(series, "PSI per day", "PSI against training", days, width=760)
    rows = [[*f.cells(), "shifted" if f.drifted else ""] for f in ranked]
    note = f"The dashed line is {DRIFT_PSI}: above it, a distribution is said to have shifted."
    return figure(f"PSI of the {len(drawn)} most shifted features, per day", chart, note) + table(
        [*FEATURE_COLUMNS, ""], rows
    )


def _scores(report: MonitorReport) -> str:
    if not report.score_shares:
        return "<p>No score deciles: the model's evaluation has none (binary models have).</p>"
    rows = [
        (f"{label} ({trained:.0%})", seen, f"{seen:.1%}")
        for label, trained, seen in report.score_shares
    ]
    chart = svg.hbars(
        rows,
        title="Share of predictions per training score decile",
        width=760,
        refs=[(0.1, "10%")],
    )
    psi = "-" if report.score_psi is None else f"{report.score_psi:.3f}"
    return figure(
        f"Scores in the training evaluation's deciles (PSI {psi})",
        chart,
        "Decile 1 holds the highest tenth of the evaluation's scores; in brackets, each"
        " decile's share in training.",
    )


def _traffic(report: MonitorReport, days: list[str]) -> str:
    decisions = sorted({d for w in report.windows for d in w.decisions})
    shares = [
        svg.Line(
            name,
            [
                (float(i), w.decisions.get(name, 0) / w.predictions)
                for i, w in enumerate(report.windows)
            ],
            COLORS[n % len(COLORS)],
            dots=True,
        )
        for n, name in enumerate(decisions)
    ]
    latency = [
        svg.Line(
            name,
            [
                (float(i), value)
                for i, w in enumerate(report.windows)
                if (value := w.latency_ms.get(name)) is not None
            ],
            color,
            dots=True,
        )
        for name, color in (("p50", COLORS[0]), ("p99", COLORS[1]))
    ]
    charts = (
        '<div class="cards">'
        + figure(
            "Decisions per day",
            _daily(
                shares, "Decision shares per day", "share of predictions", days, y_range=(0.0, 1.0)
            ),
        )
        + figure(
            "Latency per day",
            _daily(latency, "Latency per day", "milliseconds", days),
        )
        + "</div>"
    )
    return charts + table(WINDOW_COLUMNS, [w.cells() for w in report.windows])


def _realized(report: MonitorReport, days: list[str]) -> str:
    assert report.realized is not None
    realized = report.realized
    series = [
        svg.Line(
            "realized AUC",
            [(float(days.index(o.day)), o.auc) for o in realized.by_day if o.auc is not None],
            COLORS[0],
            dots=True,
        )
    ]
    if realized.training_auc is not None and days:
        series.append(_guide("training AUC", realized.training_auc, days))
    chart = _daily(series, "Realized AUC per day", "AUC", days, width=760, y_range=(0.5, 1.0))
    rows = [o.cells() for o in [*realized.by_day, realized.overall]]
    decisions = [
        [d, f"{v['bad']:,}", f"{v['good']:,}", f"{v['pending']:,}",
         "-" if v["bad_rate"] is None else f"{float(v['bad_rate']):.2%}"]
        for d, v in realized.by_decision.items()
    ]  # fmt: skip
    return (
        figure(
            "Realized AUC per day (bad and good outcomes only)",
            chart,
            "Pending: younger than the label maturity, with no bad outcome yet.",
        )
        + table(COLUMNS, rows)
        + table(["decision", "bad", "good", "pending", "bad rate"], decisions)
    )

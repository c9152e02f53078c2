"""A table profile as one self-contained HTML page: inline CSS, inline SVG, no script.

The page opens offline (nothing is fetched: a Content-Security-Policy forbids it), and
every name and value in it is user data, so every one of them goes through ``escape``.
All CSS is scoped under ``.gm`` so that the same markup can sit inside a notebook.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape
from typing import Any

from gristmill.profile import svg
from gristmill.profile.model import ColumnProfile, TableProfile, TargetRelation

FLAGS: dict[str, tuple[str, str]] = {
    # flag: (label, css class)
    "all_missing": ("all missing", "bad"),
    "constant": ("constant", "warn"),
    "high_cardinality": ("high cardinality", "warn"),
    "candidate_key": ("candidate key", "info"),
    "leakage": ("leakage", "bad"),
    "drift": ("drift", "drift"),
}
STRENGTH = {
    "useless": "muted",
    "weak": "info",
    "medium": "ok",
    "strong": "good",
    "suspicious": "bad",
}
QUANTILES = ("p05", "p25", "p50", "p75", "p95")
MAX_TARGET_BINS = 30

CSS = """
.gm{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1f2933;background:#f4f6f8;padding:24px 28px 40px}
.gm *{box-sizing:border-box}
.gm .wrap{max-width:1200px;margin:0 auto}
.gm h1{font-size:26px;margin:0;word-break:break-word}
.gm h2{font-size:18px;margin:0 0 12px}
.gm h3{font-size:13px;margin:0 0 6px;color:#52606d;font-weight:600}
.gm .kicker{font-size:12px;text-transform:uppercase;letter-spacing:.08em;color:#7b8794}
.gm .facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px;
 margin-top:16px}
.gm .fact{background:#fff;border:1px solid #e1e5ea;border-radius:8px;padding:9px 13px}
.gm .fact b{display:block;font-size:11px;text-transform:uppercase;letter-spacing:.05em;
 color:#7b8794;font-weight:600}
.gm .fact span{font-size:18px;font-weight:600;word-break:break-word}
.gm .fact small{display:block;color:#7b8794;font-size:12px}
.gm .box{background:#fff;border:1px solid #e1e5ea;border-radius:10px;padding:18px 22px;
 margin:20px 0}
.gm table{border-collapse:collapse;width:100%;font-size:13px}
.gm th,.gm td{padding:5px 9px;border-bottom:1px solid #eef1f4;text-align:left;vertical-align:top}
.gm th{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:#7b8794;
 font-weight:600;background:#fafbfc;white-space:nowrap}
.gm .n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.gm .scroll{overflow-x:auto}
.gm .name{font-weight:600;overflow-wrap:anywhere}
.gm td.name{white-space:nowrap;max-width:280px;overflow:hidden;text-overflow:ellipsis}
.gm td.v{white-space:normal;overflow-wrap:break-word;min-width:84px;max-width:170px}
.gm a{color:#2f5f8f;text-decoration:none}
.gm a:hover{text-decoration:underline}
.gm .badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:11px;
 font-weight:600;margin:1px 3px 1px 0;background:#e4e7eb;color:#3e4c59;white-space:nowrap}
.gm .badge.bad{background:#fde8e8;color:#b42318}
.gm .badge.warn{background:#fff4d6;color:#8a5a00}
.gm .badge.info{background:#e3eefa;color:#2f5f8f}
.gm .badge.drift{background:#efe7fb;color:#6941a8}
.gm .badge.ok{background:#e2f4ef;color:#1e7a5f}
.gm .badge.good{background:#c9ecd9;color:#146c43}
.gm .badge.muted{background:#eef1f4;color:#7b8794}
.gm .badge.type{background:#eef1f4;color:#52606d;font-family:ui-monospace,Menlo,Consolas,monospace;
 font-weight:500}
.gm ul.warnings{margin:0;padding:0;list-style:none}
.gm ul.warnings li{padding:6px 0;border-bottom:1px solid #eef1f4}
.gm ul.warnings li:last-child{border-bottom:0}
.gm .muted{color:#7b8794}
.gm .mbar{display:inline-block;width:46px;height:7px;background:#eef1f4;border-radius:4px;
 margin-right:6px;vertical-align:middle;overflow:hidden}
.gm .mbar i{display:block;height:100%;background:#e45756}
.gm details.col{background:#fff;border:1px solid #e1e5ea;border-radius:10px;margin:14px 0}
.gm details.col>summary{cursor:pointer;padding:12px 20px;font-size:16px;list-style-position:inside}
.gm details.col>summary .name{font-size:16px;margin-right:8px}
.gm details.col>summary .badge{vertical-align:2px}
.gm .body{display:grid;grid-template-columns:minmax(250px,330px) minmax(0,1fr);gap:22px;
 padding:4px 20px 18px;border-top:1px solid #eef1f4}
.gm .stats td:first-child{color:#52606d;white-space:nowrap}
.gm .charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));
 gap:18px 26px;padding-top:10px;align-items:start}
.gm .row{display:flex;flex-wrap:wrap;gap:18px 30px;align-items:flex-start}
.gm .pairs{flex:1 1 280px;min-width:0}
.gm .pairs td{overflow-wrap:anywhere}
.gm figure{margin:0;max-width:100%}
.gm figcaption{font-size:12px;color:#52606d;margin:0 0 4px;font-weight:600}
.gm svg.chart{max-width:100%;height:auto;display:block}
.gm svg.chart text{font-family:inherit}
.gm .colwarn{margin:8px 0 0;padding-left:18px;color:#8a5a00;font-size:13px}
.gm .empty{color:#7b8794;font-style:italic;padding:14px 0}
.gm .woe{min-width:0}
.gm footer{color:#9aa5b1;font-size:12px;text-align:center;margin-top:26px}
@media (max-width:800px){.gm .body{grid-template-columns:1fr}}
@media print{.gm{background:#fff}.gm details.col{break-inside:avoid}}
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


# ----------------------------------------------------------------------------- formatting


def _num(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    size = abs(value)
    if value.is_integer() and size < 1e15:
        return f"{int(value):,}"
    if size >= 1e15 or size < 1e-4:
        return f"{value:.3e}"
    if size >= 1e5:
        return f"{value:,.0f}"
    if size >= 1:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.4g}"


def _axis(value: float) -> str:
    """A number on an axis: short."""
    if math.isfinite(value) and abs(value) >= 10_000:
        return svg.compact(float(f"{value:.3g}"))
    return _num(float(f"{value:.3g}")) if math.isfinite(value) else _num(value)


def fmt(value: Any) -> str:
    """A value from the profile as text (not yet escaped)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _value_label(value: Any) -> str:
    """A top value as a label: NULL and empty strings made visible."""
    if value is None:
        return "NULL"
    if isinstance(value, str) and not value.strip():
        return f"(empty: {len(value)} spaces)" if value else "(empty string)"
    return fmt(value)


def pct(part: float, whole: float) -> str:
    if not whole:
        return "—"
    share = part / whole * 100
    if 0 < share < 0.1:
        return "<0.1%"
    if 99.9 < share < 100:
        return ">99.9%"
    return f"{share:.1f}%"


def _rate(rate: float | None) -> str:
    return "—" if rate is None else pct(rate, 1.0)


def _psi(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _epoch_label(span: float) -> Any:
    def label(seconds: float) -> str:
        try:
            moment = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return _num(seconds)
        return moment.strftime("%Y-%m-%d" if span >= 2 * 86400 else "%Y-%m-%d %H:%M")

    return label


def _badges(flags: Iterable[str]) -> str:
    out = []
    for flag in flags:
        label, css = FLAGS.get(flag, (flag.replace("_", " "), ""))
        out.append(f'<span class="badge {css}">{_e(label)}</span>')
    return "".join(out)


def _anchor(index: int) -> str:
    return f"col-{index}"


# ----------------------------------------------------------------------------- sections


def _header(p: TableProfile) -> str:
    facts: list[tuple[str, str, str]] = [
        ("Rows", fmt(p.rows), ""),
        ("Columns", fmt(len(p.columns)), ""),
        ("Duplicate rows", fmt(p.duplicate_rows), pct(p.duplicate_rows, p.rows)),
        (
            "Computed on",
            "sample" if p.sampled is not None else "whole table",
            f"{p.sampled:,} rows" if p.sampled is not None else "",
        ),
        ("Computed in", f"{p.seconds:.1f} s" if p.seconds >= 0.1 else f"{p.seconds:.2f} s", ""),
    ]
    if p.target is not None:
        facts.append(("Target", p.target, f"rate {_rate(p.target_rate)}"))
    if p.time is not None:
        t = p.time
        span = f"{t.periods[0][0]} → {t.periods[-1][0]}" if t.periods else ""
        facts.append(("Time column", t.column, f"by {t.grain}; {span}"))
    if p.compared_with is not None:
        facts.append(("Compared with", p.compared_with, ""))
    cells = "".join(
        f'<div class="fact"><b>{_e(k)}</b><span>{_e(v)}</span>'
        + (f"<small>{_e(note)}</small>" if note else "")
        + "</div>"
        for k, v, note in facts
    )
    return (
        f'<header><div class="kicker">Table profile</div><h1>{_e(p.table)}</h1>'
        f'<div class="facts">{cells}</div></header>'
    )


def _warnings(p: TableProfile) -> str:
    items = [f"<li>{_e(w)}</li>" for w in p.warnings]
    if p.duplicate_rows:
        items.append(
            f'<li><span class="badge warn">duplicates</span> {p.duplicate_rows:,} duplicate '
            f"rows ({_e(pct(p.duplicate_rows, p.rows))} of the table)</li>"
        )
    index = {c.name: i for i, c in enumerate(p.columns)}

    def link(name: str) -> str:
        if name in index:
            return f'<a href="#{_anchor(index[name])}">{_e(name)}</a>'
        return _e(name)

    for flag, (label, css) in FLAGS.items():
        names = [c.name for c in p.columns if flag in c.flags]
        if flag == "candidate_key":
            names += [k for k in p.candidate_keys if k not in names]
        if names:
            items.append(
                f'<li><span class="badge {css}">{_e(label)}</span> '
                + ", ".join(link(n) for n in names)
                + "</li>"
            )
    body = f'<ul class="warnings">{"".join(items)}</ul>' if items else '<p class="muted">None.</p>'
    return f'<section class="box" id="warnings"><h2>Warnings</h2>{body}</section>'


def _overview(p: TableProfile) -> str:
    with_iv = any(c.target is not None for c in p.columns)
    with_psi = any(c.psi is not None for c in p.columns)
    head = (
        "<tr><th>#</th><th>Column</th><th>Type</th><th>Kind</th><th>Missing</th>"
        '<th class="n">Distinct</th><th class="n">Min</th><th class="n">Max</th>'
        '<th class="n">Mean</th><th>Flags</th>'
        + ('<th class="n">IV</th>' if with_iv else "")
        + ('<th class="n">PSI</th>' if with_psi else "")
        + "</tr>"
    )
    rows = []
    for i, c in enumerate(p.columns):
        total = c.count + c.missing
        share = c.missing / total * 100 if total else 0.0
        iv = ""
        if with_iv:
            iv = f'<td class="n">{_e(_num(c.target.iv)) if c.target else ""}</td>'
        psi = f'<td class="n">{_e(_psi(c.psi))}</td>' if with_psi else ""
        rows.append(
            f'<tr><td class="n muted">{i + 1}</td>'
            f'<td class="name" title="{_e(c.name)}"><a href="#{_anchor(i)}">{_e(c.name)}</a></td>'
            f'<td><span class="badge type">{_e(c.type)}</span></td><td>{_e(c.kind)}</td>'
            f'<td class="n"><span class="mbar"><i style="width:{share:.1f}%"></i></span>'
            f"{_e(pct(c.missing, total))}</td>"
            f'<td class="n">{_e(_distinct(c))}</td>'
            f'<td class="n v">{_e(_cut(fmt(c.min)))}</td><td class="n v">{_e(_cut(fmt(c.max)))}</td>'
            f'<td class="n">{_e(fmt(c.mean))}</td><td>{_badges(c.flags)}</td>{iv}{psi}</tr>'
        )
    table = f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
    if not p.columns:
        table = '<p class="empty">The table has no columns.</p>'
    return f'<section class="box" id="overview"><h2>Columns</h2><div class="scroll">{table}</div></section>'


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _distinct(c: ColumnProfile) -> str:
    return ("" if c.distinct_exact else "≈") + fmt(c.distinct)


def _stats(c: ColumnProfile) -> str:
    total = c.count + c.missing
    rows: list[tuple[str, str]] = [
        ("Count", fmt(c.count)),
        ("Missing", f"{fmt(c.missing)} ({pct(c.missing, total)})"),
        ("Distinct", f"{_distinct(c)} ({pct(c.distinct, c.count)})"),
    ]
    for label, value in (("Min", c.min), ("Max", c.max), ("Mean", c.mean), ("Std", c.std)):
        if value is not None:
            rows.append((label, fmt(value)))
    rows += [(q, fmt(c.quantiles[q])) for q in QUANTILES if q in c.quantiles]
    rows += [(q, fmt(v)) for q, v in c.quantiles.items() if q not in QUANTILES]
    if c.zeros is not None:
        rows.append(("Zeros", f"{fmt(c.zeros)} ({pct(c.zeros, c.count)})"))
    if c.negatives is not None:
        rows.append(("Negatives", f"{fmt(c.negatives)} ({pct(c.negatives, c.count)})"))
    if c.text_length:
        lengths = " / ".join(fmt(c.text_length.get(k)) for k in ("min", "mean", "max"))
        rows.append(("Length min / mean / max", lengths))
    if c.psi is not None:
        rows.append(("PSI", _psi(c.psi)))
    body = "".join(f'<tr><td>{_e(k)}</td><td class="n">{_e(v)}</td></tr>' for k, v in rows)
    return f'<table class="stats"><tbody>{body}</tbody></table>'


def _figure(caption: str, chart: str) -> str:
    return f"<figure><figcaption>{_e(caption)}</figcaption>{chart}</figure>" if chart else ""


def _histogram(c: ColumnProfile) -> str:
    h = c.histogram
    if h is None or not h.counts:
        return ""
    label: Any = _axis
    if c.kind == "temporal" and h.edges:
        label = _epoch_label(float(h.edges[-1]) - float(h.edges[0]))
    chart = svg.histogram(h.edges, h.counts, label, title=f"Histogram of {c.name}")
    return _figure("Distribution", chart)


def _top(c: ColumnProfile) -> str:
    if not c.top:
        return ""
    total = c.count + c.missing
    rows = [
        (_value_label(t.value), float(t.count), f"{t.count:,} · {pct(t.count, total)}")
        for t in c.top
    ]
    colors = [svg.BLUE] * len(rows)
    other = c.count - sum(t.count for t in c.top)
    if other > 0:
        rows.append(("(other values)", float(other), f"{other:,} · {pct(other, total)}"))
        colors.append(svg.GREY)
    vmax = max(float(t.count) for t in c.top)
    chart = svg.hbars(rows, title=f"Most frequent values of {c.name}", vmax=vmax, colors=colors)
    return _figure(f"Top {len(c.top)} values", chart)


def _target(c: ColumnProfile, t: TargetRelation, overall: float | None) -> tuple[str, str]:
    bins = t.bins[:MAX_TARGET_BINS]
    rows = [(_value_label(b.label), b.rate, f"{_rate(b.rate)} · {b.count:,} rows") for b in bins]
    colors = [svg.ORANGE if overall is not None and b.rate > overall else svg.BLUE for b in bins]
    refs = [(overall, f"overall {_rate(overall)}")] if overall is not None else []
    vmax = max([b.rate for b in bins] + [overall or 0.0]) or 1.0
    chart = svg.hbars(rows, title=f"Target rate by {c.name}", vmax=vmax, colors=colors, refs=refs)
    more = len(t.bins) - len(bins)
    caption = "Target rate per bin" + (f" (first {len(bins)} of {len(t.bins)})" if more else "")
    figure = _figure(caption, chart)
    body = "".join(
        f'<tr><td>{_e(_value_label(b.label))}</td><td class="n">{b.count:,}</td><td class="n">{b.positives:,}</td>'
        f'<td class="n">{_e(_rate(b.rate))}</td>'
        f'<td class="n">{_e("—" if b.woe is None else f"{b.woe:+.3f}")}</td></tr>'
        for b in t.bins
    )
    strength = STRENGTH.get(t.strength, "")
    table = (
        f'<div class="woe"><h3>Weight of evidence · IV {_e(_num(t.iv))} '
        f'<span class="badge {strength}">{_e(t.strength)}</span></h3>'
        '<table><thead><tr><th>Bin</th><th class="n">Rows</th><th class="n">Positives</th>'
        f'<th class="n">Rate</th><th class="n">WoE</th></tr></thead><tbody>{body}</tbody>'
        "</table></div>"
    )
    return figure, table


def _column(i: int, c: ColumnProfile, p: TableProfile) -> str:
    total = c.count + c.missing
    figures = [_histogram(c), _top(c)]
    if c.target is not None:
        figure, woe = _target(c, c.target, p.target_rate)
        figures += [figure, woe]
    charts = "".join(f for f in figures if f)
    if not charts:
        reason = "All values are missing." if c.count == 0 else "Nothing to plot for this column."
        charts = f'<p class="empty">{reason}</p>'
    iv = ""
    if c.target is not None:
        css = STRENGTH.get(c.target.strength, "")
        iv = (
            f'<span class="badge {css}">IV {_e(_num(c.target.iv))} · {_e(c.target.strength)}</span>'
        )
    warnings = "".join(f"<li>{_e(w)}</li>" for w in c.warnings)
    return (
        f'<details class="col" id="{_anchor(i)}" open><summary>'
        f'<span class="name">{_e(c.name)}</span><span class="badge type">{_e(c.type)}</span>'
        f'<span class="badge muted">{_e(c.kind)}</span>{_badges(c.flags)}{iv}'
        f'<span class="muted" style="font-size:12px;margin-left:6px">'
        f"{_e(pct(c.missing, total))} missing</span></summary>"
        f'<div class="body"><div>{_stats(c)}'
        + (f'<ul class="colwarn">{warnings}</ul>' if warnings else "")
        + f'</div><div class="charts">{charts}</div></div></details>'
    )


def _correlations(p: TableProfile) -> str:
    names = list(p.correlations)
    if len(names) < 2:
        return ""

    def value(a: str, b: str) -> float | None:
        v = p.correlations.get(a, {}).get(b)
        if v is None:
            v = p.correlations.get(b, {}).get(a)
        return 1.0 if v is None and a == b else v

    chart = svg.heatmap(names, value, title="Pearson correlations between numeric columns")
    pairs = [
        (abs(v), a, b, v)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        if (v := value(a, b)) is not None and math.isfinite(v)
    ]
    pairs.sort(reverse=True)
    strong = "".join(
        f'<tr><td>{_e(a)}</td><td>{_e(b)}</td><td class="n">{v:+.3f}</td></tr>'
        for _, a, b, v in pairs[:10]
    )
    side = (
        '<div class="pairs"><h3>Strongest pairs</h3><table><thead><tr>'
        f'<th>Column</th><th>Column</th><th class="n">r</th></tr></thead><tbody>{strong}</tbody>'
        "</table></div>"
        if strong
        else ""
    )
    return (
        '<section class="box" id="correlations"><h2>Correlations</h2>'
        '<div class="row">'
        f"<figure>{chart}</figure>{side}</div></section>"
    )


def _drift(p: TableProfile) -> str:
    t = p.time
    with_psi = sorted((c for c in p.columns if c.psi is not None), key=lambda c: -(c.psi or 0.0))
    if t is None and not with_psi:
        return ""
    parts = ['<section class="box" id="time">']
    if t is not None:
        parts.append(f"<h2>Rows per {_e(t.grain)} of {_e(t.column)}</h2>")
        points = [(period, float(rows)) for period, rows in t.periods]
        chart = svg.timeline(points, title=f"Rows per {t.grain}", highlight=(t.first, t.last))
        parts.append(chart or '<p class="empty">No periods.</p>')
    if with_psi:
        against = f"{t.first} vs {t.last}" if t is not None else f"vs {p.compared_with or '?'}"
        colors = [
            svg.ORANGE if (c.psi or 0) >= 0.25 else "#f2b447" if (c.psi or 0) >= 0.1 else svg.BLUE
            for c in with_psi
        ]
        rows = [(c.name, float(c.psi or 0.0), _psi(c.psi)) for c in with_psi]
        chart = svg.hbars(
            rows,
            title="Population stability index per column",
            width=640,
            colors=colors,
            refs=[(0.1, "0.1"), (0.25, "0.25")],
        )
        parts.append(
            f'<h2 style="margin-top:18px">Drift (PSI, {_e(against)})</h2>{chart}'
            '<p class="muted" style="font-size:12px">PSI under 0.1: stable; 0.1 to 0.25: '
            "moderate shift; over 0.25: major shift.</p>"
        )
    parts.append("</section>")
    return "".join(parts)


def render_html(profile: TableProfile) -> str:
    """The profile as one HTML document that needs nothing from the network."""
    p = profile
    columns = "".join(_column(i, c, p) for i, c in enumerate(p.columns))
    if p.rows == 0:
        columns = '<p class="empty">The table has no rows.</p>' + columns
    body = (
        _header(p)
        + _warnings(p)
        + _overview(p)
        + _correlations(p)
        + _drift(p)
        + '<h2 style="margin-top:26px">Column details</h2>'
        + columns
        + "<footer>Profiled by gristmill</footer>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Profile of {_e(p.table)}</title><style>{CSS}</style></head>"
        f'<body style="margin:0"><div class="gm"><div class="wrap">{body}</div></div></body></html>'
    )

"""Parts of the self-contained HTML reports (model evaluation, monitoring): a figure, a
section, a table, and the page around them, with the profile report's look (its CSS,
scoped under ``.gm``) and rules: it opens offline (a Content-Security-Policy forbids
fetching anything), and every name and value goes through ``escape``, since feature
names and labels are data."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from gristmill.profile.report import CSP, CSS


def e(value: object) -> str:
    """`value` as HTML text."""
    return escape(str(value), quote=True)


def figure(caption: str, chart: str, note: str = "") -> str:
    if not chart:
        return ""
    extra = f'<p class="note">{e(note)}</p>' if note else ""
    return f"<figure><figcaption>{e(caption)}</figcaption>{chart}{extra}</figure>"


def box(title: str, body: str, anchor: str) -> str:
    return f'<section class="box" id="{anchor}"><h2>{e(title)}</h2>{body}</section>'


def table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    def cell(tag: str, i: int, text: str) -> str:
        css = ' class="n"' if i >= numeric_from else ""
        return f"<{tag}{css}>{e(text)}</{tag}>"

    header = "".join(cell("th", i, h) for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f'<div class="scroll"><table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>'


def page(title: str, body: str, extra_css: str = "") -> str:
    """One HTML document that needs nothing from the network."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{CSS}{extra_css}</style></head>"
        f'<body style="margin:0"><div class="gm"><div class="wrap">{body}</div></div></body></html>'
    )

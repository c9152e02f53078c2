"""The HTML report of a profile: one offline document, escaped, and charts that render.

The last tests open the page in headless Chromium (Debian's `chromium` package) with no
network and check the laid-out DOM and a screenshot. They skip when no Chromium is
installed, unless the environment variable CI is set: there a missing browser fails.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from gristmill.profile.model import (
    ColumnProfile,
    Histogram,
    TableProfile,
    TargetBin,
    TargetRelation,
    TimeProfile,
    TopValue,
)
from gristmill.profile.report import render_html

XSS = "<script>alert(1)</script>"


def sample_profile() -> TableProfile:
    """A realistic profile: numbers with a target, text, time, NULL-only, unicode, XSS."""
    amount = ColumnProfile(
        name="amount",
        type="DOUBLE",
        kind="numeric",
        count=9_800,
        missing=200,
        distinct=8_113,
        distinct_exact=False,
        min=-12.5,
        max=4_980.0,
        mean=412.37,
        std=380.2,
        quantiles={"p05": 12.0, "p25": 95.5, "p50": 310.0, "p75": 640.25, "p95": 1_210.0},
        zeros=31,
        negatives=7,
        histogram=Histogram(
            edges=[-12.5 + i * 499.25 for i in range(11)],
            counts=[3100, 2900, 1700, 900, 550, 300, 180, 90, 50, 30],
        ),
        target=TargetRelation(
            bins=[
                TargetBin("[-12.5, 95.5)", 2450, 120, 120 / 2450, 0.62),
                TargetBin("[95.5, 310)", 2450, 190, 190 / 2450, 0.12),
                TargetBin("[310, 640.25)", 2450, 260, 260 / 2450, -0.21),
                TargetBin("[640.25, 4980]", 2450, 410, 410 / 2450, -0.73),
                TargetBin("NULL", 200, 20, 0.1, None),
            ],
            iv=0.27,
            strength="medium",
            auc=0.64,
        ),
        psi=0.04,
    )
    country = ColumnProfile(
        name="country",
        type="VARCHAR",
        kind="text",
        count=10_000,
        missing=0,
        distinct=4,
        distinct_exact=True,
        min="DE",
        max="US",
        top=[
            TopValue("US", 5200),
            TopValue("DE", 2600),
            TopValue(XSS, 1500),
            TopValue("", 600),
        ],
        text_length={"min": 0.0, "mean": 3.1, "max": 25.0},
        target=TargetRelation(
            bins=[
                TargetBin("US", 5200, 500, 500 / 5200, 0.08),
                TargetBin("DE", 2600, 300, 300 / 2600, -0.1),
                TargetBin(XSS, 1500, 160, 160 / 1500, -0.04),
                TargetBin("", 600, 40, 40 / 600, 0.35),
            ],
            iv=0.012,
            strength="useless",
            auc=0.53,
        ),
        psi=0.31,
        flags=["drift"],
        warnings=["PSI 0.31 between 2024-01 and 2024-06: the mix of countries moved"],
    )
    start = 1_704_067_200  # 2024-01-01
    created = ColumnProfile(
        name="created_at",
        type="TIMESTAMP",
        kind="temporal",
        count=10_000,
        missing=0,
        distinct=9_990,
        distinct_exact=False,
        min="2024-01-01 00:03:11",
        max="2024-06-30 23:58:40",
        quantiles={"p05": "2024-01-10", "p50": "2024-04-02", "p95": "2024-06-22"},
        histogram=Histogram(
            edges=[start + i * 18 * 86400 for i in range(11)],
            counts=[800, 850, 900, 950, 1000, 1000, 1050, 1100, 1150, 1200],
        ),
    )
    empty = ColumnProfile(
        name="legacy_code",
        type="VARCHAR",
        kind="text",
        count=0,
        missing=10_000,
        distinct=0,
        distinct_exact=True,
        flags=["all_missing", "constant"],
    )
    unicode_col = ColumnProfile(
        name="prix_€_日本語",
        type="DECIMAL(10,2)",
        kind="numeric",
        count=10_000,
        missing=0,
        distinct=10_000,
        distinct_exact=True,
        min="0.50",
        max="99.99",
        mean=50.1,
        std=28.7,
        histogram=Histogram(edges=[0.5, 25.0, 50.0, 75.0, 100.0], counts=[2500, 2480, 2520, 2500]),
        flags=["candidate_key", "high_cardinality"],
    )
    xss_col = ColumnProfile(
        name=XSS,
        type="INTEGER",
        kind="numeric",
        count=10_000,
        missing=0,
        distinct=2,
        distinct_exact=True,
        min=0,
        max=1,
        mean=0.1,
        top=[TopValue(0, 9000), TopValue(1, 1000)],
        flags=["leakage"],
    )
    months = ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"]
    return TableProfile(
        table="main.orders",
        rows=10_000,
        columns=[amount, country, created, empty, unicode_col, xss_col],
        duplicate_rows=12,
        correlations={
            "amount": {"amount": 1.0, "prix_€_日本語": 0.42, XSS: -0.35},
            "prix_€_日本語": {"amount": 0.42, "prix_€_日本語": 1.0, XSS: None},
            XSS: {"amount": -0.35, "prix_€_日本語": None, XSS: 1.0},
        },
        candidate_keys=["prix_€_日本語"],
        warnings=["country drifted between 2024-01 and 2024-06 (PSI 0.31)"],
        target="churned",
        target_rate=0.1,
        time=TimeProfile(
            column="created_at",
            grain="month",
            periods=list(zip(months, [1500, 1580, 1620, 1700, 1750, 1850], strict=True)),
            first="2024-01",
            last="2024-06",
        ),
        sampled=None,
        seconds=1.84,
    )


def empty_profile() -> TableProfile:
    """A table with no rows: every column all missing, nothing to plot."""
    column = ColumnProfile("id", "BIGINT", "numeric", 0, 0, 0, True)
    return TableProfile("empty", 0, [column], 0, {}, [])


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser


def test_one_offline_document() -> None:
    page = sample_profile().to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<html") == 1 and page.rstrip().endswith("</html>")
    tags = _parse(page).tags
    names = [tag for tag, _ in tags]
    assert "script" not in names and "link" not in names and "img" not in names
    assert "iframe" not in names and "object" not in names
    for tag, attrs in tags:
        assert "src" not in attrs, tag
        href = attrs.get("href")
        assert href is None or href.startswith("#"), (tag, href)
    # No network address anywhere in the page's own markup, CSS or SVG.
    assert "http://" not in page and "https://" not in page
    assert "url(" not in page and "@import" not in page
    # Every in-page link points at an element that exists.
    ids = {attrs["id"] for _, attrs in tags if attrs.get("id")}
    links = [attrs.get("href") or "" for _, attrs in tags]
    for link in links:
        assert not link or link[1:] in ids, link


def test_user_data_is_escaped() -> None:
    page = render_html(sample_profile())
    assert XSS not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    parsed = _parse(page)
    assert "script" not in [tag for tag, _ in parsed.tags]
    assert XSS in "".join(parsed.text)  # it reads as text
    assert "prix_€_日本語" in page


def test_sections_and_values() -> None:
    page = render_html(sample_profile())
    for text in (
        "main.orders",
        "Warnings",
        "Duplicate rows",
        "churned",
        "≈8,113",  # distinct is approximate
        "p05",
        "p95",
        "IV 0.27",
        "medium",
        "all missing",
        "candidate key",
        "leakage",
        "drift",
        "Correlations",
        "Rows per month of created_at",
        "Drift (PSI, 2024-01 vs 2024-06)",
        "(empty string)",
        "All values are missing.",
        "Length min / mean / max",
    ):
        assert text in page, text
    # Temporal histogram edges (epoch seconds) show as dates.
    assert "2024-01-01" in page and "2024-06-29" in page
    # WoE column, with a dash for the bin without one.
    woe = page.split("Weight of evidence")[1].split("</table>")[0]
    assert "+0.620" in woe and "-0.730" in woe and '<td class="n">—</td>' in woe
    # One card per column, all with their own anchor.
    assert page.count('<details class="col"') == 6
    # Charts: histograms, top values, target rates, heatmap, timeline, PSI.
    assert page.count("<svg") >= 9


def test_empty_cases() -> None:
    page = render_html(empty_profile())
    assert "The table has no rows." in page
    assert "All values are missing." in page
    assert "<svg" not in page
    nothing = TableProfile("t", 0, [], 0, {}, [])
    assert "The table has no columns." in render_html(nothing)
    # A histogram of one bin, a constant column, and a NULL top value.
    constant = ColumnProfile(
        "c",
        "INTEGER",
        "numeric",
        5,
        0,
        1,
        True,
        min=7,
        max=7,
        histogram=Histogram([7.0, 7.0], [5]),
        top=[TopValue(None, 5)],
    )
    page = render_html(TableProfile("t", 5, [constant], 4, {"c": {"c": None}}, []))
    assert "<rect" in page and "NULL" in page


# ----------------------------------------------------------------------------- Chromium


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    message = "no chromium binary on PATH"
    if os.environ.get("CI"):
        pytest.fail(f"{message}, and CI is set: install it with `apt-get install -y chromium`.")
    pytest.skip(f"{message}; install Debian's package with `apt-get install -y chromium`.")


def _run_chromium(binary: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


# A script the test adds (the report has none): after layout it writes the size of
# each chart and the number of its painted shapes into the DOM that --dump-dom prints.
MEASURE = """<script>
addEventListener('load', () => {
  const out = [...document.querySelectorAll('svg.chart')].map(s => {
    const r = s.getBoundingClientRect();
    const shapes = [...s.querySelectorAll('rect,path,circle')]
      .filter(e => { const b = e.getBBox(); return b.width > 0 || b.height > 0; }).length;
    return [Math.round(r.width), Math.round(r.height), shapes].join(',');
  });
  const pre = document.createElement('pre');
  pre.id = 'measured';
  pre.textContent = out.join(';');
  document.body.appendChild(pre);
});
</script>"""


def test_charts_render_in_chromium(tmp_path: Path) -> None:
    binary = _chromium()
    page = render_html(sample_profile())
    # The report's CSP forbids scripts; the test page drops it to measure the layout.
    measured = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    measured = measured.replace("</body>", MEASURE + "</body>")
    file = tmp_path / "report.html"
    file.write_text(measured, encoding="utf-8")

    done = _run_chromium(
        binary, tmp_path, "--virtual-time-budget=2000", "--dump-dom", file.as_uri()
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "<svg" in dom and "<rect" in dom and "<path" in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    found = re.search(r'<pre id="measured">([^<]*)</pre>', dom)
    assert found, "the measuring script did not run"
    charts = [tuple(int(v) for v in item.split(",")) for item in found.group(1).split(";")]
    assert len(charts) == page.count("<svg")
    for width, height, shapes in charts:
        assert width > 100 and height > 20 and shapes > 0, charts


def test_screenshot_is_not_blank(tmp_path: Path) -> None:
    binary = _chromium()
    file = tmp_path / "report.html"
    file.write_text(render_html(sample_profile()), encoding="utf-8")
    png = tmp_path / "report.png"
    done = _run_chromium(
        binary, tmp_path, f"--screenshot={png}", "--window-size=1280,1800", file.as_uri()
    )
    assert png.exists(), done.stderr[-2000:]
    pixels = _decode_png(png.read_bytes())
    assert pixels.shape[:2] == (1800, 1280)
    rgb = pixels[:, :, :3].astype(np.int16)
    ink = (rgb.max(axis=2) - rgb.min(axis=2) > 40) | (rgb.max(axis=2) < 200)
    # Text and charts: a fair share of the page is painted, and some of it in colour.
    assert ink.mean() > 0.02
    blue = (rgb[:, :, 2] - rgb[:, :, 0] > 60) & (rgb[:, :, 0] < 120)  # the bars' #4c78a8
    assert blue.sum() > 2000


def _decode_png(data: bytes) -> np.ndarray:
    """A non-interlaced 8-bit RGB(A) PNG as an array, with the stdlib's zlib and numpy."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
    bpp = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8)
    raw = raw.reshape(height, width * bpp + 1)
    out = np.zeros((height, width * bpp), dtype=np.uint8)
    previous = np.zeros(width * bpp, dtype=np.uint8)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:]
        if kind == 0:
            row = line.copy()
        elif kind == 1:  # Sub: a running sum per channel
            row = np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint64)
            row = (row % 256).astype(np.uint8).reshape(-1)
        elif kind == 2:  # Up
            row = line + previous
        else:  # Average, Paeth: each byte needs the one decoded before it
            row = _unfilter_slow(int(kind), line, previous, bpp)
        out[y] = row
        previous = row
    return out.reshape(height, width, bpp)


def _unfilter_slow(kind: int, line: np.ndarray, previous: np.ndarray, bpp: int) -> np.ndarray:
    cur = bytearray(line.tobytes())
    up = previous.tobytes()
    for i in range(len(cur)):
        a = cur[i - bpp] if i >= bpp else 0
        b = up[i]
        if kind == 3:
            cur[i] = (cur[i] + (a + b) // 2) & 0xFF
        elif kind == 4:
            c = up[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            cur[i] = (cur[i] + pred) & 0xFF
        else:
            raise AssertionError(f"unknown PNG filter {kind}")
    return np.frombuffer(bytes(cur), dtype=np.uint8)

"""`gristmill monitor`: its figures against a brute-force computation over the same
predictions (numpy quantiles, bins and PSI by hand), on a prediction log written here:
two days, the second one drifted, with missing and stale values, another model's
predictions, an old one, and a line cut short."""

from __future__ import annotations

import bisect
import json
import math
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from gristmill.cli.main import app as cli
from gristmill.monitor import monitor
from gristmill.project import Project
from tests.helpers import psi_by_hand


@pytest.fixture
def project(built_quickstart: Path, tmp_path: Path) -> Path:
    root = tmp_path / "demo"
    shutil.copytree(built_quickstart, root)
    shutil.rmtree(root / ".gristmill" / "predictions", ignore_errors=True)
    with Project.load(root) as p:
        p.warehouse.execute("DROP TABLE IF EXISTS raw.predictions")
    return root


def _plain(value: Any) -> Any:
    return float(value) if hasattr(value, "as_tuple") else value


def write_log(root: Path, records: list[dict[str, Any]], tail: bytes = b"") -> None:
    folder = root / ".gristmill" / "predictions"
    folder.mkdir(parents=True, exist_ok=True)
    lines = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    (folder / "2026-12-01.jsonl").write_bytes(lines + tail)


def record(features: dict[str, Any], at: datetime, i: int, **extra: Any) -> dict[str, Any]:
    return {
        "prediction_id": uuid.uuid4().hex,
        "logged_at": at.isoformat(),
        "model": "fraud",
        "version": 1,
        "alias": "champion",
        "policy_version": "p",
        "request": "{}",
        "features": json.dumps({k: _plain(v) for k, v in features.items()}),
        "score": (i % 97) / 97,
        "scores": None,
        "decision": "decline" if i % 97 > 80 else "approve",
        "stale_features": json.dumps({"tx_count_1h": 9_000} if i % 10 == 0 else {}),
        "latency_ms": 1.0 + (i % 13) * 0.5,
        **extra,
    }


def exact_quantile(values: list[Any], fraction: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default, the SQL's
    quantile_cont), in exact arithmetic, then the nearest double."""
    ordered = sorted(Fraction(str(v)) for v in values)
    position = Fraction(str(fraction)) * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (position - low) * (ordered[high] - ordered[low]))


def reference_psi(training: list[Any], logged: list[Any], numeric: bool) -> float:
    """PSI by hand: deciles of a number with more than ten values, else the ten most
    frequent values and a bin for the rest; a bin for missing values; shares floored at
    0.0001."""
    present = [v for v in training if v is not None]
    if numeric and len(set(present)) > 10:
        edges = sorted({exact_quantile(present, i / 10) for i in range(1, 10)})

        def label(v: Any) -> str:
            return "missing" if v is None else str(bisect.bisect_right(edges, float(v)))

    else:
        top = [v for v, _ in sorted(Counter(present).items(), key=lambda kv: (-kv[1], kv[0]))][:10]

        def label(v: Any) -> str:
            return "missing" if v is None else (str(v) if v in top else "other")

    return psi_by_hand(Counter(map(label, training)), Counter(map(label, logged)))


def drifted_log(root: Path) -> dict[str, Any]:
    """1,200 predictions over two days, from the training set's rows; the second day's
    amounts and kinds drifted, some values missing, every tenth stale; plus another
    model's prediction, an old one and a line cut short."""
    with Project.load(root) as p:
        meta = p.registry.get("fraud", "champion").metadata
        training = p.warehouse.query_arrow("SELECT * FROM analytics.fraud_training").to_pylist()
    features = meta["features"]
    now = datetime.now(UTC)
    days = [now - timedelta(days=1), now - timedelta(minutes=5)]
    records, logged_rows = [], []
    for i in range(1200):
        row = training[(i * 7) % len(training)]
        values = {f: row[f] for f in features}
        second = i >= 600
        if second:  # the second day drifts: larger amounts, one kind only
            values["amount"] = None if i % 50 == 0 else float(values["amount"]) * 7 + 1000
            values["kind"] = "payment"
        if i % 25 == 0:
            values["devices_24h"] = None
        logged_rows.append((1 if second else 0, values))
        records.append(record(values, days[1 if second else 0], i))
    others = [
        record({f: training[0][f] for f in features}, now, 1, model="churn"),
        record({f: training[0][f] for f in features}, now - timedelta(days=30), 2),
    ]
    write_log(root, records + others, tail=b'{"prediction_id": "cut-sh')
    return {
        "meta": meta,
        "training": training,
        "days": days,
        "records": records,
        "logged_rows": logged_rows,
    }


def test_figures_match_a_brute_force_computation(project: Path) -> None:
    made = drifted_log(project)
    meta, training, days = made["meta"], made["training"], made["days"]
    records, logged_rows = made["records"], made["logged_rows"]
    with Project.load(project) as p:
        report = monitor(p, "fraud", since="7d")
    assert report.predictions == 1200 and report.versions == {1: 1200}
    by_name = {f.name: f for f in report.features}
    for name, numeric in (("amount", True), ("kind", False), ("devices_24h", True)):
        column = [r[name] for r in training]
        every = [v[name] for _, v in logged_rows]
        assert by_name[name].psi == pytest.approx(
            reference_psi(column, every, numeric), rel=1e-9
        ), name
        for day, moment in enumerate(days):
            those = [v[name] for d, v in logged_rows if d == day]
            assert by_name[name].psi_by_day[moment.date().isoformat()] == pytest.approx(
                reference_psi(column, those, numeric), rel=1e-9
            )
    assert by_name["amount"].drifted and by_name["kind"].drifted
    assert not by_name["tx_count_7d"].drifted
    assert by_name["amount"].missing_share == pytest.approx(12 / 1200)
    assert by_name["devices_24h"].missing_share == pytest.approx(48 / 1200)
    assert by_name["tx_count_1h"].stale_share == pytest.approx(0.1)
    assert by_name["amount"].stale_share == 0.0

    first, second = report.windows
    assert (first.predictions, second.predictions) == (600, 600)
    latencies = np.array([1.0 + (i % 13) * 0.5 for i in range(600)])
    assert first.latency_ms["p99"] == pytest.approx(np.quantile(latencies, 0.99), abs=1e-3)
    assert first.decisions == Counter(r["decision"] for r in records[:600])
    deciles = sorted(meta["metrics"]["deciles"], key=lambda d: d["decile"])
    bounds = [d["min_score"] for d in deciles[:-1]]

    def decile(score: float) -> int:
        return next((i for i, b in enumerate(bounds) if score >= b), len(bounds))

    scores = Counter(decile(r["score"]) for r in records)
    trained = Counter({i: round(d["count"]) for i, d in enumerate(deciles)})
    assert report.score_psi == pytest.approx(psi_by_hand(trained, scores), rel=1e-9)


def test_the_command_line(project: Path) -> None:
    def gristmill(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "gristmill", *args, "-p", str(project)]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    missing = gristmill("monitor", "fraud")
    assert missing.returncode == 1 and "No prediction of fraud is logged" in missing.stderr
    unknown = gristmill("monitor", "frad")
    assert unknown.returncode != 0 and "Did you mean 'fraud'" in unknown.stderr
    assert "Traceback" not in missing.stderr + unknown.stderr

    runner = CliRunner()

    with Project.load(project) as p:
        training = p.warehouse.query_arrow("SELECT * FROM analytics.fraud_training LIMIT 50")
        features = p.registry.get("fraud", "champion").metadata["features"]
    now = datetime.now(UTC) - timedelta(minutes=1)
    rows = training.to_pylist()
    write_log(project, [record({f: r[f] for f in features}, now, i) for i, r in enumerate(rows)])
    said = runner.invoke(cli, ["monitor", "fraud", "--json", "-p", str(project)])
    assert said.exit_code == 0, said.output
    document = json.loads(said.output)
    assert document["predictions"] == 50 and document["versions"] == {"1": 50}
    assert any("Only 50 predictions" in w for w in document["warnings"])
    shown = runner.invoke(cli, ["monitor", "fraud", "--since", "1h", "-p", str(project)])
    assert shown.exit_code == 0 and "Inputs" in shown.output, shown.output


def test_alerts_exit_1_and_reach_the_webhook(project: Path) -> None:
    import http.server
    import threading

    received: list[dict[str, Any]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    spec = project / "models" / "fraud.py"
    text = spec.read_text()
    assert "alerts=Alerts(psi=0.25, score_psi=0.25)" in text
    spec.write_text(
        text.replace(
            "alerts=Alerts(psi=0.25, score_psi=0.25)",
            "alerts=Alerts(psi=0.25, missing=0.03, latency_p99_ms=1_000, min_predictions=100,"
            f" webhook={url!r})",
        )
    )
    drifted_log(project)
    runner = CliRunner()
    try:
        said = runner.invoke(cli, ["monitor", "fraud", "--json", "-p", str(project)])
        assert said.exit_code == 1, said.output
        alerts = {(a["alert"], a["subject"]) for a in json.loads(said.output)["alerts"]}
        assert {("psi", "amount"), ("psi", "kind"), ("missing", "devices_24h")} <= alerts
        assert ("missing", "amount") not in alerts  # 1% missing: under 3%
        assert not any(a == "latency_p99_ms" for a, _ in alerts)
        assert len(received) == 1 and received[0]["model"] == "fraud"
        assert {(a["alert"], a["subject"]) for a in received[0]["alerts"]} == alerts
    finally:
        server.shutdown()
        server.server_close()
    # The webhook gone: said, and the exit code still 1.
    shown = runner.invoke(cli, ["monitor", "fraud", "-p", str(project)])
    assert shown.exit_code == 1
    assert "alert:" in shown.output and "webhook could not be reached" in shown.output


def test_without_alerts_drift_is_reported_and_exits_0(project: Path) -> None:
    spec = project / "models" / "fraud.py"
    spec.write_text(spec.read_text().replace("alerts=Alerts(psi=0.25, score_psi=0.25),", ""))
    drifted_log(project)
    said = CliRunner().invoke(cli, ["monitor", "fraud", "--json", "-p", str(project)])
    assert said.exit_code == 0, said.output
    document = json.loads(said.output)
    assert "amount" in document["drifted"] and document["alerts"] == []

    # The server's /metrics shows what monitor found, as gauges.
    from starlette.testclient import TestClient

    from gristmill.serve.app import create_app

    with TestClient(create_app(Project.load(project))) as api:
        page = api.get("/metrics").text
    amount = next(f for f in document["features"] if f["name"] == "amount")
    line = next(
        line
        for line in page.splitlines()
        if line.startswith("gristmill_monitor_feature_psi{") and 'feature="amount"' in line
    )
    assert float(line.split()[-1]) == pytest.approx(amount["psi"])
    assert 'gristmill_monitor_predictions{model="fraud"} 1200.0' in page


def test_the_html_report_renders_offline_in_chromium(project: Path, tmp_path: Path) -> None:
    import re

    from tests.profile.test_report import MEASURE, _chromium, _decode_png, _run_chromium

    binary = _chromium()
    drifted_log(project)
    html = tmp_path / "monitor.html"
    said = CliRunner().invoke(cli, ["monitor", "fraud", "--html", str(html), "-p", str(project)])
    assert said.exit_code == 1, said.output  # the quickstart spec alerts on PSI > 0.25
    page = html.read_text()
    assert "Content-Security-Policy" in page and "<script" not in page
    assert "amount shifted from the training set" in page
    measured = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    (tmp_path / "measured.html").write_text(measured.replace("</body>", MEASURE + "</body>"))
    done = _run_chromium(
        binary,
        tmp_path,
        "--virtual-time-budget=2000",
        "--dump-dom",
        (tmp_path / "measured.html").as_uri(),
    )
    found = re.search(r'<pre id="measured">([^<]*)</pre>', done.stdout)
    assert found, done.stderr[-2000:]
    charts = [tuple(int(v) for v in item.split(",")) for item in found.group(1).split(";")]
    assert len(charts) == page.count("<svg") == 4
    assert all(w > 100 and h > 20 and shapes > 0 for w, h, shapes in charts), charts
    png = tmp_path / "monitor.png"
    _run_chromium(binary, tmp_path, f"--screenshot={png}", "--window-size=1280,1400", html.as_uri())
    rgb = _decode_png(png.read_bytes())[:, :, :3].astype(np.int16)
    blue = (rgb[:, :, 2] - rgb[:, :, 0] > 60) & (rgb[:, :, 0] < 120)
    assert blue.sum() > 500  # the lines and bars are painted


def _with_labels(root: Path) -> None:
    spec = root / "models" / "fraud.py"
    spec.write_text(
        spec.read_text().replace(
            "    policy=Policy(",
            '    labels="raw.outcomes",\n    label_key=["transaction_id"],\n'
            '    label_maturity="30d",\n    policy=Policy(',
        )
    )


def test_realized_performance_against_sklearn_with_maturing_labels(project: Path) -> None:
    from sklearn.metrics import roc_auc_score

    _with_labels(project)
    with Project.load(project) as p:
        meta = p.registry.get("fraud", "champion").metadata
        training = p.warehouse.query_arrow("SELECT * FROM analytics.fraud_training LIMIT 1000")
    features = meta["features"]
    rows = training.to_pylist()
    now = datetime.now(UTC)
    old, young = now - timedelta(days=40), now - timedelta(days=5)
    records, outcomes, truth = [], [], []
    for i, row in enumerate(rows):
        at = old if i < 600 else young
        score = ((i * 37) % 101) / 101
        record_ = record({f: row[f] for f in features}, at, i, score=score)
        record_["request"] = json.dumps({"transaction_id": 10_000 + i})
        records.append(record_)
        bad = ((i * 37) % 101 > 60 and i % 3 != 0) or i % 17 == 0  # related to the score
        if i % 5 != 0:  # every fifth has no outcome row at all
            outcomes.append((10_000 + i, bad))
        known_bad = bad and i % 5 != 0
        status = 1 if known_bad else (0 if at == old else None)
        truth.append((at.date().isoformat(), score, status, record_["decision"]))
    write_log(project, records)
    with Project.load(project) as p:
        p.warehouse.execute("CREATE TABLE raw.outcomes (transaction_id BIGINT, is_bad BOOLEAN)")
        p.warehouse.execute(
            "INSERT INTO raw.outcomes VALUES "
            + ", ".join(f"({k}, {str(b).lower()})" for k, b in outcomes)
        )
        report = monitor(p, "fraud", since="60d")
    realized = report.realized
    assert realized is not None
    page = report.to_html()
    assert "Realized performance" in page and page.count("<svg") == 5

    def expected(rows_: list[tuple[str, float, int | None, str]]) -> tuple[Any, ...]:
        known = [(s, y) for _, s, y, _ in rows_ if y is not None]
        ys = [y for _, y in known]
        counts = (sum(ys), len(ys) - sum(ys), len(rows_) - len(known))
        if not 0 < sum(ys) < len(ys):
            return (*counts, None, None)
        scores = np.array([s for s, _ in known])
        labels_ = np.array(ys)
        ks = max(
            abs((scores[labels_ == 1] <= t).mean() - (scores[labels_ == 0] <= t).mean())
            for t in np.unique(scores)
        )
        return (*counts, roc_auc_score(ys, [s for s, _ in known]), ks)

    def found(o: Any) -> tuple[Any, ...]:
        return (o.bad, o.good, o.pending, o.auc, o.ks)

    bad, good, pending, auc, ks = expected(truth)
    assert found(realized.overall)[:3] == (bad, good, pending)
    assert realized.overall.auc == pytest.approx(auc, rel=1e-9)
    assert realized.overall.ks == pytest.approx(ks, rel=1e-9)
    for day in realized.by_day:
        those = [t for t in truth if t[0] == day.day]
        want = expected(those)
        assert found(day)[:3] == want[:3]
        assert (day.auc is None) == (want[3] is None)
        if want[3] is not None:
            assert day.auc == pytest.approx(want[3], rel=1e-9)
    young_day = next(d for d in realized.by_day if d.day == young.date().isoformat())
    assert young_day.good == 0 and young_day.pending > 0  # no news is not good news yet
    decline = realized.by_decision.get("decline")
    assert decline is not None
    assert decline["bad"] == sum(1 for t in truth if t[3] == "decline" and t[2] == 1)

    # An outcome that arrives later: a pending prediction (5 days old) becomes bad, and so
    # does one past the maturity that counted as good.
    pending_id = next(10_000 + i for i, t in enumerate(truth) if t[2] is None)
    good_id = next(10_000 + i for i, t in enumerate(truth) if t[2] == 0)
    with Project.load(project) as p:
        p.warehouse.execute(
            f"INSERT INTO raw.outcomes VALUES ({pending_id}, true), ({good_id}, true)"
        )
        later = monitor(p, "fraud", since="60d").realized
    assert later is not None
    assert later.overall.bad == bad + 2
    assert later.overall.pending == pending - 1 and later.overall.good == good - 1

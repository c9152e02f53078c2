"""`gristmill monitor`'s drift figures on a large prediction log, against Evidently.

    .venv/bin/python benchmarks/monitor_drift.py [--rows 10000000] [--features 30]

A DuckDB warehouse gets a training set (1,000,000 rows) and a prediction log of `--rows`
predictions (their features as JSON, as `gristmill serve` logs them), `--features`
features: two thirds numbers, a third categories; the log's second half drifts on some of
them. Timed, each in a process of its own (wall seconds, peak RSS):

- gristmill: the monitor's work in the warehouse (the features out of the JSON, every
  feature's training bins, PSI overall and per day, missing shares), over all the rows;
- Evidently (its `psi` stat test, in a virtualenv of its own: it needs pandas < 3) over
  1,000,000 logged rows against the training set, for the ratio.

The figures are compared on the same bins: the categories as they are, and the numbers
by the bin each value falls in (gristmill's deciles of the training set; Evidently's own
numeric PSI bins the two samples together into Sturges' histogram, another figure).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import measure

ROOT = Path(__file__).resolve().parent.parent
EVIDENTLY_VENV = ROOT / ".venv-evidently"
EVIDENTLY = ["evidently==0.7.23", "pandas<3", "pyarrow"]
TRAINING_ROWS = 1_000_000
EVIDENTLY_ROWS = 1_000_000


def evidently_python() -> Path:
    python = EVIDENTLY_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *EVIDENTLY], check=True)
    return python


def build(folder: Path, rows: int, features: int) -> None:
    """The project: gristmill.toml, the training set and the prediction log."""
    import duckdb

    (folder / "gristmill.toml").write_text('name = "bench"\n')
    (folder / ".gristmill").mkdir()
    db = duckdb.connect(str(folder / ".gristmill" / "warehouse.duckdb"))
    numbers = features * 2 // 3
    columns = []
    for i in range(features):
        if i < numbers:
            columns.append(f"round(random() * 100 + (i % 7) * 3, 2) AS f{i}")
        else:
            columns.append(f"chr(65 + CAST(floor(random() * {3 + i % 8}) AS INTEGER)) AS f{i}")
    db.execute("CREATE SCHEMA analytics; CREATE SCHEMA raw")
    db.execute(
        f"CREATE TABLE analytics.training AS SELECT {', '.join(columns)}"
        f" FROM range({TRAINING_ROWS}) AS t(i)"
    )
    # The second half of the log drifts: every fifth number moves up, every fourth
    # category loses its first letter.
    drifted = []
    for i in range(features):
        if i < numbers:
            shift = "+ CASE WHEN i >= $half THEN 25 ELSE 0 END" if i % 5 == 0 else ""
            drifted.append(f"'f{i}', CASE WHEN i % 97 = 0 THEN NULL ELSE f{i} {shift} END")
        else:
            swap = "CASE WHEN i >= $half AND f{i} = 'A' THEN 'B' ELSE f{i} END"
            drifted.append(f"'f{i}', {swap.format(i=i) if i % 4 == 0 else f'f{i}'}")
    db.execute(
        f"""CREATE TABLE raw.predictions AS
        SELECT md5(CAST(i AS VARCHAR)) AS prediction_id,
               strftime(TIMESTAMP '2026-12-01' + to_seconds(i * 259200 // $rows),
                        '%Y-%m-%dT%H:%M:%S.%f+00:00') AS logged_at,
               'bench' AS model, 1 AS version, random() AS score,
               CASE WHEN random() > 0.9 THEN 'decline' ELSE 'approve' END AS decision,
               '{{}}' AS stale_features, 1 + random() * 4 AS latency_ms,
               CAST(json_object({", ".join(drifted)}) AS VARCHAR) AS features
        FROM (SELECT i, {", ".join(columns)} FROM range($rows) AS t(i))""",
        {"rows": rows, "half": rows // 2},
    )
    db.close()


GRISTMILL = textwrap.dedent(
    """
    import json, sys, time
    from datetime import datetime
    from pathlib import Path
    from gristmill.monitor.drift import feature_drift
    from gristmill.monitor.log import LoggedPredictions
    from gristmill.project import Project
    from gristmill.registry.base import ModelVersion

    folder, features = Path(sys.argv[1]), int(sys.argv[2])
    started = time.perf_counter()
    with Project.load(folder) as project:
        version = ModelVersion("bench", 1, "", "", {}, {}, {}, {
            "training_set": "analytics.training",
            "features": [f"f{i}" for i in range(features)],
        })
        logged = LoggedPredictions._prepare(
            project, "bench", "raw.predictions", "model = 'bench'", version
        )
        extracted = time.perf_counter() - started
        drift = feature_drift(logged)
        # The bins of each row of the log and of the training set, for the comparison.
        sample = []
        from gristmill.profile.bins import bins_for
        from gristmill.profile.stats import TableStats
        training = TableStats(project.warehouse, logged.training_relation, logged.columns)
        profiles = training.aggregates()
        for column, profile in zip(logged.columns, profiles):
            bins = bins_for(training, column, profile)
            sample.append(bins.sql if bins else None)
    print(json.dumps({
        "seconds_extract": extracted,
        "seconds": time.perf_counter() - started,
        "rows": logged.rows,
        "psi": {f.name: f.psi for f in drift},
        "bins": dict(zip([f"f{i}" for i in range(features)], sample)),
    }))
    """
)

EVIDENTLY_RUN = textwrap.dedent(
    """
    import json, sys, time
    import pandas as pd
    from evidently.legacy.calculations.stattests.psi import _psi
    from evidently.legacy.core import ColumnType

    reference = pd.read_parquet(sys.argv[1])
    current = pd.read_parquet(sys.argv[2])
    kinds = json.loads(sys.argv[3])
    started = time.perf_counter()
    own = {}
    for name, kind in kinds.items():
        column_type = ColumnType.Numerical if kind == "number" else ColumnType.Categorical
        # Its numeric bins need values (its drift report drops the missing first).
        ref, cur = (reference[name], current[name])
        if kind == "number":
            ref, cur = ref.dropna(), cur.dropna()
        own[name] = float(_psi(ref, cur, column_type, 0.1)[0])
    seconds = time.perf_counter() - started
    # The same bins as gristmill's: each value's bin label, as categories.
    binned = {}
    for name in kinds:
        label = name + "_bin"
        binned[name] = float(
            _psi(reference[label], current[label], ColumnType.Categorical, 0.1)[0]
        )
    print(json.dumps({"seconds": seconds, "own_bins": own, "same_bins": binned}))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=30)
    args = parser.parse_args()
    python = evidently_python()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build(folder, args.rows, args.features)
        script = folder / "gristmill_run.py"
        script.write_text(GRISTMILL)
        seconds, rss, out = measure(
            [sys.executable, str(script), str(folder), str(args.features)], folder / "g.json"
        )
        ours = json.loads(out)
        # Evidently's inputs: the training set and 1M logged rows, with each value's bin.
        import duckdb

        db = duckdb.connect(str(folder / ".gristmill" / "warehouse.duckdb"))
        names = [f"f{i}" for i in range(args.features)]
        numbers = args.features * 2 // 3
        kinds = {n: ("number" if i < numbers else "category") for i, n in enumerate(names)}
        logged = ", ".join(
            f"CAST(json_extract_string(features, '$.{n}') AS"
            f" {'DOUBLE' if kinds[n] == 'number' else 'VARCHAR'}) AS {n}"
            for n in names
        )
        db.execute(
            f"CREATE TEMP TABLE current AS SELECT {logged} FROM raw.predictions"
            f" USING SAMPLE reservoir({EVIDENTLY_ROWS} ROWS) REPEATABLE (3)"
        )
        for relation, path in (("analytics.training", "reference"), ("current", "current")):
            bins = ", ".join(f"{ours['bins'][n]} AS {n}_bin" for n in names)
            db.execute(
                f"COPY (SELECT *, {bins} FROM {relation}) TO '{folder / path}.parquet'"
                " (FORMAT parquet)"
            )
        db.close()
        script = folder / "evidently_run.py"
        script.write_text(EVIDENTLY_RUN)
        e_seconds, e_rss, e_out = measure(
            [
                str(python),
                str(script),
                str(folder / "reference.parquet"),
                str(folder / "current.parquet"),
                json.dumps(kinds),
            ],
            folder / "e.json",
        )
        theirs = json.loads(e_out)
        # gristmill's PSI (`profile.bins.psi`) of the very rows Evidently read, by bin.
        import pyarrow.parquet as pq

        from gristmill.profile.bins import psi

        reference = pq.read_table(folder / "reference.parquet")
        current = pq.read_table(folder / "current.parquet")
        same: dict[str, float] = {}
        for name in names:
            counts = []
            for table in (reference, current):
                found: dict[str, int] = {}
                for label in table.column(f"{name}_bin").to_pylist():
                    found[str(label)] = found.get(str(label), 0) + 1
                counts.append(found)
            labels = sorted(counts[0].keys() | counts[1].keys())
            same[name] = psi(counts[0], counts[1], labels)
    # gristmill's PSI over the same 1M sample is what Evidently's "same bins" figure is
    # of; the full log's PSI differs from it by sampling only, so it is compared loosely
    # and the categorical ones (no binning choice) are reported as they are.
    print(
        f"gristmill monitor drift, {ours['rows']:,} logged predictions x {args.features}"
        f" features: {seconds:.2f} s wall ({ours['seconds']:.2f} s inside, of which"
        f" {ours['seconds_extract']:.2f} s taking the features out of the JSON),"
        f" peak RSS {rss:.0f} MB"
    )
    print(
        f"Evidently psi, {EVIDENTLY_ROWS:,} logged rows x {args.features} features:"
        f" {theirs['seconds']:.2f} s in its tests ({e_seconds:.2f} s wall with loading),"
        f" peak RSS {e_rss:.0f} MB"
    )
    per_row_ours = ours["seconds"] / ours["rows"]
    per_row_theirs = theirs["seconds"] / min(EVIDENTLY_ROWS, ours["rows"])
    print(
        f"per logged row: gristmill {per_row_ours * 1e9:.0f} ns, Evidently"
        f" {per_row_theirs * 1e9:.0f} ns ({per_row_theirs / per_row_ours:.1f}x)"
    )
    worst = max(abs(same[n] - theirs["same_bins"][n]) for n in names)
    print(f"same rows, same bins: largest |gristmill - Evidently| = {worst:.2e}")
    print(
        "feature  gristmill(all rows)  gristmill(1M)  Evidently(1M, same bins)"
        "  Evidently(1M, its own bins)"
    )
    for name in names:
        print(
            f"{name:6s} {ours['psi'][name]:20.6f} {same[name]:14.6f}"
            f" {theirs['same_bins'][name]:25.6f} {theirs['own_bins'][name]:28.6f}"
        )


if __name__ == "__main__":
    main()

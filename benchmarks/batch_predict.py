"""Benchmark: a batch of predictions against the same predictions one by one, on the
SQLite and the Redis online stores, over the quickstart project (fraud model, two feature
views, transactions whose users and merchants repeat within a batch).

    .venv/bin/python benchmarks/batch_predict.py [--rows N] [--batch N] [--large N]

Each batch goes through `Scorer.score`, what POST /v1/models/{name}/predict runs for
{"rows": [...]}; the singles are the same rows scored one per call. A row whose decision
or score differs between the batch and its single is counted (must be 0); every read is
as of one moment, so that only the path, not the clock, could make them differ.

Target (issue 17): a batch of 1,000 predictions under 0.5 s on SQLite and on Redis.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gristmill.features.api import OnlineFeatures, OnlineReader
from gristmill.features.discover import Definitions
from gristmill.project import Project

WORK = Path(__file__).parent / ".work" / "batch_predict"
MODEL = "fraud"


class AsOf(OnlineReader):
    """Reads as of the moment it was made."""

    def __init__(self, project: Project, definitions: Definitions) -> None:
        super().__init__(project, definitions)
        self.moment = datetime.now(UTC)

    def read(
        self,
        features: Sequence[str],
        entities: Sequence[Mapping[str, Any]],
        at: datetime | None = None,
    ) -> list[OnlineFeatures]:
        return super().read(features, entities, at or self.moment)


def build(rows: int) -> Path:
    """The quickstart project, built once (its folder is kept between runs)."""
    from gristmill.quickstart.project import run_quickstart

    root = WORK / f"quickstart-{rows}"
    if not (root / ".gristmill" / "built").exists():
        shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        assert run_quickstart(root, rows=rows, traffic=False).ok
        (root / ".gristmill" / "built").write_text(f"{time.perf_counter() - started:.1f}\n")
    return root


def use_store(root: Path, online: str) -> None:
    """Point the project at `online` (Redis under a fresh prefix)."""
    import tomllib

    import tomli_w

    config = tomllib.loads((root / "gristmill.toml").read_text())
    config["online"] = (
        {"type": "redis", "url": "redis://127.0.0.1:6379/0", "prefix": f"b{uuid.uuid4().hex}"}
        if online == "redis"
        else {"type": "sqlite", "path": ".gristmill/online.sqlite"}
    )
    (root / "gristmill.toml").write_text(tomli_w.dumps(config))


def requests(project: Any, scorer: Any, count: int) -> list[dict[str, Any]]:
    """The newest `count` transactions, as the fields a predict request carries."""
    from gristmill.quickstart.project import PROFILED

    loaded = scorer.model(MODEL)
    fields = list(dict.fromkeys([*loaded.entity_keys, *loaded.request_fields]))
    table = project.warehouse.qualified(project.config.transforms.schema_name, PROFILED)
    columns = ", ".join(project.warehouse.quote(f) for f in fields)
    present = " AND ".join(f"{project.warehouse.quote(k)} IS NOT NULL" for k in loaded.entity_keys)
    found = project.warehouse.query_arrow(
        f"SELECT {columns} FROM {table} WHERE {present}"
        f" ORDER BY created_at DESC, transaction_id DESC LIMIT {count}",
        beyond_decimal="float",
    ).to_pylist()
    return [{k: (float(v) if k == "amount" else v) for k, v in r.items()} for r in found]


def timed(call: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def measure(root: Path, online: str, batch: int, large: int) -> dict[str, Any]:
    from gristmill.features.api import materialize
    from gristmill.serve.scoring import Scorer

    use_store(root, online)
    with Project.load(root) as project:
        materialize(project, full=True)
        scorer = Scorer(project)
        # One moment for every read: rows scored seconds apart would otherwise see their
        # windows slide (the quickstart's events end now) and differ for that reason.
        scorer.reader = AsOf(project, scorer.definitions)
        rows = requests(project, scorer, large)
        scorer.score(MODEL, rows[:10])  # warm-up: the model loaded, imports done
        runs = [timed(lambda: scorer.score(MODEL, rows[:batch])) for _ in range(3)]
        batch_seconds = statistics.median(seconds for _, seconds in runs)
        (_, batch_scored), _ = runs[0]
        (_, large_scored), large_seconds = timed(lambda: scorer.score(MODEL, rows))
        # Timed over the first `batch` rows; the rest are only compared.
        singles, singles_seconds = timed(
            lambda: [scorer.score(MODEL, [r])[1][0] for r in rows[:batch]]
        )
        singles += [scorer.score(MODEL, [r])[1][0] for r in rows[batch:]]

        def differ(scored: list[Any]) -> int:
            return sum(
                (b.decision, b.score) != (s.decision, s.score)
                for b, s in zip(scored, singles[: len(scored)], strict=True)
            )

        if online == "redis":
            for view in scorer.definitions.views:
                project.online.clear(view)
        return {
            "online": online,
            "users": len({r["user_id"] for r in rows[:batch]}),
            "batch": batch_seconds,
            "large": large_seconds,
            "singles": singles_seconds,
            "differ_batch": differ(batch_scored),
            "differ_large": differ(large_scored),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000, help="quickstart transactions")
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=13_000)
    args = parser.parse_args()
    root = build(args.rows)
    results = [measure(root, online, args.batch, args.large) for online in ("sqlite", "redis")]
    b, n = f"{args.batch:,}", f"{args.large:,}"
    print(
        f"| online store | users in the batch of {b} | batch of {b} (s, median of 3) | batch of {n} (s) |"
        f" {b} single predicts (s) | rows differing, batch of {b} | rows differing,"
        f" batch of {n} |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    for r in results:
        print(
            f"| {r['online']} | {r['users']:,} | {r['batch']:.3f} | {r['large']:.2f} | {r['singles']:.2f} |"
            f" {r['differ_batch']} | {r['differ_large']} |"
        )


if __name__ == "__main__":
    main()

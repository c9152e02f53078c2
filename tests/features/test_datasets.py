"""Feature views and datasets in a project: discovery, the graph, builds, the CLI."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.errors import ConfigError
from gristmill.graph.run import run
from gristmill.project import Project
from tests.cli.test_cli import gristmill
from tests.conftest import PG_URL, require_server
from tests.helpers import write_project

FEATURES = """
from gristmill.features import Dataset, FeatureView, aggregate, expression

payer = FeatureView(
    name="payer",
    entity=["user_id"],
    timestamp="happened",
    source="payments",
    ttl="2d",
    features=[
        aggregate("paid", "sum", "amount", windows=["1d"]),
        aggregate("payments", "count", windows=["1d"]),
        expression("last_amount", "amount"),
    ],
)

training = Dataset(
    name="training",
    spine="SELECT user_id, happened, label FROM decisions",
    timestamp="happened",
    features=["payer.paid_1d", "payer.last_amount"],
)
"""


@pytest.fixture(params=["duckdb", "postgres"])
def project(request: pytest.FixtureRequest, tmp_path: Path, unique_name: str) -> Iterator[Path]:
    """The project on every warehouse backend (its datasets are built by the warehouse)."""
    app = tmp_path / "app.sqlite"
    with sqlite3.connect(app) as db:
        db.executescript(
            """
            CREATE TABLE payments (id INTEGER PRIMARY KEY, user_id INTEGER, amount INTEGER,
              happened TIMESTAMP);
            INSERT INTO payments VALUES (1, 1, 10, '2025-01-01 10:00:00'),
              (2, 1, 20, '2025-01-01 12:00:00'), (3, 2, 5, '2025-01-01 12:00:00'),
              (4, 1, 40, '2025-01-03 09:00:00');
            CREATE TABLE decisions (user_id INTEGER, happened TIMESTAMP, label BOOLEAN);
            INSERT INTO decisions VALUES (1, '2025-01-01 12:00:00', 0),
              (1, '2025-01-02 11:00:00', 1), (2, '2025-01-05 00:00:00', 0), (3, '2025-01-01 00:00:00', 0);
            """
        )
    root = tmp_path / "proj"
    (root / "features").mkdir(parents=True)
    (root / "features" / "payments.py").write_text(FEATURES)
    tables = {"payments": {}, "decisions": {}}
    sources = {"app": {"type": "sqlite", "path": str(app), "tables": tables}}
    if request.param == "duckdb":
        write_project(root, sources)
        yield root
        return
    require_server("PostgreSQL", "127.0.0.1", 5432)
    raw, derived = f"{unique_name}_raw", f"{unique_name}_an"
    warehouse = {"type": "postgres", "url": PG_URL, "raw_schema": raw}
    write_project(root, sources, warehouse=warehouse, transforms={"schema": derived})
    yield root
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as db:
        for schema in (raw, derived, f"_gristmill_{raw}"):
            db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def rows(root: Path) -> list[dict[str, object]]:
    with Project.load(root) as project:
        derived = project.config.transforms.schema_name
        found: list[dict[str, object]] = project.warehouse.query_arrow(
            f'SELECT * FROM "{derived}"."training" ORDER BY user_id, happened'
        ).to_pylist()
        return found


def test_a_dataset_joins_features_as_of_each_decision(project: Path) -> None:
    with Project.load(project) as p:
        summary = run(p)
    assert summary.ok, [s.error for s in summary.steps]
    got = [(r["user_id"], r["label"], r["paid_1d"], r["last_amount"]) for r in rows(project)]
    assert got == [
        (1, False, 10, 10),  # the payment at 12:00 is not yet known at 12:00
        (1, True, 20, 20),  # 10:00 the day before is out of the 1-day window
        (2, False, None, None),  # the last payment is older than the 2-day ttl
        (3, False, None, None),  # no history at all
    ]
    with Project.load(project) as p:
        again = {s.name: s.status for s in run(p).steps}
    assert again["training"] == "up_to_date"
    (project / "features" / "payments.py").write_text(
        FEATURES.replace('"1d"', '"3d"').replace("paid_1d", "paid_3d")
    )
    with Project.load(project) as p:
        changed = {s.name: s.status for s in run(p).steps}
    assert changed["training"] == "ok"
    assert [r["paid_3d"] for r in rows(project)] == [10, 30, None, None]


def test_a_dataset_naming_an_unknown_feature_says_what_exists(project: Path) -> None:
    (project / "features" / "payments.py").write_text(
        FEATURES.replace("payer.paid_1d", "payer.paid_2d")
    )
    with (
        Project.load(project) as p,
        pytest.raises(ConfigError, match=r"paid_2d.*Did you mean 'paid_1d'"),
    ):
        run(p)


def test_cli_lists_shows_and_builds(project: Path) -> None:
    listed = json.loads(gristmill("features", "list", "--json", "-p", str(project)).stdout)
    assert [v["name"] for v in listed["views"]] == ["payer"] and listed["datasets"] == ["training"]
    shown = gristmill("features", "show", "payer", "-p", str(project))
    assert shown.returncode == 0 and "paid_1d" in shown.stdout and "latest value" in shown.stdout
    assert gristmill("ingest", "-p", str(project)).returncode == 0
    built = gristmill("dataset", "build", "training", "--json", "-p", str(project))
    assert built.returncode == 0, built.stderr
    assert {s["name"]: s["status"] for s in json.loads(built.stdout)["steps"]} == {"training": "ok"}
    unknown = gristmill("dataset", "build", "trainig", "-p", str(project))
    assert unknown.returncode == 2 and "Did you mean 'training'" in unknown.stderr

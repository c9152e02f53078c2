"""The quickstart project: a fintech application database, its gristmill.toml, the run."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gristmill.project import Project, init_project

if TYPE_CHECKING:
    from gristmill.features.api import MaterializeResult, OnlineFeatures
    from gristmill.graph.run import RunSummary, StepResult
    from gristmill.ingest import IngestSummary
    from gristmill.ingest.engine import Progress
    from gristmill.monitor import MonitorReport
    from gristmill.profile.model import TableProfile
    from gristmill.quickstart.serving import DemoDecision
    from gristmill.registry.base import ModelVersion

APP_DB = "data/app.sqlite"
TRANSFORMS = Path(__file__).parent / "transforms"
FEATURES = Path(__file__).parent / "features"
MODELS = Path(__file__).parent / "models"
"""The quickstart's transforms and feature definitions, copied into the project."""

QUICKSTART_CONFIG = """\
# The gristmill quickstart: a mobile-money application database synced into DuckDB.
name = "quickstart"

[warehouse]
type = "duckdb"
path = ".gristmill/warehouse.duckdb"

[catalog]
type = "sqlite"
path = ".gristmill/catalog.sqlite"

[sources.app]
type = "sqlite"
path = "{app_db}"

[sources.app.tables.users]
mode = "merge"
cursor = "updated_at"
exclude = ["phone"]            # PII stays in the application database

[sources.app.tables.accounts]
mode = "merge"
cursor = "updated_at"
soft_delete_column = "deleted_at"

[sources.app.tables.merchants]
mode = "full"

[sources.app.tables.transactions]
mode = "merge"
cursor = "updated_at"
checks = [{{ unique = "id" }}, {{ not_null = ["account_id", "amount", "created_at"] }}]

[sources.app.tables.kyc_documents]
mode = "merge"
cursor = "updated_at"

[sources.app.tables.chargebacks]
mode = "merge"
cursor = "updated_at"
"""


def create_quickstart(directory: Path, rows: int = 100_000, seed: int = 0) -> Path:
    """Create the quickstart project in `directory` unless it is there already."""
    from gristmill.quickstart.generate import generate_app_db

    root = Path(directory)
    if (root / "gristmill.toml").exists():
        return root
    init_project(root, name="quickstart")
    (root / "gristmill.toml").write_text(QUICKSTART_CONFIG.format(app_db=APP_DB))
    for folder in (TRANSFORMS, FEATURES, MODELS):
        for definition in sorted(folder.iterdir()):
            if definition.suffix in (".sql", ".py"):
                shutil.copyfile(definition, root / folder.name / definition.name)
    (root / APP_DB).parent.mkdir(parents=True, exist_ok=True)
    generate_app_db(root / APP_DB, transactions=rows, seed=seed)
    return root


PROFILED = "clean_transactions"
"""The table the quickstart profiles against the fraud label."""


@dataclass
class QuickstartResult:
    ingest: IngestSummary
    run: RunSummary
    profile: TableProfile
    report: Path
    online: list[MaterializeResult]
    sample: OnlineFeatures | None
    """The online features, as of now, of the user who transacted last."""
    trained: ModelVersion | None
    """The fraud model's version that the run trained (the champion on a first run)."""
    served: tuple[str, list[DemoDecision]] | None = None
    """The server's address and the decisions it gave over HTTP."""
    monitored: tuple[MonitorReport, MonitorReport] | None = None
    """`gristmill monitor fraud` after the ordinary traffic, and after the drifted burst."""
    monitor_report: Path | None = None

    @property
    def ok(self) -> bool:
        return self.ingest.ok and self.run.ok


def run_quickstart(
    directory: Path,
    rows: int = 100_000,
    progress: Progress | None = None,
    on_step: Callable[[StepResult], None] | None = None,
    traffic: bool = True,
) -> QuickstartResult:
    """Create the quickstart project (if needed), ingest its application database, build
    its transforms (running their checks), and profile its transactions against the fraud
    label into reports/, materialize the online store, and train the fraud model (its
    report into reports/models/, the version registered as champion); serve it, and with
    `traffic`, replay transactions then a drifted burst, monitored after each into
    reports/monitor/."""
    from gristmill.features.api import get_online_features, materialize
    from gristmill.graph.run import run
    from gristmill.ingest import ingest
    from gristmill.profile import profile

    create_quickstart(directory, rows)
    with Project.load(directory) as project:
        synced = ingest(project, progress=progress)
        built = run(project, kinds={"transform", "dataset", "model"}, on_step=on_step)
        profiled = profile(project, PROFILED, target="is_fraud", time="created_at")
        report = project.root / "reports" / f"{PROFILED}.html"
        report.parent.mkdir(exist_ok=True)
        report.write_text(profiled.to_html(), encoding="utf-8")
        online = materialize(project) if built.ok else []
        sample = None
        if online:
            derived = project.warehouse.qualified(project.config.transforms.schema_name, PROFILED)
            # The latest payment's user and merchant, and a user id no one has.
            [(user, merchant, new_user)] = project.warehouse.fetchall(
                f"SELECT user_id, merchant_id, (SELECT max(user_id) + 1 FROM {derived})"
                f" FROM {derived} WHERE merchant_id IS NOT NULL"
                " ORDER BY created_at DESC, transaction_id DESC LIMIT 1"
            )
            [sample] = get_online_features(project, ["user_velocity"], [{"user_id": user}])
            replayed = _replayed(project, derived) if traffic else []
        trained = project.registry.get("fraud") if built.ok else None
    result = QuickstartResult(synced, built, profiled, report, online, sample, trained)
    if trained is not None and online:
        from gristmill.quickstart.serving import serving_demo

        reports: list[MonitorReport] = []
        result.served = serving_demo(
            Path(directory),
            user,
            merchant,
            new_user,
            replayed,
            between=lambda: reports.append(_monitored(directory)),
        )
        if replayed:
            reports.append(_monitored(directory))
            result.monitored = (reports[0], reports[1])
            result.monitor_report = project.root / "reports" / "monitor" / "fraud.html"
            result.monitor_report.parent.mkdir(exist_ok=True)
            result.monitor_report.write_text(reports[1].to_html(), encoding="utf-8")
    return result


def _replayed(project: Project, transactions: str) -> list[dict[str, Any]]:
    """Past transactions (the same ones for a seed), as requests to the fraud model."""
    from gristmill.quickstart.serving import DRIFTED, ORDINARY

    rows = project.warehouse.fetchall(
        f"SELECT user_id, merchant_id, CAST(amount AS DOUBLE), kind FROM {transactions}"
        f" ORDER BY hash(transaction_id), transaction_id LIMIT {ORDINARY + DRIFTED}"
    )
    return [
        {"user_id": u, "merchant_id": m, "amount": amount, "kind": kind}
        for u, m, amount, kind in rows
    ]


def _monitored(directory: Path) -> MonitorReport:
    from gristmill.monitor import monitor

    with Project.load(directory) as project:
        return monitor(project, "fraud")

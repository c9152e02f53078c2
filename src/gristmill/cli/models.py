"""`gristmill train` and `gristmill models list|show|promote|rollback`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from gristmill.cli.output import ENGINE, EngineName, console

if TYPE_CHECKING:
    from gristmill.registry.base import ModelVersion
    from gristmill.train.trainer import TrainResult

PROJECT = typer.Option(Path("."), "--project", "-p", help="Project folder.")
JSON = typer.Option(False, "--json", help="Print JSON.")

models_app = typer.Typer(
    help="Model versions in the registry: list, show, explain, promote, roll back.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("score")(score_command)
    app.add_typer(models_app, name="models")


def train_command(
    name: str = typer.Argument(..., help="A model of models/*.py."),
    engine: EngineName | None = ENGINE,
    force: bool = typer.Option(
        False, "--force", help="Train even when a version was fitted on the same rows and spec."
    ),
    json_output: bool = JSON,
    project_dir: Path = PROJECT,
) -> None:
    """Train a model on its training set, evaluate it, write its report, register it.

    When a version was already fitted on the same training rows with the same spec, nothing is trained or registered: the command says which version it equals.
    """
    from gristmill.project import Project
    from gristmill.train.trainer import train_model

    with Project.load(project_dir) as project:
        result = train_model(project.use_engine(engine and engine.value), name, force=force)
    if json_output:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print_trained(result)


def score_command(
    name: str = typer.Argument(..., help="A registered model."),
    table: str = typer.Option(..., "--table", help="The warehouse table to score."),
    out: str = typer.Option(..., "--out", help="The table to write (schema.name or name)."),
    ref: str = typer.Option("champion", "--version", help="A version number or an alias."),
    engine: EngineName | None = ENGINE,
    json_output: bool = JSON,
    project_dir: Path = PROJECT,
) -> None:
    """Score a whole warehouse table in batches, with the features as of each row's time."""
    from dataclasses import asdict

    from gristmill.project import Project
    from gristmill.serve.batch import score_table

    with Project.load(project_dir) as project:
        result = score_table(project.use_engine(engine and engine.value), name, table, out, ref)
    if json_output:
        print(json.dumps(asdict(result), indent=2))
    else:
        console.print(
            f"{result.table}: {result.rows:,} rows scored by {result.model} v{result.version}"
            f" in {result.seconds:.1f}s",
            highlight=False,
        )


def print_trained(result: TrainResult) -> None:
    from rich.table import Table

    if result.unchanged:
        console.print(
            f"[bold]{result.model}[/]: unchanged, equals version {result.version} (the same"
            " training rows and spec); nothing registered. --force trains anyway.",
            highlight=False,
        )
        return
    alias = f", {result.alias}" if result.alias else ""
    console.print(
        f"[bold]{result.model}[/] version {result.version}{alias}: {result.estimator} on"
        f" {result.train_rows:,} rows, evaluated on {result.test_rows:,} ({result.split})"
        f" in {result.seconds:.1f}s",
        highlight=False,
    )
    console.print(
        f"  features ({len(result.features)}): {', '.join(result.features)}", highlight=False
    )
    if result.left_out:
        left = ", ".join(f"{c} ({why})" for c, why in result.left_out.items())
        console.print(f"  left out: {left}", highlight=False)
    table = Table(show_header=False, box=None, padding=(0, 2))
    for label, value in result.summary:
        table.add_row(label, value)
    console.print(table)
    for line in result.notes:
        console.print(f"  {line}", highlight=False)
    console.print(f"  report: {result.report}", highlight=False)


@models_app.command("list")
def list_models(json_output: bool = JSON, project_dir: Path = PROJECT) -> None:
    """Every registered model: its versions and aliases."""
    from rich.table import Table

    from gristmill.project import Project

    with Project.load(project_dir) as project:
        registry = project.registry
        rows: list[dict[str, Any]] = []
        for model in registry.list_models():
            versions = registry.list_versions(model)
            latest = versions[-1] if versions else None
            rows.append(
                {
                    "model": model,
                    "versions": len(versions),
                    "latest": latest.version if latest else None,
                    "created_at": latest.created_at if latest else None,
                    "aliases": registry.aliases(model),
                }
            )
    if json_output:
        print(json.dumps(rows, indent=2))
        return
    table = Table("model", "versions", "latest", "aliases", "trained")
    for row in rows:
        aliases = ", ".join(f"{a} → v{v}" for a, v in sorted(row["aliases"].items()))
        table.add_row(
            row["model"], str(row["versions"]), f"v{row['latest']}", aliases, str(row["created_at"])
        )
    console.print(table)


@models_app.command("show")
def show_model(
    name: str = typer.Argument(..., help="A registered model."),
    ref: str = typer.Argument("latest", help="A version number, 'latest' or an alias."),
    json_output: bool = JSON,
    project_dir: Path = PROJECT,
) -> None:
    """One version: its metrics, parameters, data, aliases."""
    from gristmill.project import Project

    with Project.load(project_dir) as project:
        version = project.registry.get(name, ref)
        aliases = project.registry.aliases(name)
    if json_output:
        print(json.dumps({**version.to_dict(), "aliases": aliases}, indent=2, default=str))
        return
    print_version(project.root, version, aliases)


def print_version(root: Path, version: ModelVersion, aliases: dict[str, int]) -> None:
    """A registered version: what it is, how it did, where its report is."""
    from gristmill.train.trainer import report_path

    pointing = [a for a, v in aliases.items() if v == version.version]
    meta = version.metadata
    console.print(
        f"[bold]{version.model}[/] version {version.version}"
        f"{' (' + ', '.join(pointing) + ')' if pointing else ''}: {meta.get('estimator')}"
        f" {meta.get('task')}, trained {version.created_at} by {version.created_by}",
        highlight=False,
    )
    console.print(
        f"  training set {meta.get('training_set')} (version"
        f" {meta.get('training_set_version') or 'unrecorded'}), {meta.get('train_rows', 0):,}"
        f" rows trained, {meta.get('test_rows', 0):,} evaluated",
        highlight=False,
    )
    for label, value in meta.get("summary", []):
        console.print(f"  {label}: {value}", highlight=False)
    for note in meta.get("notes", []):
        console.print(f"  {note}", highlight=False)
    report = report_path(root, version.model, version.version)
    if report.exists():
        console.print(f"  report: {report}", highlight=False)


@models_app.command("explain")
def explain(
    name: str = typer.Argument(..., help="A registered model."),
    ref: str = typer.Argument("champion", help="A version number, 'latest' or an alias."),
    where: str = typer.Option("", "--where", help="SQL condition picking training-set rows."),
    limit: int = typer.Option(5, "--limit", min=1, help="Rows to explain."),
    json_output: bool = JSON,
    project_dir: Path = PROJECT,
) -> None:
    """Score rows of the training set and say which features moved each score most."""
    from dataclasses import asdict

    from gristmill.project import Project
    from gristmill.train.reasons import explain_rows

    with Project.load(project_dir) as project:
        explained = explain_rows(project, name, ref, where, limit)
    if json_output:
        print(json.dumps([asdict(r) for r in explained], indent=2, default=str))
        return
    for reasons in explained:
        label = ", ".join(f"{k}={v}" for k, v in reasons.row.items())
        console.print(f"[bold]{label}[/]: {reasons.prediction}", highlight=False)
        for feature, value, effect in reasons.contributions:
            console.print(f"  {effect:+.3f}  {feature} = {value}", highlight=False)


@models_app.command("promote")
def promote(
    name: str = typer.Argument(..., help="A registered model."),
    ref: str = typer.Argument(..., help="The version to promote (a number or an alias)."),
    alias: str = typer.Option("champion", "--alias", help="The alias to move."),
    share: float | None = typer.Option(
        None, "--share", help="With --alias canary: the percentage of entities it decides for."
    ),
    force: bool = typer.Option(
        False, "--force", help="Make it champion even when the spec's promote_if checks fail."
    ),
    project_dir: Path = PROJECT,
) -> None:
    """Point an alias (champion by default) at a version, atomically.

    `--alias shadow`: a running server also scores every request with this version, after answering, and logs it beside the champion's. `--alias canary --share 10`: 10% of entities (by a hash of the model's first entity key, so each one always meets the same version) get this version's decision. A model whose spec sets promote_if becomes champion only when those checks pass on the version's shadow log (--force overrides).
    """
    from gristmill.monitor.compare import promote as checked_promote
    from gristmill.project import Project

    with Project.load(project_dir) as project:
        moved = checked_promote(project, name, ref, alias=alias, share=share, force=force)
    before = f" (was v{moved.previous})" if moved.previous is not None else ""
    of = f" for {share:g}% of entities" if share is not None else ""
    console.print(f"{name}: {alias} → v{moved.version}{of}{before}", highlight=False)


@models_app.command("compare")
def compare_command(
    name: str = typer.Argument(..., help="A registered model."),
    champion: str = typer.Argument("champion", help="The version that decided (or its alias)."),
    challenger: str = typer.Argument("shadow", help="The version that scored in shadow."),
    since: str = typer.Option("90d", "--since", help="How far back: 7d, 30d, 90d..."),
    json_output: bool = JSON,
    project_dir: Path = PROJECT,
) -> None:
    """Two versions on the same live requests: agreement, score correlation, decision flips and, with matured labels, the realized AUC and KS of both.

    The champion's logged decisions are paired with the challenger's shadow scores of the same requests (promote the challenger with --alias shadow first).
    """
    from gristmill.monitor.compare import compare
    from gristmill.project import Project

    with Project.load(project_dir) as project:
        found = compare(project, name, champion, challenger, since)
    if json_output:
        print(json.dumps(found.to_dict(), indent=2, default=str))
        return
    console.print(
        f"[bold]{name}[/] v{found.champion} (deciding) and v{found.challenger} (shadow):"
        f" {found.pairs:,} requests scored by both since {since}",
        highlight=False,
    )
    if not found.pairs:
        console.print(
            f"  Nothing to compare: promote v{found.challenger} with --alias shadow and serve.",
            highlight=False,
        )
        return
    for label, value in found.metrics().items():
        if label != "pairs":
            console.print(f"  {label}: {'-' if value is None else f'{value:.4f}'}", highlight=False)
    for flip, count in found.flips.items():
        console.print(f"  flips {flip}: {count:,}", highlight=False)


@models_app.command("rollback")
def rollback(
    name: str = typer.Argument(..., help="A registered model."),
    alias: str = typer.Option("champion", "--alias", help="The alias to move back."),
    project_dir: Path = PROJECT,
) -> None:
    """Move an alias back to the version it pointed at before its last promotion."""
    from gristmill.project import Project

    with Project.load(project_dir) as project:
        moved = project.registry.rollback(name, alias=alias)
    console.print(f"{name}: {alias} → v{moved.version} (was v{moved.previous})", highlight=False)

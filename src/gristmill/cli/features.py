"""`gristmill features list|show|get|verify`, `gristmill dataset build` and
`gristmill materialize`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gristmill.cli.output import ENGINE, EngineName, console, json_exact
from gristmill.errors import ConfigError

if TYPE_CHECKING:
    from gristmill.features.api import MaterializeResult, OnlineFeatures

PROJECT = typer.Option(Path("."), "--project", "-p", help="Project folder.")
JSON = typer.Option(False, "--json", help="Print JSON.")

features_app = typer.Typer(
    help="Feature views: list them, show one, read one entity online, verify the online path.",
    no_args_is_help=True,
)
dataset_app = typer.Typer(help="Point-in-time training sets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")
    app.add_typer(dataset_app, name="dataset")
    app.command("materialize")(materialize_command)


@features_app.command("list")
def list_views(json_output: bool = JSON, project_dir: Path = PROJECT) -> None:
    """Every feature view and dataset of the project, with its version."""
    from rich.table import Table

    from gristmill.features.discover import load_definitions
    from gristmill.project import Project

    definitions = load_definitions(Project.load(project_dir).root)
    if json_output:
        print(
            json.dumps(
                {
                    "views": [
                        {**v.to_dict(), "version": v.version} for v in definitions.views.values()
                    ],
                    "datasets": [d.name for d in definitions.datasets.values()],
                },
                indent=2,
            )
        )
        return
    table = Table(title="feature views", title_justify="left")
    for name in ("view", "entity", "source", "columns", "ttl", "version", "file"):
        table.add_column(name)
    for view in definitions.views.values():
        table.add_row(
            view.name,
            ", ".join(view.entity),
            view.source,
            str(len(view.columns())),
            view.ttl or "",
            view.version,
            view.where,
        )
    console.print(table)
    for dataset in definitions.datasets.values():
        console.print(
            f"dataset [bold]{dataset.name}[/]: {', '.join(dataset.features)} ({dataset.where})",
            highlight=False,
        )


@features_app.command("show")
def show_view(
    name: str = typer.Argument(..., help="A feature view."),
    json_output: bool = JSON,
    project_dir: Path = PROJECT,
) -> None:
    """A feature view's definition and the columns it makes."""
    from rich.table import Table

    from gristmill.features.discover import load_definitions
    from gristmill.project import Project

    view = load_definitions(Project.load(project_dir).root).view(name)
    if json_output:
        print(json.dumps({**view.to_dict(), "version": view.version}, indent=2))
        return
    console.print(
        f"[bold]{view.name}[/] v{view.version}: entity {', '.join(view.entity)}, time"
        f" {view.timestamp}, source {view.source}, ttl {view.ttl or 'none'} ({view.where})",
        highlight=False,
    )
    table = Table(box=None)
    for column in ("column", "aggregation", "of", "window", "filter"):
        table.add_column(column)
    for feature in view.features:
        for column, window in feature.outputs():
            table.add_row(
                column,
                feature.aggregation or "latest value",
                feature.column or feature.sql or "events",
                window or "",
                feature.filter or "",
            )
    console.print(table)


@dataset_app.command("build")
def build(
    name: str = typer.Argument(..., help="A dataset defined in features/*.py."),
    full_refresh: bool = typer.Option(False, "--full-refresh", help="Rebuild even if up to date."),
    engine: EngineName | None = ENGINE,
    json_output: bool = JSON,
    project_dir: Path = PROJECT,
) -> None:
    """Materialize a training set (and what it reads, if out of date) as a table."""
    from gristmill.cli.run import finish_run, print_step
    from gristmill.features.discover import load_definitions
    from gristmill.graph.run import run
    from gristmill.project import Project

    with Project.load(project_dir) as project:
        project.use_engine(engine and engine.value)
        load_definitions(project.root).dataset(name)
        summary = run(
            project,
            [f"+{name}"],
            full_refresh=full_refresh,
            kinds={"transform", "dataset"},
            on_step=None if json_output else print_step,
        )
    finish_run(summary, json_output)


@features_app.command("get")
def get_features(
    features: str = typer.Argument(..., help="A view, or 'view.column,view.column'."),
    keys: list[str] = typer.Argument(..., help="The entity key: name=value (one per column)."),
    json_output: bool = JSON,
    project_dir: Path = PROJECT,
) -> None:
    """Read an entity's features from the online store, as of now."""
    from dataclasses import asdict

    from gristmill.features.api import get_online_features, typed_keys
    from gristmill.project import Project

    given = {}
    for pair in keys:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(
                f"Give the entity key as name=value, such as user_id=42 (got {pair!r})."
            )
        given[name] = value
    with Project.load(project_dir) as project:
        entity = typed_keys(project, features.split(","), given)
        [result] = get_online_features(project, features.split(","), [entity])
    if json_output:
        print(json_exact(asdict(result)))
    else:
        print_online_features(result)


@features_app.command("verify")
def verify_view(
    name: str = typer.Argument(..., help="A feature view."),
    samples: int = typer.Option(200, "--samples", min=1, help="Instants to compare."),
    live: bool = typer.Option(
        False,
        "--live",
        help="Compare the values the online store holds now (fed by materialize, pushes,"
        " change capture or streams) with the batch values of this instant, instead of"
        " replaying the events through a scratch store.",
    ),
    json_output: bool = JSON,
    project_dir: Path = PROJECT,
) -> None:
    """Replay the view's events through the online path (or read the live store, --live) and compare with the batch values."""
    from dataclasses import asdict

    from gristmill.features.api import verify
    from gristmill.features.live import verify_live
    from gristmill.project import Project

    with Project.load(project_dir) as project:
        result = (verify_live if live else verify)(project, name, samples=samples)
    if json_output:
        print(json.dumps({**asdict(result), "ok": result.ok}, indent=2, default=str))
    elif live:
        console.print(
            f"{result.view}: {result.samples} entities ({result.unknown_keys} with no events)"
            f" of {result.events:,}, the {result.store} store against the warehouse as of now:"
            f" {len(result.mismatches)} mismatches",
            highlight=False,
        )
    else:
        console.print(
            f"{result.view}: {result.samples} instants ({result.unknown_keys} of entities"
            f" with no events) over {result.events:,} events, replayed out of order through"
            f" a scratch {result.store} store: {len(result.mismatches)} mismatches",
            highlight=False,
        )
        if result.future_events:
            console.print(
                f"  {result.future_events:,} rows dated after now + \\[online] clock_skew were"
                " left out of both paths",
                highlight=False,
            )
        for m in result.mismatches[:20]:
            console.print(
                f"  {m.entity} at {m.at}: {m.column} online {m.online!r}, batch {m.batch!r}",
                highlight=False,
            )
    if not result.ok:
        raise typer.Exit(1)


def materialize_command(
    views: list[str] | None = typer.Argument(None, help="Feature views (all when omitted)."),
    full: bool = typer.Option(False, "--full", help="Rewrite every entity, not just the changed."),
    json_output: bool = JSON,
    project_dir: Path = PROJECT,
) -> None:
    """Write every entity's recent events into the online store (incrementally)."""
    from dataclasses import asdict

    from gristmill.features.api import materialize
    from gristmill.project import Project

    with Project.load(project_dir) as project:
        results = materialize(project, views or None, full=full)
    if json_output:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return
    print_materialized(results)


def print_materialized(results: list[MaterializeResult]) -> None:
    console.print("[bold]online store[/] (materialized)")
    for r in results:
        kind = "all entities" if r.full else "changed entities"
        future = (
            f"; {r.future_events:,} rows dated after now + \\[online] clock_skew left out"
            if r.future_events
            else ""
        )
        console.print(
            f"  {r.view}: {r.entities:,} {kind}, {r.events:,} events in {r.seconds:.2f}s{future}",
            highlight=False,
        )


def print_online_features(features: OnlineFeatures) -> None:
    """One entity's online features, and how old each view's latest event is."""
    entity = ", ".join(f"{k}={v}" for k, v in features.entity.items())
    ages = ", ".join(
        f"{view} {'never' if age is None else format_age(age)}"
        for view, age in features.age_seconds.items()
    )
    console.print(
        f"[bold]online features now[/] of {entity} (latest event: {ages})", highlight=False
    )
    for name, value in features.values.items():
        console.print(f"  {name} = {value}", highlight=False)


def format_age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit} ago"
    return f"{seconds:.1f}s ago"

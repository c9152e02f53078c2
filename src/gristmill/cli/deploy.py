"""`gristmill deploy prefect`: the project's schedules as Prefect deployments."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from gristmill.cli.output import console
from gristmill.cli.run import JSON, PROJECT

deploy_app = typer.Typer(
    help="Hand the project's asset graph and schedules to an orchestrator.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(deploy_app, name="deploy")


@deploy_app.command("prefect")
def prefect(
    serve: bool = typer.Option(
        False, "--serve", help="Register, then run the deployments' flow runs in the foreground."
    ),
    work_pool: str | None = typer.Option(
        None,
        "--work-pool",
        help="Register on this work pool (it must exist); its workers run the flow runs.",
    ),
    api_url: str | None = typer.Option(
        None,
        "--api-url",
        help="The Prefect API, e.g. http://127.0.0.1:4200/api (default: PREFECT_API_URL).",
    ),
    json_output: bool = JSON,
    project_dir: Path = PROJECT,
) -> None:
    """Make Prefect deployments of the project: one per \\[schedules.NAME] of gristmill.toml (its cron, timezone, selectors and retries) and `all`, the whole graph on demand.

    A flow run has one task per asset, waiting on its upstream assets; it is recorded in `gristmill runs` like `gristmill run`.

    --serve runs the flow runs in this process until Ctrl-C (the schedules pause when it stops).

    --work-pool NAME leaves them to the pool's workers (prefect worker start --pool NAME), where gristmill is installed and the project's folder is at the same path.

    The server is PREFECT_API_URL's, or --api-url's; one that does not answer within 5 s is an error.
    """
    from gristmill.errors import ConfigError

    if serve == (work_pool is not None):
        raise ConfigError(
            "Say where the flow runs execute: --serve (in this process, until Ctrl-C) or"
            " --work-pool NAME (by the pool's workers)."
        )
    if api_url:
        # In the environment, so that the flow-run processes serve starts inherit it.
        os.environ["PREFECT_API_URL"] = api_url
    from gristmill.integrations.prefect import deploy

    deployed = deploy(project_dir, work_pool=work_pool)
    if json_output:
        print(json.dumps(deployed.to_dict(), indent=2), flush=True)
    else:
        console.print(f"Prefect API: {deployed.api_url}", highlight=False)
        for entry in deployed.deployments:
            when = f"{entry['cron']} ({entry['timezone']})" if entry["cron"] else "on demand"
            select = " ".join(entry["select"]) or "every asset"
            console.print(
                f"  [bold]{entry['name']}[/] {when} [dim]{select}, retries {entry['retries']},"
                f" id {entry['id']}[/]",
                highlight=False,
            )
        for name in deployed.removed:
            console.print(
                f"  [yellow]removed[/] {name} [dim](no such schedule any more)[/]",
                highlight=False,
            )
        if work_pool is not None:
            console.print(
                f"Runs execute on work pool '{work_pool}': prefect worker start --pool {work_pool}",
                highlight=False,
            )
    if serve:
        from prefect import serve as serve_deployments

        if not json_output:
            console.print("serving; Ctrl-C to stop", highlight=False)
        serve_deployments(*deployed.runner_deployments, print_starting_message=False)

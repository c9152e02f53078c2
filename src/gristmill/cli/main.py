"""The CLI entry point and its single error boundary.

Commands call one function of the Python API each. A `GristmillError` becomes a clean
message and its exit code; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from gristmill import __version__
from gristmill.cli import deploy as deploy_cli
from gristmill.cli import diff as diff_cli
from gristmill.cli import features as features_cli
from gristmill.cli import ingest as ingest_cli
from gristmill.cli import models as models_cli
from gristmill.cli import monitor as monitor_cli
from gristmill.cli import profile as profile_cli
from gristmill.cli import project as project_cli
from gristmill.cli import run as run_cli
from gristmill.cli import schedule as schedule_cli
from gristmill.cli import serve as serve_cli
from gristmill.cli import stream as stream_cli

app = typer.Typer(
    name="gristmill",
    help="From operational data to a model that decides in production.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        print(f"gristmill {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(
        False,
        "--debug",
        help="Show tracebacks for errors, and debug logs (with the tracebacks"
        " of tables that failed unexpectedly).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    _state["debug"] = debug
    if debug:
        import logging

        # What operators need, and the tracebacks of failures reported one line each.
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("gristmill").setLevel(logging.DEBUG)


project_cli.register(app)
ingest_cli.register(app)
diff_cli.register(app)
run_cli.register(app)
schedule_cli.register(app)
deploy_cli.register(app)
profile_cli.register(app)
features_cli.register(app)
models_cli.register(app)
monitor_cli.register(app)
serve_cli.register(app)
stream_cli.register(app)


def main() -> None:
    from gristmill.config import redact
    from gristmill.errors import GristmillError

    try:
        # Outside standalone mode click returns the code of a typer.Exit instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except GristmillError as exc:
        if _state["debug"]:
            raise
        # Plain text: a message such as pip install 'gristmill[prefect]' is not markup.
        err.print("[bold red]error:[/]", escape(redact(str(exc))), highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:
        # Usage errors of click (which typer may vendor): shown as click shows them.
        show = getattr(exc, "show", None)
        if show is not None and isinstance(getattr(exc, "exit_code", None), int):
            show()
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        raise

"""`gristmill serve`: the HTTP API on uvicorn, in supervised worker processes."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import typer

from gristmill.errors import MissingDependencyError

PROJECT = typer.Option(Path("."), "--project", "-p", help="Project folder.")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    with_streams: bool = typer.Option(
        False,
        "--with-streams",
        help="Also follow the project's cdc tables and streams (as gristmill stream does), in"
        " the server's own process: once, whatever --workers says.",
    ),
    project_dir: Path = PROJECT,
) -> None:
    """Serve every model of the project at its alias: scores with fresh features.

    With --with-streams the same process follows the change logs and streams (the embedded default: one process); SIGTERM stops both.
    """
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise MissingDependencyError("uvicorn", "serve", "gristmill serve") from None
    from gristmill.project import Project
    from gristmill.serve import process

    # The project and [serve] fail here, once, rather than in each worker.
    project = Project.load(project_dir)
    config = project.config.serve
    os.environ["GRISTMILL_PROJECT"] = str(project.root)
    sockets = process.bind(host, port, workers)
    try:
        with contextlib.ExitStack() as stack:
            if with_streams:
                from gristmill.cli.stream import stop_on_signals
                from gristmill.streams.follow import following

                # In this process only: with several workers, the supervisor is it.
                follower = stack.enter_context(following(project.root))
                # Under the server's own handlers, which pass a stop signal on once served.
                stack.enter_context(stop_on_signals(follower.stop))
            process.serve(sockets, config)
    finally:
        for sock in sockets:
            sock.close()

"""`gristmill serve`: the HTTP API on uvicorn."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import typer

from gristmill.errors import MissingDependencyError

PROJECT = typer.Option(Path("."), "--project", "-p", help="Project folder.")
FACTORY = "gristmill.serve.app:create_app_from_environment"


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    project_dir: Path = PROJECT,
) -> None:
    """Serve every model of the project at its alias: scores with fresh features."""
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise MissingDependencyError("uvicorn", "serve", "gristmill serve") from None
    from gristmill.project import Project

    root = Project.load(project_dir).root  # fails here, not in each worker, when absent
    os.environ["GRISTMILL_PROJECT"] = str(root)
    if workers == 1:
        _serve_one(host, port)
        return
    _serve_many(host, port, workers)


def _listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket made with IPPROTO_TCP (so that asyncio sets TCP_NODELAY on its
    connections; uvicorn's own multi-worker socket lacks it and every response then waits
    for a delayed ACK, ~40 ms) and SO_REUSEPORT, so that each worker process listens on
    the same port and the kernel spreads connections among them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _serve_one(host: str, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(
        FACTORY, factory=True, host=host, port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    server.run(sockets=[_listening_socket(host, port)])


def _serve_many(host: str, port: int, workers: int) -> None:
    """One process per worker, each a whole server on the shared port; stopping the
    parent (SIGINT, SIGTERM) stops them all."""
    import multiprocessing
    import signal

    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_serve_one, args=(host, port)) for _ in range(workers)]
    for child in children:
        child.start()

    def stop(signum: int, frame: object) -> None:
        for child in children:
            if child.is_alive():
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.join()

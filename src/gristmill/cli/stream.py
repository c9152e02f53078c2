"""`gristmill stream`: the project's change logs followed in one long-running process."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

from gristmill.cli.output import console
from gristmill.cli.run import PROJECT

if TYPE_CHECKING:
    from gristmill.streams.follow import FollowedStream, FollowedTable


def register(app: typer.Typer) -> None:
    app.command("stream")(stream)


def stream(
    selectors: list[str] = typer.Argument(
        None,
        help="Streams, SOURCE or SOURCE.TABLE entries; every stream and cdc table when omitted.",
    ),
    poll_seconds: float = typer.Option(
        0.5, "--poll-seconds", min=0.05, max=60, help="How often each change log is asked."
    ),
    metrics_port: int = typer.Option(
        0,
        "--metrics-port",
        min=0,
        max=65535,
        help="Serve Prometheus metrics (read, applied, dead letters, apply seconds, lag) on"
        " 127.0.0.1:PORT/metrics; 0: none.",
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Print each table's totals as JSON when stopped."
    ),
    project_dir: Path = PROJECT,
) -> None:
    """Follow the change logs of the mode = "cdc" tables and the streams, applying changes as they commit.

    The warehouse is held only while a batch commits: other commands and read-only DuckDB connections open it in between.

    SIGTERM or Ctrl-C stops after the batch under way; a killed stream loses nothing and resumes where the warehouse is.

    --metrics-port serves Prometheus metrics: read, applied, dead letters, apply seconds, lag, failing.

    Exit code: 0 when no table failed, 1 when one did.
    """
    from gristmill.streams.follow import Follower
    from gristmill.streams.metrics import StreamMetrics

    # The port first: a stream that cannot serve its metrics does not start (nor count as a run).
    metrics = StreamMetrics(metrics_port) if metrics_port else None
    try:
        follower = Follower(project_dir.resolve(), list(selectors or []), poll_seconds)
    except BaseException:
        if metrics is not None:
            metrics.close()
        raise
    progress = None if json_output else _Progress()

    def show(followed: list[FollowedTable | FollowedStream]) -> None:
        if progress is not None:
            progress.show(followed)
        if metrics is not None:
            metrics.update(followed)

    follower.on_progress = show
    try:
        with stop_on_signals(follower.stop):
            if progress:
                with progress:
                    tables = follower.run()
            else:
                tables = follower.run()
    finally:
        if metrics is not None:
            metrics.close()
    if json_output:
        totals = [t.to_dict() for t in tables] + [s.to_dict() for s in follower.streams]
        print(json.dumps(totals, indent=2))
    followed: list[FollowedTable | FollowedStream] = [*tables, *follower.streams]
    for item in followed:
        if item.error:
            console.print(f"[bold red]{item.key}:[/] {item.error}", highlight=False)
    if any(t.ever_failed for t in followed):
        raise typer.Exit(1)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` (the work under way ends cleanly) while the block runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, restored in previous.items():
            signal.signal(sig, restored)


class _Progress:
    """A live table of what each followed table has applied."""

    def __init__(self) -> None:
        from rich.live import Live

        self.live = Live(console=console, refresh_per_second=2, transient=False)

    def __enter__(self) -> _Progress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def show(self, followed: list[FollowedTable | FollowedStream]) -> None:
        from rich.table import Table

        from gristmill.streams.follow import FollowedTable

        view = Table(title="gristmill stream (Ctrl-C stops)")
        columns = ("table or stream", "read", "applied", "deleted / dead", "position")
        for column in (*columns, "last batch", "state"):
            view.add_column(column)
        for t in followed:
            if isinstance(t, FollowedTable):
                counts, position = (t.changes, t.upserted, t.deleted), t.position or ""
            else:
                counts, position = (t.messages, t.applied, t.dead), ""
            view.add_row(
                t.key,
                *(f"{n:,}" for n in counts),
                position,
                f"{t.last_apply_seconds:.2f} s" if t.last_apply_seconds is not None else "",
                "[red]failing[/]" if t.error else "following",
            )
        self.live.update(view)

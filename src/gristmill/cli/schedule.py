"""`gristmill schedule`: the project's [schedules], run in the foreground."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

from gristmill.cli.output import console
from gristmill.cli.run import PROJECT, print_step

if TYPE_CHECKING:
    from gristmill.graph.schedule import Firing, Scheduler


def register(app: typer.Typer) -> None:
    app.command("schedule")(schedule)


def schedule(
    once: bool = typer.Option(
        False, "--once", help="Run what is due now (a missed run once), then exit."
    ),
    project_dir: Path = PROJECT,
) -> None:
    """Run the schedules of gristmill.toml in the foreground, with no server.

    Each firing runs `gristmill run` on its selectors, recorded in `gristmill runs`.

    A missed schedule catches up once; two schedulers never run one schedule at once.

    Ctrl-C or SIGTERM stops after the run under way.

    Exit code with --once: 0 when every run that fired succeeded, 1 otherwise.
    """
    from gristmill.graph.schedule import Scheduler
    from gristmill.project import Project

    with Project.load(project_dir) as project:
        scheduler = Scheduler(project, on_step=print_step, on_fire=_print_fire, on_done=_print_done)
        previous = {
            sig: signal.signal(sig, _stopper(scheduler)) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            if once:
                fired = scheduler.run_due()
                if not fired:
                    console.print("nothing due", highlight=False)
                if not all(f.ok for f in fired):
                    raise typer.Exit(1)
                return
            _print_next(scheduler)
            scheduler.run_forever()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    console.print("scheduler stopped", highlight=False)


def _stopper(scheduler: Scheduler) -> Callable[[int, FrameType | None], None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        if scheduler.stopping:
            raise KeyboardInterrupt  # asked twice: stop now, mid-run
        console.print(
            "[yellow]stopping after the run under way[/] (Ctrl-C again to stop now)",
            highlight=False,
        )
        scheduler.stop()

    return stop


def _print_next(scheduler: Scheduler) -> None:
    from zoneinfo import ZoneInfo

    for name, config in scheduler.schedules.items():
        due = scheduler.next_due(name)
        when = (
            "now (never fired)"
            if due is None
            else due.astimezone(ZoneInfo(config.timezone)).strftime("%Y-%m-%d %H:%M %Z")
        )
        console.print(
            f"[bold]{name}[/] [dim]{config.cron} ({config.timezone})[/] next: {when}",
            highlight=False,
        )


def _print_fire(name: str, attempt: int) -> None:
    again = f" (attempt {attempt})" if attempt > 1 else ""
    console.print(f"[bold]schedule {name}[/] fired{again}", highlight=False)


def _print_done(firing: Firing) -> None:
    style = "green" if firing.ok else "red"
    run = f"run {firing.run_id}, " if firing.run_id is not None else ""
    console.print(
        f"[bold]schedule {firing.schedule}[/] [{style}]{firing.status}[/]"
        f" [dim]({run}{firing.attempts} attempt(s), {firing.seconds:.2f}s)[/]",
        highlight=False,
    )
    if firing.error:
        console.print(f"  {firing.error}", style="red", highlight=False)

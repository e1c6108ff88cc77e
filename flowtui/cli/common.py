"""Helpers every command shares: rich output, progress bars fed by engine events, clean exits."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from flowtui.core import events as ev
from flowtui.core.data.schema import DataError

console = Console()
err_console = Console(stderr=True)

EXIT_BAD_INPUT = 2


def fail(message: str, details: list[str] | None = None) -> NoReturn:
    """Print an error (no traceback) and exit with status 2."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    for line in details or []:
        err_console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def fail_data(err: DataError) -> NoReturn:
    """Report a refused file and exit with status 2."""
    fail(err.one_line(), err.details())


def print_json(obj: Any) -> None:
    """Write `obj` as JSON on stdout, nothing else (for scripts)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def show_progress(quiet: bool = False) -> bool:
    """Progress bars only on a terminal and when not asked to be quiet (--json)."""
    return not quiet and console.is_terminal


@contextlib.contextmanager
def progress_events(quiet: bool = False) -> Iterator[ev.EventCallback | None]:
    """Yield an `on_event` callback that drives a rich progress bar, or None when quiet/not a TTY.

    One bar per task or model; Log events print above the bars.
    """
    if not show_progress(quiet):
        yield None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    tasks: dict[str, Any] = {}

    def task_for(name: str, total: float | None) -> Any:
        if name not in tasks:
            tasks[name] = progress.add_task(name, total=total, info="")
        return tasks[name]

    def on_event(e: ev.Event) -> None:
        if isinstance(e, ev.Progress):
            t = task_for(e.task, e.total)
            progress.update(t, completed=e.done, total=e.total, info=e.message)
        elif isinstance(e, ev.BeforeFit):
            task_for(e.model, e.n_epochs)
        elif isinstance(e, ev.AfterEpoch):
            t = task_for(e.model, e.n_epochs)
            info = " ".join(
                s
                for s in (
                    f"loss {e.loss:.4f}" if e.loss is not None else "",
                    f"metric {e.metric:.4f}" if e.metric is not None else "",
                )
                if s
            )
            progress.update(t, completed=e.epoch, total=e.n_epochs, info=info)
        elif isinstance(e, ev.AfterFit):
            t = task_for(e.model, None)
            total = progress.tasks[t].total if t < len(progress.tasks) else None
            if total is None:
                progress.update(t, total=1, completed=1)
            else:
                progress.update(t, completed=total)
            progress.update(t, info="cancelled" if e.cancelled else f"{e.seconds:.1f}s")
        elif isinstance(e, ev.Log):
            style = "yellow" if e.level == "warning" else "dim"
            progress.console.print(f"[{style}]{e.message}[/]", highlight=False)

    with progress:
        yield on_event


#: `flowtui data ...` sub-commands; modules add commands to it, cli/__init__ mounts it.
data_app = typer.Typer(help="Generate, validate, inspect and import data sets.", no_args_is_help=True)

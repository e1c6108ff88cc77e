"""Helpers every command shares: rich output, progress bars fed by engine events, clean exits."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

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
from typer.core import TyperGroup

from flowtui.core import events as ev
from flowtui.core.errors import DataError

if TYPE_CHECKING:
    from flowtui.core.data.schema import DataWarning
    from flowtui.core.registry import ModelSpec, RecommenderSpec

console = Console()
err_console = Console(stderr=True)

EXIT_BAD_INPUT = 2
#: Set by `FlowGroup` when the command line holds --json: errors then go to stdout as one JSON object.
_json_errors = False


def fail(message: str, details: list[str] | None = None, *, error: DataError | None = None) -> NoReturn:
    """Report bad input (no traceback) and exit with status 2: one line on stderr, or under --json one
    object `{"error": {"message", "file", "line", "column", "expected", "found", "count", "details"}}` on stdout.
    Line breaks and other control characters echoed from the input are shown escaped: one line, always."""
    message = one_line(message)
    details = [one_line(d) for d in details or []]
    if _json_errors:
        print_json({"error": error_record(message, details, error)})
        raise typer.Exit(EXIT_BAD_INPUT)
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    for line in details or []:
        err_console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


# C0, DEL and C1 controls, plus the Unicode line/paragraph separators: everything str.splitlines() breaks on.
_CONTROL = (
    {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
    | {0x2028: "\\u2028", 0x2029: "\\u2029"}
    | {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
)


def one_line(text: str) -> str:
    """`text` with line breaks and other control characters escaped (`\\n`, `\\x1b`...)."""
    return text.translate(_CONTROL)


def error_record(
    message: str, details: list[str] | None = None, error: DataError | None = None
) -> dict[str, Any]:
    """The JSON form of an error: the same keys whatever the error, None where a field does not apply."""
    return {
        "message": message,
        "file": error.path if error else None,
        "line": error.line if error else None,
        "column": error.column if error else None,
        "expected": error.expected if error else None,
        "found": error.found if error else None,
        "count": error.count if error else None,
        "details": list(details or []),
    }


def fail_data(err: DataError) -> NoReturn:
    """Report a refused file and exit with status 2."""
    fail(err.one_line(), err.details(), error=err)


class FlowGroup(TyperGroup):
    """The root command group: every error, usage errors included, exits with status 2 as one line on
    stderr (`error: ...`), or with --json anywhere on the line as one JSON object on stdout."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        global _json_errors
        argv = list(args) if args is not None else sys.argv[1:]
        _json_errors = "--json" in argv
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Exit as exc:
            code = exc.exit_code
        except typer.Abort:
            err_console.print("aborted", highlight=False)
            code = 130
        except Exception as exc:
            # a usage error (bad option value, unknown option...): click's exceptions carry the text
            if not hasattr(exc, "format_message"):
                raise
            message = " ".join(str(exc.format_message()).split())
            ctx = getattr(exc, "ctx", None)
            hint = f"see: {ctx.command_path} --help" if ctx is not None else None
            if _json_errors:
                print_json({"error": error_record(message, [hint] if hint else None)})
            else:
                err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
                if hint:
                    err_console.print(f"  {escape(hint)}", highlight=False, soft_wrap=True)
            code = EXIT_BAD_INPUT
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def print_json(obj: Any) -> None:
    """Write `obj` as JSON on stdout, nothing else (for scripts)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def or_warnings(on_event: ev.EventCallback | None, quiet: bool = False) -> ev.EventCallback | None:
    """`on_event`, or (without a progress bar, when not quiet) a callback that prints the warnings among
    the events on stderr, so that a warning (a damaged load cache rebuilt, a model that failed) is never
    lost when the output is not a terminal."""
    if on_event is not None or quiet:
        return on_event

    def warn(e: ev.Event) -> None:
        if isinstance(e, ev.Log) and e.level == "warning":
            err_console.print(
                f"[yellow]warning:[/] {escape(one_line(e.message))}", highlight=False, soft_wrap=True
            )

    return warn


def print_warnings(warnings: Sequence[DataWarning], out: Console | None = None) -> None:
    """The warnings about an accepted data file, each on one line with up to three examples (on stdout by
    default, as `data validate` prints them; commands whose stdout is their result pass `err_console`)."""
    out = out or console
    for w in warnings:
        out.print(f"[yellow]warning:[/] {escape(w.one_line())}", highlight=False, soft_wrap=True)
        for e in w.examples[:3]:
            out.print(f"  e.g. {e}", highlight=False, soft_wrap=True, markup=False)


@contextlib.contextmanager
def reserve_targets(out: Path, names: Sequence[str], check: Callable[[Path], None]) -> Iterator[None]:
    """Check every OUT/NAME with `check` before any work (only flowtui model folders are replaced; no
    links, pipes, devices, read-only folders) and hold their locks until the block ends, so that a second
    process training into the same folders is refused at once (exit 2 otherwise)."""
    from flowtui.core import safe_files

    targets = [out / name for name in names]
    try:
        safe_files.check_output_dir(out)
        for target in targets:
            check(target)
        out.mkdir(parents=True, exist_ok=True)
    except DataError as err:
        fail_data(err)
    except OSError as exc:
        fail(f"{out}: cannot create the folder ({exc.strerror or exc})")
    with contextlib.ExitStack() as stack:
        try:
            for target in targets:
                stack.enter_context(safe_files.folder_lock(target, shared=True))
        except DataError as err:
            fail_data(err)
        yield


def show_progress(quiet: bool = False) -> bool:
    """Progress bars only on a terminal and when not asked to be quiet (--json)."""
    return not quiet and console.is_terminal


def _finished_lines(e: ev.Event) -> None:
    """Without a terminal (a script, a pipe): a line on stderr per finished model, and the warnings, so that
    a long run is not silent (with --json the commands print nothing but their result)."""
    if isinstance(e, ev.AfterFit):
        how = "cancelled" if e.cancelled else f"done in {e.seconds:.1f}s"
        err_console.print(f"{escape(one_line(e.model))}: {how}", highlight=False, soft_wrap=True)
    elif isinstance(e, ev.Log) and e.level == "warning":
        err_console.print(
            f"[yellow]warning:[/] {escape(one_line(e.message))}", highlight=False, soft_wrap=True
        )


@contextlib.contextmanager
def progress_events(quiet: bool = False) -> Iterator[ev.EventCallback | None]:
    """Yield an `on_event` callback that drives a rich progress bar, or None when quiet/not a TTY.

    One bar per task or model; Log events print above the bars.
    """
    if not show_progress(quiet):
        yield None if quiet else _finished_lines
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


# -- the options several commands share, each declared once --------------------------------------------
# An option whose help is the same everywhere is a type (`JsonOpt`); one whose help says what it means to
# its command is made by a function (`json_option("...")`) inside the command's own `Annotated[...]`.

JSON_HELP = "Print JSON on stdout, nothing else."
DATA_HELP = "Train file (CSV, CSV.gz or parquet); default: the bundled sample."
PRESET_HELP = "quick (seconds) or full (default parameters)."
NO_CACHE_HELP = "Parse and check again, ignoring the load cache."


def json_option(text: str = JSON_HELP) -> Any:
    """--json: print JSON on stdout and nothing else (`text`: what the command prints)."""
    return typer.Option("--json", help=text)


def data_option(*short: str, text: str = DATA_HELP) -> Any:
    """--data: the train file (`short`: its one-letter names, e.g. "-d")."""
    return typer.Option("--data", *short, help=text)


def out_option(text: str, *short: str) -> Any:
    """--out: the file or folder the command writes (`text` says which)."""
    return typer.Option("--out", *short, help=text)


def model_option(text: str) -> Any:
    """--model / -m: model names, or a saved model's folder (`text` says which)."""
    return typer.Option("--model", "-m", help=text)


def set_option(text: str) -> Any:
    """--set: parameter overrides MODEL.KEY=VALUE (`text` says how they apply)."""
    return typer.Option("--set", help=text)


def allow_other_data_option(text: str) -> Any:
    """--allow-other-data: use a model on data it was not trained on (`text` says for what)."""
    return typer.Option("--allow-other-data", help=text)


#: --json with the usual help.
JsonOpt = Annotated[bool, json_option()]
#: --data: the train file, the bundled sample by default.
DataOpt = Annotated[Path | None, data_option()]
#: --preset: quick or full.
PresetOpt = Annotated[str, typer.Option("--preset", help=PRESET_HELP)]
#: --no-cache: parse the data file again.
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help=NO_CACHE_HELP)]


#: `flowtui data ...` sub-commands; modules add commands to it, cli/__init__ mounts it.
data_app = typer.Typer(help="Generate, validate, inspect and import data sets.", no_args_is_help=True)


def print_params(spec: ModelSpec | RecommenderSpec, name: str, preset: str, as_json: bool) -> None:
    """A model's parameters (`flowtui params`, `flowtui recommenders NAME`): value under the preset, what
    each accepts, and what it does; a bad preset fails with one line."""
    from rich.table import Table

    from flowtui.core.errors import ParamError
    from flowtui.core.params import show_value

    try:
        values = spec.params(None, preset)
    except ParamError as exc:
        fail(str(exc))
    rows: list[dict[str, Any]] = [
        {"key": p.key, "value": values[p.key], "default": p.default, "accepts": p.describe(), "help": p.help}
        for p in spec.schema.params
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{name} parameters ({preset} preset); set with --set {name}.KEY=VALUE")
    for col in ("key", "value", "accepts", "help"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["key"], show_value(r["value"]), r["accepts"], r["help"])
    console.print(table)

"""`flowtui data validate | info | import`: check, describe and convert data files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from flowtui.cli import common
from flowtui.core import paths
from flowtui.core.data.schema import DataError, DataWarning
from flowtui.core.events import Cancelled

if TYPE_CHECKING:
    from flowtui.core.data.io import Dataset

_PATH_HELP = "A DSG17 train or test file (CSV, CSV.gz or parquet)."


def _load(path: Path, *, no_cache: bool, quiet: bool) -> Dataset:
    """load_dataset with a progress bar; every refusal becomes a one-line error and exit status 2."""
    from flowtui.core.data.io import load_dataset

    try:
        with common.progress_events(quiet=quiet) as on_event:
            return load_dataset(path, use_cache=not no_cache, on_event=on_event)
    except DataError as err:
        common.fail_data(err)
    except UnicodeError as exc:
        common.fail(f"{path}: non-UTF-8 bytes; expected UTF-8 text; {exc}")
    except OSError as exc:
        common.fail(f"{path}: cannot read file: {exc.strerror or exc}")
    except Cancelled:
        common.fail("cancelled")


def _print_warnings(warnings: list[DataWarning]) -> None:
    for w in warnings:
        common.console.print(f"[yellow]warning:[/] {escape(w.one_line())}", highlight=False, soft_wrap=True)
        for e in w.examples[:3]:
            common.console.print(f"  e.g. {e}", highlight=False, soft_wrap=True, markup=False)


@common.data_app.command("validate")
def validate(
    path: Path = typer.Argument(..., help=_PATH_HELP),
    train: Path = typer.Option(
        None, "--train", help="For a test file: the train file whose users it should cover."
    ),
    no_cache: bool = typer.Option(
        False, "--no-cache", help="Parse and check again, ignoring the load cache."
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print {valid, kind, rows, warnings} as JSON (errors as {error: ...}), nothing else.",
    ),
) -> None:
    """Check a data file: exit 0 when it is accepted (warnings printed), 2 when it is refused."""
    from flowtui.core.data.io import check_test_users

    ds = _load(path, no_cache=no_cache, quiet=as_json)
    warnings = list(ds.warnings)
    if train is not None:
        if ds.kind != "test":
            common.fail(f"{path}: --train applies to a test file; this is a {ds.kind} file")
        warnings += check_test_users(_load(train, no_cache=no_cache, quiet=as_json), ds)
    if as_json:
        common.print_json(
            {
                "valid": True,
                "kind": ds.kind,
                "rows": ds.n_rows,
                "from_cache": ds.from_cache,
                "warnings": [{"code": w.code, "message": w.one_line(), "count": w.count} for w in warnings],
            }
        )
        return
    _print_warnings(warnings)
    note = " (from cache)" if ds.from_cache else ""
    common.console.print(
        f"[green]ok:[/] {escape(str(path))}: a valid {ds.kind} file, {ds.n_rows:,} rows, "
        f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}{note}",
        highlight=False,
        soft_wrap=True,
    )


@common.data_app.command("info")
def info(
    path: Path = typer.Argument(None, help=_PATH_HELP + " Defaults to the bundled sample's train.csv."),
    as_json: bool = typer.Option(
        False, "--json", help="Print exactly the summary keys as JSON, nothing else."
    ),
    no_cache: bool = typer.Option(
        False, "--no-cache", help="Parse and check again, ignoring the load cache."
    ),
) -> None:
    """Rows, users, items, artists, genres, listen and Flow rates, time span and warning counts."""
    from flowtui.core.data.summary import summarize

    path = path if path is not None else paths.sample_train()
    ds = _load(path, no_cache=no_cache, quiet=as_json)
    summary = summarize(ds)
    if as_json:
        common.print_json(summary)
        return
    from datetime import UTC, datetime

    def when(ts: int | None) -> str:
        return "-" if ts is None else f"{ts} ({datetime.fromtimestamp(ts, UTC):%Y-%m-%d %H:%M} UTC)"

    def rate(x: float | None) -> str:
        return "- (no labels)" if x is None else f"{x:.3f}"

    common.console.print(f"[bold]{escape(str(path))}[/] ({ds.kind} file)", highlight=False, soft_wrap=True)
    rows = [
        ("rows", f"{summary['rows']:,}"),
        ("users", f"{summary['users']:,}"),
        ("items", f"{summary['items']:,}"),
        ("artists", f"{summary['artists']:,}"),
        ("genres", f"{summary['genres']:,}"),
        ("listen_rate", rate(summary["listen_rate"])),
        ("flow_share", rate(summary["flow_share"])),
        ("flow_listen_rate", rate(summary["flow_listen_rate"])),
        ("ts_min", when(summary["ts_min"])),
        ("ts_max", when(summary["ts_max"])),
    ]
    for key, value in rows:
        common.console.print(f"  {key:<17} {value}", highlight=False)
    if summary["warnings"]:
        common.console.print("  warnings", highlight=False)
        for w in ds.warnings:
            common.console.print(
                f"    {w.code:<26} {w.count:>9,}  {w.message}", highlight=False, soft_wrap=True, markup=False
            )
    else:
        common.console.print("  warnings          none", highlight=False)


@common.data_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="An interaction log from another service (CSV/TSV with a header)."),
    user: str = typer.Option(..., "--user", help="Column holding the user."),
    item: str = typer.Option(..., "--item", help="Column holding the item (track, artist...)."),
    label: str = typer.Option(None, "--label", help="Column holding a 0/1 listened label."),
    weight: str = typer.Option(
        None, "--weight", help="Column holding a weight (play count...); needs --threshold."
    ),
    threshold: float = typer.Option(None, "--threshold", help="A row is listened when weight >= threshold."),
    time: str = typer.Option(
        None, "--time", help="Column holding Unix seconds or dates; else rows are spread."
    ),
    artist: str = typer.Option(None, "--artist", help="Column holding the artist (default: the item)."),
    genre: str = typer.Option(None, "--genre", help="Column holding a genre."),
    sep: str = typer.Option(",", "--sep", help="Field separator, e.g. ',' or a tab ('\\t')."),
    out: Path = typer.Option(..., "--out", "-o", help="The flowtui train CSV to write (atomically)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary of the written file."),
) -> None:
    """Turn another service's log into a flowtui train file; missing DSG17 columns get documented defaults."""
    from flowtui.core.data.importer import import_log
    from flowtui.core.data.io import from_frame, write_csv
    from flowtui.core.data.summary import summarize

    sep = "\t" if sep in ("\\t", "tab", "TAB") else sep
    try:
        with common.progress_events(quiet=as_json) as on_event:
            frame = import_log(
                file,
                user=user,
                item=item,
                label=label,
                weight=weight,
                threshold=threshold,
                time=time,
                artist=artist,
                genre=genre,
                sep=sep,
                on_event=on_event,
            )
        write_csv(frame, out)
    except DataError as err:
        common.fail_data(err)
    except UnicodeError as exc:
        common.fail(f"{file}: non-UTF-8 bytes; expected UTF-8 text; {exc}")
    except OSError as exc:
        common.fail(f"{out}: cannot write: {exc.strerror or exc}")
    except Cancelled:
        common.fail("cancelled; nothing was written")
    summary = summarize(from_frame(frame, "train"))
    if as_json:
        common.print_json({"out": str(out), **summary})
        return
    common.console.print(
        f"wrote {summary['rows']:,} rows ({summary['users']:,} users, {summary['items']:,} items, "
        f"listen rate {summary['listen_rate']:.3f}) to {out}",
        highlight=False,
        soft_wrap=True,
    )

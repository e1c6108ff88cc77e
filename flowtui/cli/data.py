"""`flowtui data validate | info | import`: check, describe and convert data files."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.markup import escape

from flowtui.cli import common
from flowtui.core import paths
from flowtui.core.errors import DataError
from flowtui.core.events import Cancelled

if TYPE_CHECKING:
    from flowtui.core.data.importer import ImportedLog
    from flowtui.core.data.io import Dataset

_PATH_HELP = "A DSG17 train or test file (CSV, CSV.gz or parquet)."


def _load(path: Path, *, no_cache: bool, quiet: bool) -> Dataset:
    """load_dataset with a progress bar; every refusal becomes a one-line error and exit status 2."""
    from flowtui.core.data.io import load_dataset

    try:
        with common.progress_events(quiet=quiet) as bar:
            return load_dataset(path, use_cache=not no_cache, on_event=common.or_warnings(bar, quiet))
    except DataError as err:
        common.fail_data(err)
    except UnicodeError:
        common.fail(f"{path}: non-UTF-8 bytes; expected UTF-8 text")
    except OSError as exc:
        common.fail(f"{path}: cannot read file: {reason(exc)}")
    except Cancelled:
        common.fail("cancelled")


def reason(exc: OSError) -> str:
    """An OS error in words, without the temporary file or path it names."""
    from flowtui.core.data.reader import os_reason

    return os_reason(exc)


@common.data_app.command("validate")
def validate(
    path: Annotated[Path, typer.Argument(help=_PATH_HELP)],
    train: Annotated[
        Path | None,
        typer.Option("--train", help="For a test file: the train file whose users it should cover."),
    ] = None,
    no_cache: common.NoCacheOpt = False,
    as_json: Annotated[
        bool,
        common.json_option(
            "Print {valid, kind, rows, warnings} as JSON (errors as {error: ...}), nothing else."
        ),
    ] = False,
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
    common.print_warnings(warnings)
    note = " (from cache)" if ds.from_cache else ""
    common.console.print(
        f"[green]ok:[/] {escape(str(path))}: a valid {ds.kind} file, {ds.n_rows:,} rows, "
        f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}{note}",
        highlight=False,
        soft_wrap=True,
    )


@common.data_app.command("info")
def info(
    path: Annotated[
        Path | None, typer.Argument(help=_PATH_HELP + " Defaults to the bundled sample's train.csv.")
    ] = None,
    as_json: Annotated[
        bool, common.json_option("Print exactly the summary keys as JSON, nothing else.")
    ] = False,
    no_cache: common.NoCacheOpt = False,
) -> None:
    """Rows, users, items, artists, genres, listen and Flow rates, time span and warning counts."""
    from flowtui.core.data.summary import format_ts, summarize

    path = path if path is not None else paths.sample_train()
    ds = _load(path, no_cache=no_cache, quiet=as_json)
    summary = summarize(ds)
    if as_json:
        common.print_json(summary)
        return

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
        ("ts_min", format_ts(summary["ts_min"])),
        ("ts_max", format_ts(summary["ts_max"])),
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


def _check_import_options(label: str | None, weight: str | None, threshold: float | None, sep: str) -> None:
    """Refuse bad option combinations and values, naming the options (the core names only columns)."""
    import math

    if (label is None) == (weight is None):
        common.fail("give either --label COLUMN or --weight COLUMN with --threshold, not both or neither")
    if weight is not None and threshold is None:
        common.fail(f"--weight {weight} needs --threshold (a row is listened when weight >= threshold)")
    if threshold is not None and not math.isfinite(threshold):
        common.fail(f"--threshold: expected a finite number; found {threshold}")
    if len(sep) != 1 or sep in '\r\n"':
        common.fail(f"--sep: expected one character other than a quote or a line break; found {sep!r}")


@common.data_app.command("import")
def import_cmd(
    file: Annotated[
        Path, typer.Argument(help="An interaction log from another service (CSV/TSV with a header).")
    ],
    *,
    user: Annotated[str, typer.Option("--user", help="Column holding the user.")],
    item: Annotated[str, typer.Option("--item", help="Column holding the item (track, artist...).")],
    label: Annotated[str | None, typer.Option("--label", help="Column holding a 0/1 listened label.")] = None,
    weight: Annotated[
        str | None,
        typer.Option(
            "--weight",
            help="Column holding a weight (play count...); needs --threshold. Kept as the `plays` column.",
        ),
    ] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="A row is listened when weight >= threshold.")
    ] = None,
    time: Annotated[
        str | None, typer.Option("--time", help="Column holding Unix seconds or dates; else rows are spread.")
    ] = None,
    artist: Annotated[
        str | None, typer.Option("--artist", help="Column holding the artist (default: the item).")
    ] = None,
    genre: Annotated[str | None, typer.Option("--genre", help="Column holding a genre.")] = None,
    sep: Annotated[str, typer.Option("--sep", help="Field separator, e.g. ',' or a tab ('\\t').")] = ",",
    out: Annotated[Path, common.out_option("The flowtui train CSV to write (atomically).", "-o")],
    as_json: Annotated[bool, common.json_option("Print a JSON summary of the written file.")] = False,
) -> None:
    """Turn another service's log into a flowtui train file; missing DSG17 columns get documented defaults.

    The log's own user, item, artist and genre ids are kept in OUT.ids.json beside OUT (written atomically
    with it), so recommendations on OUT can be shown in the log's ids."""
    from flowtui.core.data.importer import import_log_with_ids, save_import

    sep = "\t" if sep in ("\\t", "tab", "TAB") else sep
    _check_import_options(label, weight, threshold, sep)
    read = partial(
        import_log_with_ids,
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
    )
    try:
        imported = _with_progress(read, quiet=as_json)
        ids_file = save_import(imported, out)
    except DataError as err:
        _fail_import(err)
    except OSError as exc:
        common.fail(f"{out}: cannot write: {reason(exc)}")
    _report_import(imported, out, ids_file, as_json)


def _with_progress(read: Callable[..., ImportedLog], *, quiet: bool) -> ImportedLog:
    """`read(on_event=...)` with a progress bar; a cancel exits 2 with nothing written."""
    try:
        with common.progress_events(quiet=quiet) as bar:
            return read(on_event=common.or_warnings(bar, quiet))
    except Cancelled:
        common.fail("cancelled; nothing was written")


def _report_import(imported: ImportedLog, out: Path, ids_file: Path, as_json: bool) -> None:
    """What was written: a JSON summary, or the warnings and one line."""
    from flowtui.core.data.io import Dataset
    from flowtui.core.data.summary import summarize

    summary = summarize(Dataset(imported.frame, "train", warnings=imported.warnings))
    if as_json:
        common.print_json({"out": str(out), "ids": str(ids_file), **summary})
        return
    common.print_warnings(imported.warnings)
    common.console.print(
        f"wrote {summary['rows']:,} rows ({summary['users']:,} users, {summary['items']:,} items, "
        f"listen rate {summary['listen_rate']:.3f}) to {out}; the log's own ids are in {ids_file}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )


def _fail_import(err: DataError) -> NoReturn:
    """A refused log: one line, with a hint on the column options when columns are missing."""
    hint = []
    if err.message == "missing columns":
        hint = [
            "--user, --item, --label, --weight, --time, --artist and --genre name columns of the log's header"
        ]
    common.fail(err.one_line(), [*err.details(), *hint], error=err)

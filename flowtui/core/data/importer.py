"""Turn another service's interaction log (user, item, play count...) into a DSG17 train frame.

The log needs a user and an item column, plus either a 0/1 `label` column or a `weight` column (play
count, rating, seconds played) with a `threshold`: a row counts as listened when `weight >= threshold`.
Ids are remapped to dense integers ranked by activity, as in DSG17 (user 0 has the most rows, media 0
is the most played); the log's own ids are kept in an `IdMap` (`import_log_with_ids`), which
`save_import` writes beside the data as `OUT.ids.json` (see `idmap`), so recommendations can be shown in
the log's ids. With a `weight`, `import_log_with_ids` keeps each row's weight in a `plays` column beside
the label (the recommenders sum it over a pair's rows and can learn from the counts, see
`InteractionMatrix.counts`); a log with a negative weight keeps no `plays` (a `weight_not_kept` warning).
Columns the log lacks get these documented defaults:

| column | default |
|---|---|
| ts_listen | the `time` column (Unix seconds, or dates/datetimes parsed as UTC); without it, each user's rows in file order, 4 minutes apart from 2016-11-01 00:00 UTC |
| artist_id | the `artist` column remapped, else the item's own id (every item its own artist) |
| genre_id | the `genre` column remapped from 1 (0 stays "unknown"), else 0 |
| album_id | the item's id |
| listen_type | 1: every interaction counts as a proposal the user took or skipped, so the Flow holdout (each user's last `listen_type == 1` row) holds out each user's last interaction |
| context_type, platform_name, platform_family, user_gender, user_age | 0 |
| media_duration | 222 (the DSG17 median, in seconds) |
| release_date | 19700101 (before any listen, so no listened-before-release warning) |
"""

from __future__ import annotations

import csv
import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from flowtui.core.data import csvscan, reader
from flowtui.core.data.idmap import IdMap, data_checksum, ids_path
from flowtui.core.data.io import from_frame
from flowtui.core.data.schema import PLAYS, PLAYS_DTYPE, TRAIN_COLUMNS, DataWarning
from flowtui.core.errors import DataError
from flowtui.core.events import EventCallback, Progress, check_cancel, emit

DEFAULT_START_TS = 1_477_958_400  # 2016-11-01 00:00 UTC
DEFAULT_GAP_S = 240
DEFAULT_DURATION = 222
DEFAULT_RELEASE = 19700101
_MAX_TS = 2**62


@dataclass
class ImportedLog:
    """An imported log: the validated DSG17 train frame and the map back to the log's own ids."""

    frame: pd.DataFrame
    ids: IdMap
    log: Path
    warnings: list[DataWarning] = field(default_factory=list)


def _dense_by_activity(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(dense ids 0..n-1, 0 for the most frequent value (ties: first appearance first); the original
    values in dense-id order)."""
    codes, uniques = pd.factorize(values, sort=False)
    counts = np.bincount(codes, minlength=len(uniques))
    order = np.lexsort((np.arange(len(counts)), -counts))  # most rows first, then first seen
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[codes], np.asarray(uniques, dtype=object)[order]


def _locate(
    path: Path, column: str, bad: np.ndarray, values: pd.Series, expected: str, msg: str
) -> DataError:
    idx = np.flatnonzero(bad)
    shown = [f"line {i + 2}: {values.iloc[i]!r}" for i in idx[:5]]
    return DataError(
        path,
        msg,
        line=int(idx[0]) + 2,
        column=column,
        expected=expected,
        found=repr(values.iloc[idx[0]]),
        examples=shown,
        count=len(idx),
    )


def _numbers(path: Path, column: str, s: pd.Series) -> np.ndarray:
    x = pd.to_numeric(s.str.strip(), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(x)
    if bad.any():
        raise _locate(path, column, bad, s, "a number", "value is not a number")
    return x


def _timestamps(path: Path, column: str, s: pd.Series) -> np.ndarray:
    stripped = s.str.strip()
    as_num = pd.to_numeric(stripped, errors="coerce")
    if as_num.notna().all():
        x = as_num.to_numpy(dtype=float)
        bad = ~np.isfinite(x) | (x != np.floor(x)) | (np.abs(x) > _MAX_TS)
        if bad.any():
            raise _locate(path, column, bad, s, f"whole Unix seconds within +-{_MAX_TS}", "bad timestamp")
        return x.astype(np.int64)
    if as_num.notna().mean() > 0.5:  # mostly Unix seconds: the others are the offenders, not the numbers
        bad = as_num.isna().to_numpy()
        raise _locate(path, column, bad, s, "whole Unix seconds (as most of the column)", "bad timestamp")
    parsed = pd.to_datetime(stripped, errors="coerce", utc=True, format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise _locate(path, column, bad, s, "Unix seconds or a date/time", "bad timestamp")
    return (parsed.astype("datetime64[s, UTC]").astype("int64")).to_numpy()


def _check_options(p: Path, label: str | None, weight: str | None, threshold: float | None, sep: str) -> None:
    """Refuse missing or ambiguous label options, a bad separator or threshold, and a path that is not a
    readable, non-empty regular file (checked before it is opened: a named pipe never blocks)."""
    if (label is None) == (weight is None):
        raise DataError(
            p, "say how to label rows: give either a label column or a weight column with a threshold"
        )
    if weight is not None and threshold is None:
        raise DataError(p, "a weight column needs a threshold", column=weight, expected="a threshold")
    if threshold is not None and not math.isfinite(threshold):
        raise DataError(p, "bad threshold", expected="a finite number", found=repr(threshold))
    if len(sep) != 1 or sep in '\r\n"':
        raise DataError(
            p, "bad separator", expected="one character other than a quote or a line break", found=repr(sep)
        )
    reader.check_file(p)


def _read_header(p: Path, sep: str) -> list[str]:
    with csvscan.open_binary(p) as f:
        raw = f.readline(1 << 20)
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError:
        raise DataError(p, "non-UTF-8 bytes", line=1, expected="UTF-8 text") from None
    return [h.strip() for h in next(csv.reader([text], delimiter=sep), [])]


def _read_log(p: Path, cols: list[str], sep: str) -> pd.DataFrame:
    """The columns `cols` of the log as strings; DataError for a missing column or an unreadable file."""
    try:
        header = _read_header(p, sep)
        missing = [c for c in cols if c not in header]
        if missing:
            found = ", ".join(h or repr(h) for h in header)[:200] or "no column names"
            raise DataError(p, "missing columns", line=1, expected=", ".join(missing), found=found)
        dups = [c for c in cols if header.count(c) > 1]
        if dups:
            raise DataError(
                p, "duplicate column names", line=1, expected="unique names", found=", ".join(dups)
            )
        table = pacsv.read_csv(
            p,
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(
                include_columns=cols,
                column_types={c: pa.binary() for c in cols},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if re.search(r"Expected \d+ columns, got \d+", str(exc)):
            raise _field_count_error(p, header, sep) from None
        raise DataError(p, f"cannot read file: {reader.first_line(exc)}") from None
    except OSError as exc:
        raise DataError(p, f"cannot read file: {reader.os_reason(exc)}") from None
    except (pa.ArrowException, csv.Error, EOFError) as exc:
        raise DataError(p, f"cannot read file: {reader.first_line(exc)}") from None
    if table.num_rows == 0:
        raise DataError(p, "no data rows", line=2, expected="at least one row")
    return pd.DataFrame({c: _decoded(p, c, table.column(c)) for c in cols})


def _decoded(p: Path, column: str, col: pa.ChunkedArray) -> pd.Series:
    """A raw column as text; DataError naming the lines of values that are not UTF-8."""
    from flowtui.core.data.offenders import Source, utf8_error

    err = utf8_error(column, col, Source(p, csv=True))
    if err is not None:
        raise err
    series: pd.Series = col.cast(pa.string()).to_pandas()
    return series


def _field_count_error(p: Path, header: list[str], sep: str) -> DataError:
    found = csvscan.field_count_offenders(p, len(header), sep=sep)
    if not found.count:
        return DataError(
            p, "cannot read file: rows with a wrong number of fields", expected=f"{len(header)} fields"
        )
    line, n, _ = found.examples[0]
    return DataError(
        p,
        "wrong number of fields",
        line=line,
        expected=f"{found.expected} fields",
        found=f"{n}",
        examples=[f"line {ln}: {text}" for ln, _, text in found.examples],
        count=found.count,
    )


def _listened(
    p: Path, df: pd.DataFrame, label: str | None, weight: str | None, threshold: float | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(`is_listened` per row: the 0/1 `label` column, or `weight >= threshold`; the weights, or None)."""
    if label is not None:
        y = _numbers(p, label, df[label])
        if not np.isin(y, (0.0, 1.0)).all():
            raise _locate(p, label, ~np.isin(y, (0.0, 1.0)), df[label], "0 or 1", "label outside {0, 1}")
        return y.astype(np.int8), None
    assert weight is not None and threshold is not None
    w = _numbers(p, weight, df[weight])
    return (w >= threshold).astype(np.int8), w


def _plays(weight: str, w: np.ndarray) -> tuple[np.ndarray | None, list[DataWarning]]:
    """The `plays` column from the weights; None and a warning when some weight is negative (not a count)."""
    if (w >= 0).all():
        return w.astype(PLAYS_DTYPE), []
    n = int((w < 0).sum())
    message = f"weights below 0 are not play counts: no {PLAYS} column kept (labels from the threshold only)"
    return None, [DataWarning("weight_not_kept", message, n, weight)]


def _train_frame(
    df: pd.DataFrame,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    listened: np.ndarray,
    ts: np.ndarray,
    artist_ids: np.ndarray | None,
    genre_ids: np.ndarray | None,
    plays: np.ndarray | None = None,
) -> pd.DataFrame:
    """The DSG17 train columns, with the documented defaults for what the log lacks (and `plays`, if any)."""
    n = len(df)
    out = pd.DataFrame(
        {
            "genre_id": genre_ids + 1 if genre_ids is not None else np.zeros(n, np.int32),
            "ts_listen": ts,
            "media_id": item_ids,
            "album_id": item_ids,
            "context_type": np.zeros(n, np.int16),
            "release_date": np.full(n, DEFAULT_RELEASE, np.int32),
            "platform_name": np.zeros(n, np.int8),
            "platform_family": np.zeros(n, np.int8),
            "media_duration": np.full(n, DEFAULT_DURATION, np.int32),
            "listen_type": np.ones(n, np.int8),
            "user_gender": np.zeros(n, np.int8),
            "user_id": user_ids,
            "artist_id": artist_ids if artist_ids is not None else item_ids,
            "user_age": np.zeros(n, np.int8),
            "is_listened": listened,
        }
    )[list(TRAIN_COLUMNS)]
    if plays is not None:
        out[PLAYS] = plays
    return out


def import_log(
    path: str | Path,
    *,
    user: str,
    item: str,
    label: str | None = None,
    weight: str | None = None,
    threshold: float | None = None,
    time: str | None = None,
    artist: str | None = None,
    genre: str | None = None,
    sep: str = ",",
    keep_weight: bool = False,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> pd.DataFrame:
    """Read an interaction log and return a validated DSG17 train frame (compact dtypes).

    `label` (values 0/1) or `weight` with `threshold` gives `is_listened`; `time`, `artist` and `genre`
    are optional columns; see the module docstring for the defaults of everything else. Raises DataError
    for a missing file or column, a bad value (with its line), or missing/ambiguous label options.
    The frame holds the DSG17 train columns only, unless `keep_weight` adds the weights as `plays`.
    `import_log_with_ids` returns the map back to the log's ids as well.
    """
    return import_log_with_ids(
        path,
        user=user,
        item=item,
        label=label,
        weight=weight,
        threshold=threshold,
        time=time,
        artist=artist,
        genre=genre,
        sep=sep,
        keep_weight=keep_weight,
        on_event=on_event,
        cancel=cancel,
    ).frame


def import_log_with_ids(
    path: str | Path,
    *,
    user: str,
    item: str,
    label: str | None = None,
    weight: str | None = None,
    threshold: float | None = None,
    time: str | None = None,
    artist: str | None = None,
    genre: str | None = None,
    sep: str = ",",
    keep_weight: bool = True,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> ImportedLog:
    """`import_log`, returning the frame with the `IdMap` from internal ids back to the log's ids; a
    `weight` is kept as the `plays` column unless `keep_weight` is False (what `data import` writes)."""
    p = Path(path)
    _check_options(p, label, weight, threshold, sep)
    wanted = {
        "user": user,
        "item": item,
        "label": label,
        "weight": weight,
        "time": time,
        "artist": artist,
        "genre": genre,
    }
    cols = list(dict.fromkeys(c for c in wanted.values() if c is not None))
    emit(on_event, Progress("import", 0, 3, "read"))
    df = _read_log(p, cols, sep)
    check_cancel(cancel)
    emit(on_event, Progress("import", 1, 3, "convert"))
    for key in ("user", "item"):
        empty = (df[wanted[key]].str.strip() == "").to_numpy()
        if empty.any():
            raise _locate(p, str(wanted[key]), empty, df[wanted[key]], "an id", "missing id")
    user_ids, users = _dense_by_activity(df[user])
    item_ids, items = _dense_by_activity(df[item])
    artist_ids, artists = _dense_by_activity(df[artist]) if artist else (None, None)
    genre_ids, genres = _dense_by_activity(df[genre]) if genre else (None, None)
    listened, weights = _listened(p, df, label, weight, threshold)
    plays, warnings = _plays(str(weight), weights) if keep_weight and weights is not None else (None, [])
    if time is not None:
        ts = _timestamps(p, time, df[time])
    else:
        position = pd.Series(user_ids).groupby(user_ids).cumcount().to_numpy()
        ts = DEFAULT_START_TS + position.astype(np.int64) * DEFAULT_GAP_S
    out = _train_frame(df, user_ids, item_ids, listened, ts, artist_ids, genre_ids, plays)
    check_cancel(cancel)
    emit(on_event, Progress("import", 2, 3, "validate"))
    ds = from_frame(out, "train", name=str(p))
    emit(on_event, Progress("import", 3, 3, "done"))
    columns = {"user": user, "item": item, "artist": artist, "genre": genre}
    ids = IdMap(users, items, artists, genres, columns=columns)
    return ImportedLog(ds.frame, ids, p, warnings + ds.warnings)


def save_import(imported: ImportedLog, out: str | Path) -> Path:
    """Write the imported frame to `out` (CSV) and its id map to `out` + ".ids.json"; returns the latter.

    Both are written atomically (`safe_files`), the map first: a crash between the two renames leaves a
    map whose checksum does not match the data, which `IdMap.for_dataset` refuses, never a wrong map.
    An output that is a link, a pipe, a device, a folder or read-only is refused before anything is written,
    and so is the log itself or an existing file that is not an earlier import output (`outputs`).
    """
    from flowtui.core import safe_files
    from flowtui.core.data.outputs import check_import_target

    target = Path(out)
    check_import_target(target, imported.log)
    ids_file = ids_path(target)
    safe_files.check_output_path(ids_file, make_parents=True)
    with safe_files.atomic_path(target, make_parents=True) as tmp:
        table = pa.Table.from_pandas(imported.frame, preserve_index=False)
        pacsv.write_csv(
            table, tmp, write_options=pacsv.WriteOptions(quoting_style="none", quoting_header="none")
        )
        checksum = data_checksum(tmp)
        size = tmp.stat().st_size
        with safe_files.atomic_write(ids_file) as fh:
            fh.write(imported.ids.to_json(checksum, target.name, size, str(imported.log)))
    return ids_file

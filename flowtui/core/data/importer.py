"""Turn another service's interaction log (user, item, play count...) into a DSG17 train frame.

The log needs a user and an item column, plus either a 0/1 `label` column or a `weight` column (play
count, rating, seconds played) with a `threshold`: a row counts as listened when `weight >= threshold`.
Ids are remapped to dense integers ranked by activity, as in DSG17 (user 0 has the most rows, media 0
is the most played). Columns the log lacks get these documented defaults:

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
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from flowtui.core.data.io import from_frame
from flowtui.core.data.schema import TRAIN_COLUMNS, DataError
from flowtui.core.events import EventCallback, Progress, check_cancel, emit

DEFAULT_START_TS = 1_477_958_400  # 2016-11-01 00:00 UTC
DEFAULT_GAP_S = 240
DEFAULT_DURATION = 222
DEFAULT_RELEASE = 19700101


def _dense_by_activity(values: pd.Series) -> np.ndarray:
    """Dense ids 0..n-1, 0 for the most frequent value (ties: first appearance first)."""
    codes, _ = pd.factorize(values, sort=False)
    counts = np.bincount(codes)
    order = np.lexsort((np.arange(len(counts)), -counts))  # most rows first, then first seen
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[codes]


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
        if (x != np.floor(x)).any() or (np.abs(x) > 2**62).any():
            raise _locate(path, column, x != np.floor(x), s, "whole Unix seconds", "bad timestamp")
        return x.astype(np.int64)
    parsed = pd.to_datetime(stripped, errors="coerce", utc=True, format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise _locate(path, column, bad, s, "Unix seconds or a date/time", "bad timestamp")
    return (parsed.astype("datetime64[s, UTC]").astype("int64")).to_numpy()


def _check_options(p: Path, label: str | None, weight: str | None, threshold: float | None, sep: str) -> None:
    """Refuse missing or ambiguous label options, a bad separator and a missing file."""
    if (label is None) == (weight is None):
        raise DataError(
            p, "say how to label rows: give either a label column or a weight column with a threshold"
        )
    if weight is not None and threshold is None:
        raise DataError(p, "a weight column needs a threshold", column=weight, expected="a threshold")
    if len(sep) != 1:
        raise DataError(p, "bad separator", expected="one character", found=repr(sep))
    if not p.is_file():
        raise DataError(p, "file not found")


def _read_log(p: Path, cols: list[str], sep: str) -> pd.DataFrame:
    """The columns `cols` of the log as strings; DataError for a missing column or an unreadable file."""
    try:
        with open(p, encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader([f.readline()], delimiter=sep), [])
        header = [h.strip() for h in header]
        missing = [c for c in cols if c not in header]
        if missing:
            raise DataError(
                p, "missing columns", line=1, expected=", ".join(missing), found=", ".join(header)[:200]
            )
        table = pacsv.read_csv(
            p,
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(
                include_columns=cols,
                column_types={c: pa.string() for c in cols},
                strings_can_be_null=False,
            ),
        )
    except UnicodeDecodeError:
        raise DataError(p, "non-UTF-8 bytes", line=1, expected="UTF-8 text") from None
    except (pa.ArrowException, OSError, csv.Error) as exc:
        raise DataError(p, f"cannot read file: {str(exc).splitlines()[0][:200]}") from None
    if table.num_rows == 0:
        raise DataError(p, "no data rows", line=2, expected="at least one row")
    df: pd.DataFrame = table.to_pandas()
    return df


def _listened(
    p: Path, df: pd.DataFrame, label: str | None, weight: str | None, threshold: float | None
) -> np.ndarray:
    """`is_listened` per row: the 0/1 `label` column, or `weight >= threshold`."""
    if label is not None:
        y = _numbers(p, label, df[label])
        if not np.isin(y, (0.0, 1.0)).all():
            raise _locate(p, label, ~np.isin(y, (0.0, 1.0)), df[label], "0 or 1", "label outside {0, 1}")
        return y.astype(np.int8)
    assert weight is not None and threshold is not None
    return (_numbers(p, weight, df[weight]) >= threshold).astype(np.int8)


def _train_frame(
    df: pd.DataFrame,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    listened: np.ndarray,
    ts: np.ndarray,
    artist: str | None,
    genre: str | None,
) -> pd.DataFrame:
    """The DSG17 train columns, with the documented defaults for what the log lacks."""
    n = len(df)
    return pd.DataFrame(
        {
            "genre_id": _dense_by_activity(df[genre]) + 1 if genre else np.zeros(n, np.int32),
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
            "artist_id": _dense_by_activity(df[artist]) if artist else item_ids,
            "user_age": np.zeros(n, np.int8),
            "is_listened": listened,
        }
    )[list(TRAIN_COLUMNS)]


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
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> pd.DataFrame:
    """Read an interaction log and return a validated DSG17 train frame (compact dtypes).

    `label` (values 0/1) or `weight` with `threshold` gives `is_listened`; `time`, `artist` and `genre`
    are optional columns; see the module docstring for the defaults of everything else. Raises DataError
    for a missing file or column, a bad value (with its line), or missing/ambiguous label options.
    """
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
    user_ids = _dense_by_activity(df[user])
    item_ids = _dense_by_activity(df[item])
    listened = _listened(p, df, label, weight, threshold)
    if time is not None:
        ts = _timestamps(p, time, df[time])
    else:
        position = pd.Series(user_ids).groupby(user_ids).cumcount().to_numpy()
        ts = DEFAULT_START_TS + position.astype(np.int64) * DEFAULT_GAP_S
    out = _train_frame(df, user_ids, item_ids, listened, ts, artist, genre)
    check_cancel(cancel)
    emit(on_event, Progress("import", 2, 3, "validate"))
    ds = from_frame(out, "train", name=str(p))
    emit(on_event, Progress("import", 3, 3, "done"))
    return ds.frame

"""The value rules, vectorised on numpy columns: errors refuse the data, warnings count odd rows.

Errors (a DataError naming the offending lines or rows): a 0/1 column outside {0, 1}, a negative value
where none may be, a `plays` weight that is not finite, a repeated `sample_id` in a test file. Warnings (a
DataWarning with a count and examples): dates that are not dates or are placeholders, bogus clocks (before
2009, or in 2100 or later up to INT64_MAX: every int64 is a valid timestamp to the checks here, none of
them overflows), listens before the release, zero durations. The rows behind a warning in `DROPPABLE` can
be removed on request.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from flowtui.core.data.offenders import Source, shown
from flowtui.core.data.schema import (
    BINARY_COLUMNS,
    MAX_PLAUSIBLE_TS,
    MIN_PLAUSIBLE_TS,
    NON_NEGATIVE_COLUMNS,
    PLAYS,
    SECONDS_PER_DAY,
    DataWarning,
    Kind,
    columns_for,
    optional_columns,
)

#: Warning codes whose rows `load_dataset(drop=...)` can remove.
DROPPABLE: frozenset[str] = frozenset(
    {
        "bogus_timestamp",
        "future_timestamp",
        "invalid_release_date",
        "implausible_release_date",
        "listened_before_release",
        "zero_duration",
    }
)


def drop_set(drop: Collection[str], bogus: bool) -> frozenset[str]:
    """The warning codes to drop rows for (`bogus` adds "bogus_timestamp" and "future_timestamp");
    ValueError for unknown ones."""
    out = frozenset(drop) | ({"bogus_timestamp", "future_timestamp"} if bogus else frozenset())
    unknown = out - DROPPABLE
    if unknown:
        raise ValueError(f"cannot drop {sorted(unknown)}; droppable warnings: {sorted(DROPPABLE)}")
    return out


def _valid_mmdd() -> np.ndarray:
    """A lookup: is MMDD (0..9999) a month-day of a leap year? (29 February is checked apart.)"""
    ok = np.zeros(10000, dtype=bool)
    for month, days in enumerate((31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), start=1):
        ok[month * 100 + 1 : month * 100 + days + 1] = True
    return ok


_VALID_MMDD = _valid_mmdd()


def _release_checks(rd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(valid calendar date, implausible placeholder date) masks of YYYYMMDD integers.

    Invalid: not a calendar date (month 13, 31 April, 0, negative...). Implausible: a real calendar date
    that is a known placeholder rather than a release: on or before 1900-01-01 (the data's "unknown",
    19000101) or in year 2100 or later (the data holds 30000101). Both are counted as separate warnings.
    """
    md = rd % 10000
    valid = _VALID_MMDD[md] & (rd > 0)
    feb29 = np.flatnonzero(md == 229)
    if len(feb29):
        y = rd[feb29] // 10000
        valid[feb29] &= ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    implausible = valid & ((rd <= 19000101) | (rd >= 21000101))
    return valid, implausible


def _listen_dates(ts: np.ndarray) -> np.ndarray:
    """The UTC calendar date of each timestamp as a YYYYMMDD integer (a lookup over the days spanned)."""
    day = ts // SECONDS_PER_DAY
    lo, hi = (int(day.min()), int(day.max())) if len(day) else (0, 0)
    if hi - lo > 400_000:  # absurd span (years beyond 3000): convert each value instead
        return _ymd(day)
    lut = _ymd(np.arange(lo, hi + 1, dtype=np.int64))
    dates: np.ndarray = lut[day - lo]
    return dates


def _ymd(days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 as YYYYMMDD integers."""
    dt = days.astype("datetime64[D]")
    y = dt.astype("datetime64[Y]").astype(np.int64) + 1970
    month_start = dt.astype("datetime64[M]")
    m = month_start.astype(np.int64) % 12 + 1
    d = (dt - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    ymd: np.ndarray = y * 10000 + m * 100 + d
    return ymd


def _warning(
    code: str, message: str, mask: np.ndarray, column: str, values: np.ndarray, src: Source
) -> DataWarning | None:
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return None
    examples = tuple(f"{src.label(int(i))}: {values[i].item()}" for i in idx[:5])
    return DataWarning(code, message, len(idx), column, examples)


def _check_errors(arrays: dict[str, np.ndarray], kind: Kind, src: Source) -> None:
    """Raise a DataError for values no file may hold: non-binary flags, negatives, duplicate sample ids."""
    for c in BINARY_COLUMNS:
        if c in arrays:
            x = arrays[c]
            bad = (x != 0) & (x != 1)
            if bad.any():
                raise src.error("value outside {0, 1}", c, "0 or 1", np.flatnonzero(bad), shown(x))
    for c in NON_NEGATIVE_COLUMNS:
        x = arrays[c]
        bad = x < 0
        if bad.any():
            raise src.error("negative value", c, "a value >= 0", np.flatnonzero(bad), shown(x))
    if PLAYS in arrays:
        x = arrays[PLAYS]
        bad = ~np.isfinite(x) | (x < 0)
        if bad.any():
            what = "negative value" if np.isfinite(x[bad]).all() else "value is not a finite number >= 0"
            raise src.error(what, PLAYS, "a finite number >= 0", np.flatnonzero(bad), shown(x))
    if kind == "test":
        sid = arrays["sample_id"]
        order = np.argsort(sid, kind="stable")
        dup_sorted = np.flatnonzero(sid[order][1:] == sid[order][:-1]) + 1
        if len(dup_sorted):
            idx = np.sort(order[dup_sorted])
            raise src.error("duplicate sample_id", "sample_id", "unique ids", idx, shown(sid))


def _warning_masks(arrays: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, str, str, np.ndarray]]:
    """{warning code: (offending rows mask, message, column, column values)}, in reporting order."""
    ts, rd, dur = arrays["ts_listen"], arrays["release_date"], arrays["media_duration"]
    valid, implausible = _release_checks(rd)
    return {
        "invalid_release_date": (~valid, "release_date is not a valid YYYYMMDD date", "release_date", rd),
        "implausible_release_date": (
            implausible,
            "release_date is a placeholder (<= 19000101 or year >= 2100)",
            "release_date",
            rd,
        ),
        "bogus_timestamp": (ts < MIN_PLAUSIBLE_TS, "ts_listen before 2009 (bogus clock)", "ts_listen", ts),
        "future_timestamp": (
            ts >= MAX_PLAUSIBLE_TS,
            "ts_listen in year 2100 or later (bogus clock)",
            "ts_listen",
            ts,
        ),
        "listened_before_release": (
            valid & (_listen_dates(ts) < rd),
            "listened before the release date",
            "ts_listen",
            ts,
        ),
        "zero_duration": (dur == 0, "media_duration of 0", "media_duration", dur),
    }


def validate(
    arrays: dict[str, np.ndarray], kind: Kind, src: Source, drop: frozenset[str]
) -> tuple[pd.DataFrame, list[DataWarning]]:
    """Apply the value rules (errors raise DataError) and build the frame; returns it with the warnings."""
    _check_errors(arrays, kind, src)
    masks = _warning_masks(arrays)
    warnings = [
        w
        for code, (mask, message, column, values) in masks.items()
        if (w := _warning(code, message, mask, column, values, src)) is not None
    ]
    if drop:
        gone = np.zeros(len(arrays["ts_listen"]), dtype=bool)
        for code in drop:
            gone |= masks[code][0]
        n = int(gone.sum())
        if n:
            keep = ~gone
            arrays = {c: x[keep] for c, x in arrays.items()}
        warnings.append(
            DataWarning("dropped_rows", f"rows removed on request ({', '.join(sorted(drop))})", n)
        )
    kept = [*columns_for(kind), *(c for c in optional_columns(kind, list(arrays)))]
    frame = pd.DataFrame({c: arrays[c] for c in kept}, copy=False)
    return frame, warnings

"""Typed columns from raw ones, and errors that name the offending rows when a value does not fit.

`Source` says where rows come from: a CSV counts lines (the header is line 1, the first data row line 2;
blank lines are skipped by the parser and not counted), a frame or a parquet file counts row positions.
Every DataError built here names the first offender, up to five examples and the count of all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowtui.core.data.schema import DTYPES
from flowtui.core.errors import DataError

_INT_RE = r"^-?[0-9]+$"
_NON_ASCII_RE = r"[^\x00-\x7f]"


@dataclass(frozen=True)
class Source:
    """Where rows come from: a CSV (line numbers) or a frame/parquet (row positions)."""

    path: Path | None
    csv: bool

    def line(self, i: int) -> int | None:
        return i + 2 if self.csv else None

    def label(self, i: int) -> str:
        return f"line {i + 2}" if self.csv else f"row {i}"

    def error(
        self,
        message: str,
        column: str,
        expected: str,
        idx: np.ndarray,
        shown: Callable[[int], str],
    ) -> DataError:
        """A DataError for offending row positions `idx` (sorted), `shown(i)` rendering row i's value."""
        first = int(idx[0])
        return DataError(
            self.path,
            message,
            line=self.line(first),
            column=column,
            expected=expected,
            found=shown(first),
            examples=[f"{self.label(int(i))}: {shown(int(i))}" for i in idx[:5]],
            count=len(idx),
        )


def shown(x: np.ndarray) -> Callable[[int], str]:
    """Render row i of a numpy column for a message."""
    return lambda i: repr(x[i].item())


def _show_bytes(b: bytes | None) -> str:
    if b is None:
        return "an empty value"
    try:
        return repr(b.decode("utf-8")[:40])
    except UnicodeDecodeError:
        return repr(b[:40])


def _not_utf8(b: bytes | None) -> bool:
    if b is None:
        return False
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def utf8_error(name: str, col: pa.Array | pa.ChunkedArray, src: Source) -> DataError | None:
    """The error for raw values that are not UTF-8, or None; Python only looks at non-ASCII values."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    try:
        arr.cast(pa.string())  # validates all of it in C++
        return None
    except pa.ArrowInvalid:
        pass
    non_ascii = pc.fill_null(pc.match_substring_regex(arr, _NON_ASCII_RE), False).to_numpy(
        zero_copy_only=False
    )
    if not non_ascii.any():
        return None
    cand = np.flatnonzero(non_ascii)
    bad = np.array([_not_utf8(arr[int(i)].as_py()) for i in cand], dtype=bool)
    if not bad.any():
        return None
    return src.error("non-UTF-8 bytes", name, "UTF-8 text", cand[bad], lambda i: _show_bytes(arr[i].as_py()))


def binary_offenders(name: str, arr: pa.Array, src: Source) -> DataError | None:
    """The error for a column of raw values (binary) that should all be integers in range, or None."""
    dtype = DTYPES[name]
    info = np.iinfo(dtype)
    arr = arr.cast(pa.binary()) if arr.type != pa.binary() else arr

    def show(i: int) -> str:
        return _show_bytes(arr[i].as_py())

    err = utf8_error(name, arr, src)
    if err is not None:
        return err
    is_int = pc.fill_null(pc.match_substring_regex(arr, _INT_RE), False).to_numpy(zero_copy_only=False)
    too_long = pc.fill_null(pc.binary_length(arr), 0).to_numpy(zero_copy_only=False) > 18
    if not is_int.all():
        return src.error("value is not an integer", name, "a decimal integer", np.flatnonzero(~is_int), show)
    safe = pc.if_else(pa.array(too_long), pa.scalar(b"0", pa.binary()), arr)
    ints = safe.cast(pa.string()).cast(pa.int64()).to_numpy(zero_copy_only=False)
    out = too_long | (ints < info.min) | (ints > info.max)
    if out.any():
        expected = f"an integer in [{info.min}, {info.max}] ({dtype.name})"
        return src.error("value out of range", name, expected, np.flatnonzero(out), show)
    return None


def to_compact(name: str, col: pa.ChunkedArray, src: Source) -> np.ndarray:
    """Column `name` as a writable numpy array of its compact dtype; DataError naming offenders otherwise."""
    dtype = DTYPES[name]
    info = np.iinfo(dtype)
    expected = f"an integer in [{info.min}, {info.max}] ({dtype.name})"
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if arr.null_count:
        idx = np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))
        raise src.error("missing value", name, "an integer", idx, lambda i: "an empty value")
    t = arr.type
    x: np.ndarray
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        x = arr.to_numpy(zero_copy_only=False)
        if not pa.types.is_boolean(t) and len(x):
            out = (x < info.min) | (x > info.max)
            if out.any():
                raise src.error("value out of range", name, expected, np.flatnonzero(out), shown(x))
    elif pa.types.is_floating(t):
        x = arr.to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(x) | (x != np.floor(x))
        if bad.any():
            raise src.error("value is not an integer", name, "an integer", np.flatnonzero(bad), shown(x))
        out = (x < info.min) | (x > info.max)
        if out.any():
            raise src.error("value out of range", name, expected, np.flatnonzero(out), shown(x))
    elif (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    ):
        err = binary_offenders(name, arr.cast(pa.binary()), src)
        if err is not None:
            raise err
        x = arr.cast(pa.string()).cast(pa.int64()).to_numpy(zero_copy_only=False)
    else:
        raise DataError(src.path, "column is not integer", column=name, expected="integers", found=str(t))
    x = x.astype(dtype, copy=False)
    return x if x.flags.writeable else x.copy()

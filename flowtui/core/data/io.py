"""Read and validate DSG17 CSV, CSV.gz or parquet files into compact frames; the load cache; atomic writes.

Loading a CSV: the header is read and checked first (kind, required and extra columns), then pyarrow parses
the file straight into the compact dtypes of `schema.DTYPES` (a value out of range for its dtype fails the
parse, it never wraps). Only when that parse fails is the offending column re-read as raw bytes, to name the
lines, the values and the count of all offenders. The value rules then run vectorised on numpy arrays.

Line numbers count the header as line 1 and the first data row as line 2; blank lines are skipped by the
parser and not counted.

The cache holds the validated frame and its warnings in an Arrow IPC file (uncompressed, one record batch)
under `paths.cache_dir()`, keyed on the source's resolved path, size, mtime and a hash of its first and last
64 KiB. Arrow IPC rather than parquet: on a 7.5M-row train, parquet's encode and decode cost about 1 s to
write and 0.4 s to read, against 0.2 s and 0.1 s for IPC, and the 10x reload target needs the latter.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import json
import os
import re
import tempfile
import threading
import zlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from flowtui.core import paths
from flowtui.core.data.schema import (
    ANSWER_COLUMNS,
    BINARY_COLUMNS,
    DTYPES,
    LABEL,
    MIN_PLAUSIBLE_TS,
    NON_NEGATIVE_COLUMNS,
    SECONDS_PER_DAY,
    DataError,
    DataWarning,
    Kind,
    columns_for,
)
from flowtui.core.events import EventCallback, Log, Progress, check_cancel, emit

#: Bump when validation rules or the cache layout change: old caches are then rebuilt.
CACHE_VERSION = 2
_HASH_BYTES = 64 * 1024
_HEADER_LIMIT = 1 << 20
#: Warning codes whose rows `load_dataset(drop=...)` can remove.
DROPPABLE: frozenset[str] = frozenset(
    {
        "bogus_timestamp",
        "invalid_release_date",
        "implausible_release_date",
        "listened_before_release",
        "zero_duration",
    }
)
_INT_RE = r"^-?[0-9]+$"
_NON_ASCII_RE = r"[^\x00-\x7f]"


@dataclass
class Dataset:
    """A validated DSG17 table with compact dtypes, and what validation found."""

    frame: pd.DataFrame
    kind: Kind
    path: Path | None = None
    warnings: list[DataWarning] = field(default_factory=list)
    from_cache: bool = False

    @property
    def n_rows(self) -> int:
        return len(self.frame)

    def warning_counts(self) -> dict[str, int]:
        """{warning code: count}, in the order the warnings were found."""
        return {w.code: w.count for w in self.warnings}


# ---------------------------------------------------------------------------------------------------------
# Public entry points


def load_dataset(
    path: str | Path,
    *,
    kind: Kind | None = None,
    use_cache: bool = True,
    drop: Collection[str] = (),
    drop_bogus_timestamps: bool = False,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> Dataset:
    """Load a train or test file (CSV, CSV.gz or parquet), validate it and return a Dataset.

    `kind` is detected from the header when None (`sample_id` without `is_listened` means test).
    `drop` names warning codes (see `DROPPABLE`) whose rows are removed, reported as a `dropped_rows`
    warning; `drop_bogus_timestamps=True` adds "bogus_timestamp". Raises DataError for a refused file
    and `Cancelled` when `cancel` is set.
    """
    p = Path(path)
    drop_set = _drop_set(drop, drop_bogus_timestamps)
    _check_file(p)
    check_cancel(cancel)
    cache_file: Path | None = None
    if use_cache:
        try:
            cache_file = _cache_file(p, kind, drop_set)
        except OSError as exc:
            raise DataError(p, f"cannot read file: {exc.strerror or exc}") from None
        hit = _read_cache(cache_file, p)
        if hit is not None:
            emit(on_event, Progress("load", 3, 3, "from cache"))
            return hit
    emit(on_event, Progress("load", 0, 3, "parse"))
    try:
        if _is_parquet(p):
            arrays, kind, warnings = _read_parquet(p, kind)
        else:
            arrays, kind, warnings = _read_csv(p, kind)
    except (pa.ArrowException, OSError, EOFError, zlib.error, UnicodeError, csv.Error) as exc:
        raise DataError(p, f"cannot read file: {_first_line(exc)}") from None
    check_cancel(cancel)
    emit(on_event, Progress("load", 1, 3, "validate"))
    frame, value_warnings = _validate(arrays, kind, _Source(p, csv=not _is_parquet(p)), drop_set)
    ds = Dataset(frame=frame, kind=kind, path=p, warnings=warnings + value_warnings)
    check_cancel(cancel)
    if cache_file is not None:
        emit(on_event, Progress("load", 2, 3, "cache"))
        try:
            _write_cache(cache_file, ds)
        except (OSError, pa.ArrowException) as exc:
            emit(on_event, Log(f"could not write the load cache {cache_file}: {exc}", level="warning"))
    emit(on_event, Progress("load", 3, 3, "done"))
    return ds


def from_frame(
    frame: pd.DataFrame,
    kind: Kind | None = None,
    *,
    drop: Collection[str] = (),
    name: str | None = None,
) -> Dataset:
    """Validate an in-memory frame with the same rules as a file; returns a copy with compact dtypes.

    Errors and warnings locate offenders by row position (`row 0` is the first row); `name` labels the
    frame in messages. Extra columns are left out of the result and reported as a warning.
    """
    cols = [str(c) for c in frame.columns]
    kind = _detect_kind(name, cols, kind)
    required = columns_for(kind)
    warnings = _extra_column_warning(cols, required)
    arrays: dict[str, pa.ChunkedArray] = {}
    for c in required:
        s = frame[c]
        try:
            arr = pa.array(s, from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError):
            arr = pa.array(s.astype(str).to_numpy(), type=pa.string())
        arrays[c] = pa.chunked_array([arr])
    src = _Source(Path(name) if name else None, csv=False)
    converted = {c: _to_compact(c, a, src) for c, a in arrays.items()}
    out, value_warnings = _validate(converted, kind, src, _drop_set(drop, False))
    return Dataset(frame=out, kind=kind, path=None, warnings=warnings + value_warnings)


def check_test_users(train: Dataset, test: Dataset) -> list[DataWarning]:
    """A warning for test users who have no row in `train` (cold start); empty when all have history."""
    test_users = test.frame["user_id"].to_numpy()
    missing = ~np.isin(test_users, train.frame["user_id"].to_numpy())
    n = int(missing.sum())
    if n == 0:
        return []
    examples = tuple(str(u) for u in np.unique(test_users[missing])[:5])
    return [
        DataWarning(
            "test_user_without_history",
            "test rows whose user has no train history",
            n,
            "user_id",
            examples,
        )
    ]


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` atomically.

    On an exception (a crash, a cancel) the temporary file is removed and `path` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            # mkstemp makes the file private (0600); give it the permissions a plain open() would.
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write `frame` as CSV atomically (pyarrow's fast writer for all-numeric frames)."""
    numeric = all(
        pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in frame.dtypes
    )
    with atomic_path(path) as tmp:
        if numeric and len(frame.columns) > 0:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            pacsv.write_csv(
                table, tmp, write_options=pacsv.WriteOptions(quoting_style="none", quoting_header="none")
            )
        else:
            frame.to_csv(tmp, index=False)


# ---------------------------------------------------------------------------------------------------------
# Locating offenders


@dataclass(frozen=True)
class _Source:
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


def _show_bytes(b: bytes | None) -> str:
    if b is None:
        return "an empty value"
    try:
        return repr(b.decode("utf-8")[:40])
    except UnicodeDecodeError:
        return repr(b[:40])


def _binary_offenders(name: str, arr: pa.Array, src: _Source) -> DataError | None:
    """The error for a column of raw values (binary) that should all be integers in range, or None."""
    dtype = DTYPES[name]
    info = np.iinfo(dtype)
    arr = arr.cast(pa.binary()) if arr.type != pa.binary() else arr

    def shown(i: int) -> str:
        return _show_bytes(arr[i].as_py())

    err = _utf8_error(name, arr, src)
    if err is not None:
        return err
    is_int = pc.fill_null(pc.match_substring_regex(arr, _INT_RE), False).to_numpy(zero_copy_only=False)
    too_long = pc.fill_null(pc.binary_length(arr), 0).to_numpy(zero_copy_only=False) > 18
    if not is_int.all():
        return src.error("value is not an integer", name, "an integer", np.flatnonzero(~is_int), shown)
    safe = pc.if_else(pa.array(too_long), pa.scalar(b"0", pa.binary()), arr)
    ints = safe.cast(pa.string()).cast(pa.int64()).to_numpy(zero_copy_only=False)
    out = too_long | (ints < info.min) | (ints > info.max)
    if out.any():
        expected = f"an integer in [{info.min}, {info.max}] ({dtype.name})"
        return src.error("value out of range", name, expected, np.flatnonzero(out), shown)
    return None


def _not_utf8(b: bytes | None) -> bool:
    if b is None:
        return False
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _to_compact(name: str, col: pa.ChunkedArray, src: _Source) -> np.ndarray:
    """Column `name` as a writable numpy array of its compact dtype; DataError naming offenders otherwise."""
    dtype = DTYPES[name]
    info = np.iinfo(dtype)
    expected = f"an integer in [{info.min}, {info.max}] ({dtype.name})"
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if arr.null_count:
        idx = np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))
        return _raise(src.error("missing value", name, "an integer", idx, lambda i: "an empty value"))
    t = arr.type
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        x = arr.to_numpy(zero_copy_only=False)
        if not pa.types.is_boolean(t) and len(x):
            out = (x < info.min) | (x > info.max)
            if out.any():
                return _raise(src.error("value out of range", name, expected, np.flatnonzero(out), _shown(x)))
    elif pa.types.is_floating(t):
        x = arr.to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(x) | (x != np.floor(x))
        if bad.any():
            return _raise(
                src.error("value is not an integer", name, "an integer", np.flatnonzero(bad), _shown(x))
            )
        out = (x < info.min) | (x > info.max)
        if out.any():
            return _raise(src.error("value out of range", name, expected, np.flatnonzero(out), _shown(x)))
    elif (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    ):
        err = _binary_offenders(name, arr.cast(pa.binary()), src)
        if err is not None:
            raise err
        x = arr.cast(pa.string()).cast(pa.int64()).to_numpy(zero_copy_only=False)
    else:
        raise DataError(src.path, "column is not integer", column=name, expected="integers", found=str(t))
    x = x.astype(dtype, copy=False)
    return x if x.flags.writeable else x.copy()


def _shown(x: np.ndarray) -> Callable[[int], str]:
    return lambda i: repr(x[i].item())


def _raise(err: DataError) -> Any:
    raise err


# ---------------------------------------------------------------------------------------------------------
# Reading files


def _check_file(p: Path) -> None:
    if not p.exists():
        raise DataError(p, "file not found", expected="an existing CSV, CSV.gz or parquet file")
    if not p.is_file():
        raise DataError(p, "not a file", expected="a CSV, CSV.gz or parquet file", found="a directory")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise DataError(p, f"cannot read file: {exc.strerror or exc}") from None
    if size == 0:
        raise DataError(p, "empty file", expected="a header line and data rows", found="0 bytes")


def _is_parquet(p: Path) -> bool:
    return p.suffix.lower() in (".parquet", ".pq")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _read_header(p: Path) -> list[str]:
    """The header fields of a CSV (gzip-aware), checked for UTF-8 and emptiness."""
    with gzip.open(p, "rb") if p.suffix.lower() == ".gz" else open(p, "rb") as f:
        raw: bytes = f.readline(_HEADER_LIMIT)
    if not raw:
        raise DataError(p, "empty file", expected="a header line and data rows", found="no data")
    if len(raw) >= _HEADER_LIMIT and not raw.endswith(b"\n"):
        raise DataError(p, "no header", line=1, expected="a line of column names", found="a line over 1 MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            p,
            "non-UTF-8 bytes",
            line=1,
            expected="UTF-8 text",
            found=repr(raw[max(0, exc.start - 10) : exc.start + 10]),
            count=1,
        ) from None
    text = text.removeprefix("\ufeff").rstrip("\r\n")
    if not text.strip():
        raise DataError(p, "no header", line=1, expected="a line of column names", found="an empty line")
    fields = next(csv.reader([text]), [])
    return [f.strip() for f in fields]


def _detect_kind(p: str | Path | None, header: list[str], kind: Kind | None) -> Kind:
    """The file kind from its header (or the caller), checking the required columns are present."""
    cols = set(header)
    if header and all(re.fullmatch(r"\s*-?[0-9.]+\s*", h) for h in header):
        raise DataError(
            p,
            "no header",
            line=1,
            expected="a line of column names (" + ",".join(columns_for(kind or "train")[:3]) + ",...)",
            found=repr(",".join(header)[:60]),
        )
    dups = sorted({h for h in header if header.count(h) > 1})
    if dups:
        raise DataError(p, "duplicate column names", line=1, expected="unique names", found=", ".join(dups))
    if kind is None:
        kind = "test" if "sample_id" in cols and LABEL not in cols else "train"
    required = columns_for(kind)
    missing = [c for c in required if c not in cols]
    if missing:
        if cols and cols <= set(ANSWER_COLUMNS):
            msg = "a submission or answers file, not a DSG17 train or test file"
        elif len(missing) > len(required) // 2:
            msg = "not a DSG17 train or test file: most required columns are missing"
        else:
            msg = f"missing required columns of a {kind} file"
        raise DataError(
            p, msg, line=1, expected=", ".join(missing), found=", ".join(header)[:200] or "nothing"
        )
    return kind


def _extra_column_warning(header: list[str], required: tuple[str, ...]) -> list[DataWarning]:
    extra = [c for c in header if c not in required]
    if not extra:
        return []
    return [
        DataWarning(
            "extra_columns",
            f"extra columns ignored (not loaded): {', '.join(extra)}",
            len(extra),
            None,
            tuple(extra[:5]),
            unit="column",
        )
    ]


def _read_csv(p: Path, kind: Kind | None) -> tuple[dict[str, np.ndarray], Kind, list[DataWarning]]:
    header = _read_header(p)
    kind = _detect_kind(p, header, kind)
    required = columns_for(kind)
    extra = [c for c in header if c not in required]
    types: dict[str, pa.DataType] = {c: pa.from_numpy_dtype(DTYPES[c]) for c in required}
    # Extra columns are read as raw bytes only to refuse non-UTF-8 in them; they are not kept.
    types.update({c: pa.binary() for c in extra})
    bad_rows: list[pacsv.InvalidRow] = []
    n_bad = [0]

    def on_bad_row(row: pacsv.InvalidRow) -> str:
        n_bad[0] += 1
        if len(bad_rows) < 5:
            bad_rows.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            p,
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_bad_row),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=[*required, *extra],
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if n_bad[0]:
            raise _bad_rows_error(p, header, n_bad[0], bad_rows) from None
        m = re.search(r"In CSV column #(\d+): CSV conversion error", str(exc))
        if m and int(m.group(1)) < len(header) and header[int(m.group(1))] in required:
            err = _locate_csv(p, header[int(m.group(1))])
            if err is not None:
                raise err from None
        raise DataError(p, f"cannot parse CSV: {_first_line(exc)}") from None
    if n_bad[0]:
        raise _bad_rows_error(p, header, n_bad[0], bad_rows)
    if table.num_rows == 0:
        raise DataError(p, "no data rows", line=2, expected="at least one data row", found="only a header")
    src = _Source(p, csv=True)
    for c in extra:
        err = _utf8_error(c, table.column(c), src)
        if err is not None:
            raise err
    columns = {c: table.column(c) for c in required}
    del table
    arrays: dict[str, np.ndarray] = {}
    for c in required:
        x = columns.pop(c).to_numpy()  # frees each arrow column as soon as it is converted
        arrays[c] = x if x.flags.writeable else x.copy()
    pa.default_memory_pool().release_unused()  # hand the parser's freed buffers back to the OS
    return arrays, kind, _extra_column_warning(header, required)


def _utf8_error(name: str, col: pa.Array | pa.ChunkedArray, src: _Source) -> DataError | None:
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


def _locate_csv(p: Path, column: str) -> DataError | None:
    """Re-read one column as raw bytes after a failed typed parse, to name every offender."""
    table = pacsv.read_csv(
        p,
        parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: "skip"),
        convert_options=pacsv.ConvertOptions(
            column_types={column: pa.binary()},
            include_columns=[column],
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return _binary_offenders(column, table.column(column).combine_chunks(), _Source(p, csv=True))


def _bad_rows_error(p: Path, header: list[str], count: int, rows: list[pacsv.InvalidRow]) -> DataError:
    """Rows with the wrong number of fields; line numbers come from a single-threaded re-parse if needed."""
    n_rows = None
    if any(r.number is None for r in rows):
        rows = []
        numbered: list[pacsv.InvalidRow] = []

        def keep(row: pacsv.InvalidRow) -> str:
            if len(numbered) < 5:
                numbered.append(row)
            return "skip"

        t = pacsv.read_csv(
            p,
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=keep),
            convert_options=pacsv.ConvertOptions(
                column_types={header[0]: pa.binary()}, include_columns=[header[0]]
            ),
        )
        rows, n_rows = numbered, t.num_rows
    first = rows[0]
    last_line = None if n_rows is None else n_rows + count + 1
    truncated = (
        count == 1
        and first.actual_columns < first.expected_columns
        and (last_line is None or first.number == last_line)
    )
    return DataError(
        p,
        "truncated last line" if truncated else "wrong number of fields",
        line=first.number,
        expected=f"{first.expected_columns} fields",
        found=f"{first.actual_columns}",
        examples=[f"line {r.number}: {r.text[:80]!r}" for r in rows],
        count=count,
    )


def _read_parquet(p: Path, kind: Kind | None) -> tuple[dict[str, np.ndarray], Kind, list[DataWarning]]:
    try:
        names = pq.read_schema(p).names
    except (pa.ArrowException, OSError) as exc:
        raise DataError(p, f"not a readable parquet file: {_first_line(exc)}") from None
    kind = _detect_kind(p, names, kind)
    required = columns_for(kind)
    table = pq.read_table(p, columns=list(required))
    if table.num_rows == 0:
        raise DataError(p, "no data rows", expected="at least one data row", found="0 rows")
    src = _Source(p, csv=False)
    arrays = {c: _to_compact(c, table.column(c), src) for c in required}
    return arrays, kind, _extra_column_warning(names, required)


# ---------------------------------------------------------------------------------------------------------
# Value rules


def _drop_set(drop: Collection[str], bogus: bool) -> frozenset[str]:
    out = frozenset(drop) | ({"bogus_timestamp"} if bogus else frozenset())
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
    return lut[day - lo]


def _ymd(days: np.ndarray) -> np.ndarray:
    dt = days.astype("datetime64[D]")
    y = dt.astype("datetime64[Y]").astype(np.int64) + 1970
    month_start = dt.astype("datetime64[M]")
    m = month_start.astype(np.int64) % 12 + 1
    d = (dt - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    return y * 10000 + m * 100 + d


def _warning(
    code: str, message: str, mask: np.ndarray, column: str, values: np.ndarray, src: _Source
) -> DataWarning | None:
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return None
    examples = tuple(f"{src.label(int(i))}: {values[i]}" for i in idx[:5])
    return DataWarning(code, message, len(idx), column, examples)


def _validate(
    arrays: dict[str, np.ndarray], kind: Kind, src: _Source, drop: frozenset[str]
) -> tuple[pd.DataFrame, list[DataWarning]]:
    """Apply the value rules (errors raise DataError) and build the frame; returns it with the warnings."""
    for c in BINARY_COLUMNS:
        if c in arrays:
            x = arrays[c]
            bad = (x != 0) & (x != 1)
            if bad.any():
                raise src.error("value outside {0, 1}", c, "0 or 1", np.flatnonzero(bad), _shown(x))
    for c in NON_NEGATIVE_COLUMNS:
        x = arrays[c]
        bad = x < 0
        if bad.any():
            raise src.error("negative value", c, "a value >= 0", np.flatnonzero(bad), _shown(x))
    if kind == "test":
        sid = arrays["sample_id"]
        order = np.argsort(sid, kind="stable")
        dup_sorted = np.flatnonzero(sid[order][1:] == sid[order][:-1]) + 1
        if len(dup_sorted):
            idx = np.sort(order[dup_sorted])
            raise src.error("duplicate sample_id", "sample_id", "unique ids", idx, _shown(sid))

    ts, rd, dur = arrays["ts_listen"], arrays["release_date"], arrays["media_duration"]
    valid, implausible = _release_checks(rd)
    masks = {
        "invalid_release_date": ~valid,
        "implausible_release_date": implausible,
        "bogus_timestamp": ts < MIN_PLAUSIBLE_TS,
        "listened_before_release": valid & (_listen_dates(ts) < rd),
        "zero_duration": dur == 0,
    }
    specs = {
        "invalid_release_date": ("release_date is not a valid YYYYMMDD date", "release_date", rd),
        "implausible_release_date": (
            "release_date is a placeholder (<= 19000101 or year >= 2100)",
            "release_date",
            rd,
        ),
        "bogus_timestamp": ("ts_listen before 2009 (bogus clock)", "ts_listen", ts),
        "listened_before_release": ("listened before the release date", "ts_listen", ts),
        "zero_duration": ("media_duration of 0", "media_duration", dur),
    }
    warnings = [
        w
        for code, mask in masks.items()
        if (w := _warning(code, specs[code][0], mask, specs[code][1], specs[code][2], src)) is not None
    ]
    if drop:
        gone = np.zeros(len(ts), dtype=bool)
        for code in drop:
            gone |= masks[code]
        n = int(gone.sum())
        if n:
            keep = ~gone
            arrays = {c: x[keep] for c, x in arrays.items()}
        warnings.append(
            DataWarning("dropped_rows", f"rows removed on request ({', '.join(sorted(drop))})", n)
        )
    frame = pd.DataFrame({c: arrays[c] for c in columns_for(kind)}, copy=False)
    return frame, warnings


# ---------------------------------------------------------------------------------------------------------
# The cache


def _cache_file(p: Path, kind: Kind | None, drop: frozenset[str]) -> Path:
    """The cache file for this exact version of `p`: its key changes when the file does."""
    st = p.stat()
    with open(p, "rb") as f:
        head = f.read(_HASH_BYTES)
        f.seek(max(0, st.st_size - _HASH_BYTES))
        tail = f.read(_HASH_BYTES)
    resolved = str(p.resolve())
    h = hashlib.sha256()
    meta = [CACHE_VERSION, resolved, st.st_size, st.st_mtime_ns, kind, sorted(drop)]
    h.update(json.dumps(meta).encode())
    h.update(head)
    h.update(tail)
    prefix = hashlib.sha256(resolved.encode()).hexdigest()[:16]
    return paths.cache_dir() / f"{prefix}-{h.hexdigest()[:24]}.arrow"


def _read_cache(cache_file: Path, p: Path) -> Dataset | None:
    """The cached Dataset, or None when absent, unreadable or inconsistent (it is then rebuilt)."""
    if not cache_file.is_file():
        return None
    try:
        # Memory-mapped: the one copy made is into the frame's own (writable) arrays. Cache files are
        # only ever replaced whole (os.replace), never truncated in place, so the mapping stays valid.
        with pa.memory_map(str(cache_file), "r") as f:
            table = ipc.open_file(f).read_all()
            table.validate()
            meta = json.loads((table.schema.metadata or {})[b"flowtui"])
            kind: Kind = meta["kind"]
            cols = columns_for(kind)
            if meta["version"] != CACHE_VERSION or tuple(table.column_names) != cols:
                return None
            arrays: dict[str, np.ndarray] = {}
            for c in cols:
                col = table.column(c)
                if col.type != pa.from_numpy_dtype(DTYPES[c]) or col.null_count:
                    return None
                arrays[c] = np.array(col.to_numpy(), copy=True)
            del table, col
        warnings = [DataWarning(**{**w, "examples": tuple(w["examples"])}) for w in meta["warnings"]]
    except (OSError, pa.ArrowException, KeyError, TypeError, ValueError):
        return None
    frame = pd.DataFrame(arrays, copy=False)
    return Dataset(frame=frame, kind=kind, path=p, warnings=warnings, from_cache=True)


def _write_cache(cache_file: Path, ds: Dataset) -> None:
    meta = {"version": CACHE_VERSION, "kind": ds.kind, "warnings": [asdict(w) for w in ds.warnings]}
    table = pa.Table.from_pandas(ds.frame, preserve_index=False)
    table = table.replace_schema_metadata({"flowtui": json.dumps(meta)})
    with (
        atomic_path(cache_file) as tmp,
        pa.OSFile(str(tmp), "wb") as sink,
        ipc.new_file(sink, table.schema) as writer,
    ):
        writer.write_table(table, max_chunksize=max(1, table.num_rows))
    # Older versions of the same source are stale now.
    prefix = cache_file.name.split("-")[0]
    for old in cache_file.parent.glob(f"{prefix}-*.arrow"):
        if old != cache_file:
            with contextlib.suppress(OSError):
                old.unlink()

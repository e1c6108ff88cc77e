"""Read a DSG17 CSV, CSV.gz or parquet file into numpy columns of the compact dtypes of `schema.DTYPES`.

The path is checked first without opening it (`check_file`: a named pipe, a device, a folder or a link
loop is named for what it is, never opened). A CSV's header is read and checked (kind, required and extra
columns), then pyarrow parses the file straight into the compact dtypes (a value out of range for its dtype
fails the parse, it never wraps). pyarrow also reads "0x16" as 22, so a file holding a hex prefix has its
integer columns checked as raw bytes first (`csvscan.has_hex_prefix`): only decimal integers pass. Only
when the parse fails is the offending column re-read as raw bytes, or the rows scanned for their field
counts, to name the lines, the values and the count of all offenders. No Python callback is ever handed to
pyarrow's threaded reader (see `csvscan`). The value rules (`validate`) run afterwards, on the arrays
returned here.
"""

from __future__ import annotations

import csv
import errno
import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from flowtui.core import safe_files
from flowtui.core.data import csvscan
from flowtui.core.data.offenders import Source, binary_offenders, to_compact, utf8_error
from flowtui.core.data.schema import (
    ANSWER_COLUMNS,
    DTYPES,
    LABEL,
    PLAYS_DTYPE,
    DataWarning,
    Kind,
    columns_for,
    optional_columns,
)
from flowtui.core.errors import DataError

_HEADER_LIMIT = 1 << 20

#: What a reader returns: the required columns, the kind, the warnings about the file's layout.
Columns = tuple[dict[str, np.ndarray], Kind, list[DataWarning]]


def check_file(p: Path) -> None:
    """Refuse a path that is missing, not a regular file (a folder, a device, a named pipe, a socket, a
    broken link or a link loop), unreadable or empty. Nothing is opened here, so a named pipe never blocks.
    """
    try:
        kind = safe_files.describe(p)
    except safe_files.UnsafePathError as err:
        raise DataError(p, err.message, expected="a CSV, CSV.gz or parquet file") from None
    if kind is None:
        raise DataError(p, "file not found", expected="an existing CSV, CSV.gz or parquet file")
    if kind == "a symbolic link":
        try:
            target = safe_files.describe(p.resolve(strict=True))
        except (OSError, RuntimeError, safe_files.UnsafePathError):
            target = "something that cannot be looked at"
        kind = "a file" if target == "a file" else f"a symbolic link to {target}"
    if kind in ("a broken symbolic link", "a symbolic link loop"):
        raise DataError(p, kind, expected="an existing CSV, CSV.gz or parquet file")
    if kind != "a file":
        raise DataError(p, "not a regular file", expected="a CSV, CSV.gz or parquet file", found=kind)
    try:
        size = p.stat().st_size
        os.close(os.open(p, os.O_RDONLY | os.O_NONBLOCK))  # readable? (never blocks, even on a pipe)
    except OSError as exc:
        raise DataError(p, f"cannot read file: {os_reason(exc)}") from None
    if size == 0:
        raise DataError(p, "empty file", expected="a header line and data rows", found="0 bytes")


def os_reason(exc: OSError) -> str:
    """What went wrong with a path, in words (never a temporary file's name)."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    if exc.errno == errno.EISDIR:
        return "is a folder"
    return exc.strerror or first_line(exc)


def is_parquet(p: Path) -> bool:
    return p.suffix.lower() in (".parquet", ".pq")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), for a DataError."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _read_header(p: Path) -> tuple[list[str], int]:
    """The header fields of a CSV (gzip-aware), checked for UTF-8 and emptiness, and the header line's
    length; a file that ends within its header line has "no data rows"."""
    with csvscan.open_binary(p) as f:
        raw: bytes = f.readline(_HEADER_LIMIT)
    if not raw:
        raise DataError(p, "empty file", expected="a header line and data rows", found="no data")
    if len(raw) >= _HEADER_LIMIT and not raw.endswith(b"\n"):
        raise DataError(p, "no header", line=1, expected="a line of column names", found="a line over 1 MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        utf16 = raw.startswith((b"\xff\xfe", b"\xfe\xff"))
        found = (
            "UTF-16 text (a byte-order mark)" if utf16 else repr(raw[max(0, exc.start - 10) : exc.start + 10])
        )
        raise DataError(p, "non-UTF-8 bytes", line=1, expected="UTF-8 text", found=found, count=1) from None
    text = text.removeprefix("\ufeff").rstrip("\r\n")
    if not text.strip():
        raise DataError(p, "no header", line=1, expected="a line of column names", found="an empty line")
    fields = [f.strip() for f in next(csv.reader([text]), [])]
    if not raw.endswith(b"\n"):
        detect_kind(p, fields, None)  # a file that is only a header: say what is wrong with it first
        raise DataError(p, "no data rows", line=2, expected="at least one data row", found="only a header")
    return fields, len(raw)


def _names(names: list[str], limit: int = 200) -> str:
    """Column names for a message: plain when they are plain, quoted when empty or odd."""
    shown = ", ".join(n if re.fullmatch(r"[\w.\-]+", n) else repr(n) for n in names)
    return shown[:limit] if shown else "no column names"


def detect_kind(p: str | Path | None, header: list[str], kind: Kind | None) -> Kind:
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
    empty = [i for i, h in enumerate(header) if not h.strip()]
    if empty:
        raise DataError(
            p,
            "empty column name",
            line=1,
            expected="a name for every column",
            found=f"column {empty[0] + 1} of {len(header)} has no name ({len(empty)} without a name)",
        )
    dups = sorted({h for h in header if header.count(h) > 1})
    if dups:
        raise DataError(p, "duplicate column names", line=1, expected="unique names", found=_names(dups))
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
        raise DataError(p, msg, line=1, expected=", ".join(missing), found=_names(header))
    return kind


def extra_column_warning(header: list[str], required: tuple[str, ...]) -> list[DataWarning]:
    """An `extra_columns` warning for columns that are not loaded (neither in `required` nor optional
    columns of the file); empty when there are none."""
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


def read_csv(p: Path, kind: Kind | None) -> Columns:
    """The required columns of a CSV (or CSV.gz) as writable compact arrays; DataError for a refused file."""
    header, header_size = _read_header(p)
    kind = detect_kind(p, header, kind)
    required = columns_for(kind)
    optional = optional_columns(kind, header)
    extra = [c for c in header if c not in required and c not in optional]
    options = _read_options(header, header_size)
    if csvscan.has_hex_prefix(p):  # pyarrow reads "0x16" as 22: look for it in the integer columns
        for c in required:
            err = _locate_csv(p, header, options, c)
            if err is not None:
                raise err
    table = _parse_csv(p, header, options, required, [*optional, *extra])
    if table.num_rows == 0:
        raise DataError(p, "no data rows", line=2, expected="at least one data row", found="only a header")
    src = Source(p, csv=True)
    for c in extra:
        err = utf8_error(c, table.column(c), src)
        if err is not None:
            raise err
    columns = {c: table.column(c) for c in (*required, *optional)}
    del table
    arrays: dict[str, np.ndarray] = {}
    for c in required:
        x = columns.pop(c).to_numpy()  # frees each arrow column as soon as it is converted
        arrays[c] = x if x.flags.writeable else x.copy()
    for c in optional:
        arrays[c] = weight_column(c, columns.pop(c), src)
    pa.default_memory_pool().release_unused()  # hand the parser's freed buffers back to the OS
    return arrays, kind, extra_column_warning(header, (*required, *optional))


def _read_options(header: list[str], header_size: int) -> pacsv.ReadOptions:
    """The header as `_read_header` cleaned it (stripped names), the header line skipped; blocks large
    enough to hold the header line."""
    return pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=max(1 << 20, 2 * header_size))


def _convert(types: dict[str, pa.DataType]) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(
        column_types=types,
        include_columns=list(types),
        null_values=[],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )


_FIELD_COUNT_RE = re.compile(r"Expected \d+ columns, got \d+")


def _parse_csv(
    p: Path, header: list[str], options: pacsv.ReadOptions, required: tuple[str, ...], extra: list[str]
) -> pa.Table:
    """pyarrow's typed parse of the whole file; a failed parse becomes a DataError naming the offenders.

    No invalid-row handler: pyarrow would call a Python function from its worker threads (see `csvscan`).
    A row with the wrong number of fields fails the parse; `csvscan` then finds and counts all of them.
    """
    types: dict[str, pa.DataType] = {c: pa.from_numpy_dtype(DTYPES[c]) for c in required}
    # Extra columns are read as raw bytes only to refuse non-UTF-8 in them; they are not kept. The
    # optional columns (`plays`) come here too, as raw bytes that `weight_column` converts.
    types.update({c: pa.binary() for c in extra})
    try:
        return pacsv.read_csv(p, read_options=options, convert_options=_convert(types))
    except pa.ArrowInvalid as exc:
        text = str(exc)
        if _FIELD_COUNT_RE.search(text):
            raise _field_count_error(p, header) from None
        m = re.search(r"In CSV column #(\d+): CSV conversion error", text)
        if m and int(m.group(1)) < len(header) and header[int(m.group(1))] in required:
            err = _locate_csv(p, header, options, header[int(m.group(1))])
            if err is not None:
                raise err from None
        raise DataError(p, f"cannot parse CSV: {first_line(exc)}") from None


def _locate_csv(p: Path, header: list[str], options: pacsv.ReadOptions, column: str) -> DataError | None:
    """Re-read one column as raw bytes (after a failed typed parse, or a hex prefix), to name every
    offender; None when the column holds only decimal integers in range."""
    try:
        table = pacsv.read_csv(p, read_options=options, convert_options=_convert({column: pa.binary()}))
    except pa.ArrowInvalid as exc:
        if _FIELD_COUNT_RE.search(str(exc)):
            return _field_count_error(p, header)
        raise
    return binary_offenders(column, table.column(column).combine_chunks(), Source(p, csv=True))


def _field_count_error(p: Path, header: list[str]) -> DataError:
    """Rows with the wrong number of fields: the first, up to five examples and the count of all."""
    found = csvscan.field_count_offenders(p, len(header))
    if not found.count:
        return DataError(
            p, "cannot parse CSV: rows with a wrong number of fields", expected=f"{len(header)} fields"
        )
    line, n, _ = found.examples[0]
    truncated = found.count == 1 and n < found.expected and line == found.rows + 1
    return DataError(
        p,
        "truncated last line" if truncated else "wrong number of fields",
        line=line,
        expected=f"{found.expected} fields",
        found=f"{n}",
        examples=[f"line {ln}: {text}" for ln, _, text in found.examples],
        count=found.count,
    )


def read_parquet(p: Path, kind: Kind | None) -> Columns:
    """The required columns of a parquet file as writable compact arrays; DataError for a refused file."""
    try:
        names = pq.read_schema(p).names
    except (pa.ArrowException, OSError) as exc:
        raise DataError(p, f"not a readable parquet file: {first_line(exc)}") from None
    kind = detect_kind(p, names, kind)
    required = columns_for(kind)
    optional = optional_columns(kind, names)
    table = pq.read_table(p, columns=[*required, *optional])
    if table.num_rows == 0:
        raise DataError(p, "no data rows", expected="at least one data row", found="0 rows")
    src = Source(p, csv=False)
    arrays = {c: to_compact(c, table.column(c), src) for c in required}
    arrays.update({c: weight_column(c, table.column(c), src) for c in optional})
    return arrays, kind, extra_column_warning(names, (*required, *optional))


#: A decimal number as text: digits with an optional sign, point and exponent (no "nan", "inf", "0x").
_NUMBER_RE = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"


def weight_column(name: str, col: pa.ChunkedArray | pa.Array, src: Source) -> np.ndarray:
    """An optional weight column (`plays`) as a writable float64 array: numbers, or text holding decimal
    numbers; DataError naming the offenders otherwise (missing values, text that is not a number). Whether
    the numbers are finite and >= 0 is checked with the other value rules (`validate`)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = arr.type
    if arr.null_count:
        idx = np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))
        raise src.error("missing value", name, "a number", idx, lambda i: "an empty value")
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        x = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=PLAYS_DTYPE)
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        raw = arr.cast(pa.binary())
        err = utf8_error(name, raw, src)
        if err is not None:
            raise err
        text = raw.cast(pa.string())
        ok = pc.fill_null(pc.match_substring_regex(text, _NUMBER_RE), False).to_numpy(zero_copy_only=False)
        if not ok.all():
            idx = np.flatnonzero(~ok)
            raise src.error(
                "value is not a number", name, "a decimal number", idx, lambda i: repr(text[i].as_py()[:40])
            )
        x = pc.utf8_trim_whitespace(text).cast(pa.float64()).to_numpy(zero_copy_only=False)
    else:
        raise DataError(src.path, "column is not numeric", column=name, expected="numbers", found=str(t))
    return x.astype(PLAYS_DTYPE, copy=True)

"""Read a DSG17 CSV, CSV.gz or parquet file into numpy columns of the compact dtypes of `schema.DTYPES`.

A CSV's header is read and checked first (kind, required and extra columns), then pyarrow parses the file
straight into the compact dtypes (a value out of range for its dtype fails the parse, it never wraps). Only
when that parse fails is the offending column re-read as raw bytes, to name the lines, the values and the
count of all offenders. The value rules (`validate`) run afterwards, on the arrays returned here.
"""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from flowtui.core.data.offenders import Source, binary_offenders, to_compact, utf8_error
from flowtui.core.data.schema import ANSWER_COLUMNS, DTYPES, LABEL, DataError, DataWarning, Kind, columns_for

_HEADER_LIMIT = 1 << 20

#: What a reader returns: the required columns, the kind, the warnings about the file's layout.
Columns = tuple[dict[str, np.ndarray], Kind, list[DataWarning]]


def check_file(p: Path) -> None:
    """Refuse a path that is missing, not a file or empty."""
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


def is_parquet(p: Path) -> bool:
    return p.suffix.lower() in (".parquet", ".pq")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), for a DataError."""
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


def extra_column_warning(header: list[str], required: tuple[str, ...]) -> list[DataWarning]:
    """An `extra_columns` warning for columns that are not loaded; empty when there are none."""
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
    header = _read_header(p)
    kind = detect_kind(p, header, kind)
    required = columns_for(kind)
    extra = [c for c in header if c not in required]
    table = _parse_csv(p, header, required, extra)
    if table.num_rows == 0:
        raise DataError(p, "no data rows", line=2, expected="at least one data row", found="only a header")
    src = Source(p, csv=True)
    for c in extra:
        err = utf8_error(c, table.column(c), src)
        if err is not None:
            raise err
    columns = {c: table.column(c) for c in required}
    del table
    arrays: dict[str, np.ndarray] = {}
    for c in required:
        x = columns.pop(c).to_numpy()  # frees each arrow column as soon as it is converted
        arrays[c] = x if x.flags.writeable else x.copy()
    pa.default_memory_pool().release_unused()  # hand the parser's freed buffers back to the OS
    return arrays, kind, extra_column_warning(header, required)


def _parse_csv(p: Path, header: list[str], required: tuple[str, ...], extra: list[str]) -> pa.Table:
    """pyarrow's typed parse of the whole file; a failed parse becomes a DataError naming the offenders."""
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
        raise DataError(p, f"cannot parse CSV: {first_line(exc)}") from None
    if n_bad[0]:
        raise _bad_rows_error(p, header, n_bad[0], bad_rows)
    return table


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
    return binary_offenders(column, table.column(column).combine_chunks(), Source(p, csv=True))


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


def read_parquet(p: Path, kind: Kind | None) -> Columns:
    """The required columns of a parquet file as writable compact arrays; DataError for a refused file."""
    try:
        names = pq.read_schema(p).names
    except (pa.ArrowException, OSError) as exc:
        raise DataError(p, f"not a readable parquet file: {first_line(exc)}") from None
    kind = detect_kind(p, names, kind)
    required = columns_for(kind)
    table = pq.read_table(p, columns=list(required))
    if table.num_rows == 0:
        raise DataError(p, "no data rows", expected="at least one data row", found="0 rows")
    src = Source(p, csv=False)
    arrays = {c: to_compact(c, table.column(c), src) for c in required}
    return arrays, kind, extra_column_warning(names, required)

"""Raw-byte scans of a CSV for what pyarrow's typed parse accepts or cannot locate.

- `has_hex_prefix`: pyarrow reads "0x16" as 22 in an integer column; flowtui takes decimal integers only,
  so a file holding "0x" or "0X" after its header line is checked column by column (a `memchr`-speed
  search on every load, about 0.15 s for 500 MB; the column check runs only when one is found).
- `field_count_offenders`: rows whose number of fields is not the header's, numbered as the parser
  numbers them (the header is line 1, blank lines are not counted), with the count of all of them. It
  runs only after a parse failed, in plain Python: no Python callback is ever handed to pyarrow's
  threaded reader (a worker thread releasing one while the interpreter exits aborts the process with
  "terminate called without an active exception", and one raising on non-UTF-8 bytes prints "Exception
  ignored").
"""

from __future__ import annotations

import csv
import gzip
import io
import mmap
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

_CHUNK = 16 << 20


def is_gzip(p: Path) -> bool:
    return p.suffix.lower() == ".gz"


def open_binary(p: Path) -> BinaryIO | gzip.GzipFile:
    """The file's bytes, decompressed when it is a .gz."""
    if is_gzip(p):
        return gzip.open(p, "rb")
    return open(p, "rb")


def _chunks(p: Path) -> Iterator[bytes]:
    with open_binary(p) as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def has_hex_prefix(p: Path) -> bool:
    """Does "0x" or "0X" occur after the header line (where an integer could be written in hex)?

    A plain file is memory-mapped (called before the parse, its pages add nothing to the load's peak
    memory); a .gz is decompressed in chunks.
    """
    if not is_gzip(p):
        with open(p, "rb") as f:
            try:
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except (ValueError, OSError):  # an empty file cannot be mapped
                return False
            with mm:
                start = mm.find(b"\n") + 1
                return start > 0 and (_hex_in(mm, b"x", start) or _hex_in(mm, b"X", start))
    header_done = False
    prev = b""
    for chunk in _chunks(p):
        if not header_done:
            nl = chunk.find(b"\n")
            if nl == -1:
                continue
            header_done = True
            chunk = chunk[nl + 1 :]
        buf = prev + chunk if prev else chunk
        if _hex_in(buf, b"x", 1) or _hex_in(buf, b"X", 1):
            return True
        prev = chunk[-1:]
    return False


def _hex_in(buf: bytes | mmap.mmap, x: bytes, start: int) -> bool:
    """Is `x` preceded by "0" somewhere in `buf[start:]` (a search for the rare byte, at memchr speed)?"""
    i = buf.find(x, max(start, 1))
    while i != -1:
        if buf[i - 1] == 0x30:  # "0"
            return True
        i = buf.find(x, i + 1)
    return False


@dataclass
class FieldCounts:
    """Rows whose number of fields differs from the header's."""

    expected: int
    sep: bytes = b","
    count: int = 0
    rows: int = 0  # data rows seen (blank lines not counted)
    examples: list[tuple[int, int, str]] = field(default_factory=list)  # (line, fields, text)


def _fields(line: bytes, sep: bytes) -> int:
    if b'"' not in line:
        return line.count(sep) + 1
    text = line.decode("latin-1")  # one char per byte: the count of fields does not depend on encoding
    return max((len(r) for r in csv.reader(io.StringIO(text), delimiter=sep.decode("latin-1"))), default=1)


def field_count_offenders(p: Path, expected: int, sep: str = ",") -> FieldCounts:
    """Scan every data row of a CSV for a wrong number of fields (a quoted value may hold separators or
    line breaks). Line numbers: the header is line 1, the first data row line 2, blank lines are skipped.
    About 3 s for 7.5M rows: it runs only once a parse has failed."""
    out = FieldCounts(expected, sep=sep.encode("utf-8"))
    sep_b, want = out.sep, expected - 1  # a row without quotes has `expected - 1` separators
    rows = 0
    with open_binary(p) as f:
        f.readline()  # the header
        pending = b""
        for raw in f:
            if pending or b'"' in raw:
                line = pending + raw
                if line.count(b'"') % 2:  # an open quote: the value goes on on the next line
                    pending = line
                    continue
                pending = b""
                out.rows = rows
                rows += _count_row(out, line)
            elif raw.count(sep_b) != want:
                out.rows = rows
                rows += _count_row(out, raw)
            elif raw != b"\n" and raw != b"\r\n":
                rows += 1
        if pending:
            out.rows = rows
            rows += _count_row(out, pending)
    out.rows = rows
    return out


def shown(raw: bytes) -> str:
    """Raw bytes as a quoted one-line example: text as text, each byte that is not UTF-8 as one `\\xNN`
    (not doubled, as `repr` of a backslash-replaced text would)."""
    text = repr(raw.decode("utf-8", "surrogateescape"))
    return re.sub(r"\\udc([89a-f][0-9a-f])", r"\\x\1", text)


def _count_row(out: FieldCounts, line: bytes) -> int:
    """Check one row (rows before it: `out.rows`); 1 when it is a row, 0 when it is blank."""
    body = line.rstrip(b"\r\n")
    if not body:
        return 0
    n = _fields(body, out.sep)
    if n != out.expected:
        out.count += 1
        if len(out.examples) < 5:
            out.examples.append((out.rows + 2, n, shown(body[:80])))
    return 1

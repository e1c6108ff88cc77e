"""Read the two files `flowtui score` compares: a submission (`sample_id,is_listened` probabilities) and
the answers (`sample_id,is_listened` labels, optionally `p_true`).

Every value is read as text and checked by its column's rule, so a refusal quotes what the file holds
(never a parsed float or a numpy repr): sample ids are decimal integers, unique; a submission's
`is_listened` is a probability in [0, 1]; the answers' `is_listened` is 0 or 1 (both present), `p_true` a
probability. Extra columns are ignored. Any refusal is a DataError naming the file, line and column.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from flowtui.core import safe_files
from flowtui.core.errors import DataError

Role = Literal["submission", "answers"]
_Rule = Literal["id", "probability", "label"]

#: column -> rule, in the order they are checked; optional columns are checked when present.
_NEED: dict[Role, dict[str, _Rule]] = {
    "submission": {"sample_id": "id", "is_listened": "probability"},
    "answers": {"sample_id": "id", "is_listened": "label"},
}
_OPTIONAL: dict[Role, dict[str, _Rule]] = {"submission": {}, "answers": {"p_true": "probability"}}
_EXPECTED: dict[_Rule, str] = {
    "id": "a decimal integer",
    "probability": "a number from 0 to 1",
    "label": "0 or 1",
}
_INT_RE = re.compile(r"\s*-?[0-9]{1,18}\s*")
_NUMBER_RE = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")


def read_scored(path: str | Path, role: Role) -> pd.DataFrame:
    """The submission's or answers' columns as numbers (sample_id int64, the others float64).

    Raises DataError (one line: file, line, column, expected, found, count) for a path that is not a
    readable file, an empty, binary or non-UTF-8 file, missing columns, no rows, a value breaking its
    column's rule, or a repeated sample id."""
    p = safe_files.check_input_file(path, f"{role} file")
    if p.stat().st_size == 0:
        raise DataError(p, f"empty {role} file", expected=_header(role), found="0 bytes")
    header, rows, lines = _read_rows(p, role)
    frame = pd.DataFrame(rows, columns=range(len(header)), dtype=object)
    frame.columns = header
    rules = _NEED[role]
    missing = [c for c in rules if c not in frame.columns]
    if missing:
        shown = ", ".join(map(str, frame.columns))[:200]
        raise DataError(p, f"{role} lacks column(s)", line=1, expected=", ".join(missing), found=shown)
    if frame.columns.duplicated().any():
        names = sorted({c for c in header if header.count(c) > 1})
        raise DataError(p, "duplicate column names", line=1, expected="unique names", found=", ".join(names))
    if len(frame) == 0:
        raise DataError(
            p, f"no rows in the {role} file", line=2, expected="at least one row", found="only a header"
        )
    rules = {**rules, **{c: r for c, r in _OPTIONAL[role].items() if c in frame.columns}}
    out = {c: _column(p, frame[c], c, rule, lines) for c, rule in rules.items()}
    ids = pd.Series(out["sample_id"])
    dup = ids.duplicated()
    if dup.any():
        first = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(
            p,
            "repeated sample_id",
            line=lines[first],
            column="sample_id",
            expected="each sample_id once",
            found=repr(frame["sample_id"].iloc[first].strip()),
            count=int(dup.sum()),
        )
    if role == "answers" and len(np.unique(out["is_listened"])) < 2:
        raise DataError(
            p,
            "labels of one class only: an AUC needs both",
            column="is_listened",
            expected="both 0 and 1",
            found=f"only {int(out['is_listened'][0])}",
        )
    return pd.DataFrame(out)


def _read_rows(p: Path, role: Role) -> tuple[list[str], list[list[str]], np.ndarray]:
    """The header (names stripped), the non-blank rows of a UTF-8 CSV (every row as wide as the header)
    and each row's line number."""
    with open(p, "rb") as f:
        data = f.read()
    if b"\x00" in data:
        raise DataError(p, f"not a {role} CSV: binary data", expected=_header(role), found="NUL bytes")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        found = repr(data[exc.start : exc.start + 4])
        raise DataError(p, "non-UTF-8 bytes", line=line, expected="UTF-8 text", found=found) from None
    rows: list[list[str]] = []
    lines: list[int] = []
    header: list[str] | None = None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # a blank line
            if header is None:
                header = [f.strip() for f in fields]
            elif len(fields) != len(header):
                raise DataError(
                    p,
                    "wrong number of fields",
                    line=reader.line_num,
                    expected=f"{len(header)} fields",
                    found=str(len(fields)),
                )
            else:
                rows.append(fields)
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise DataError(p, f"cannot parse the {role} CSV: {exc}", line=reader.line_num) from None
    if header is None:
        raise DataError(
            p, f"no header in the {role} file", line=1, expected=_header(role), found="blank lines"
        )
    return header, rows, np.asarray(lines, dtype=np.int64)


def _header(role: Role) -> str:
    optional = "".join(f"[,{c}]" for c in _OPTIONAL[role])
    return "a header line " + ",".join(_NEED[role]) + optional + " and rows"


def _column(p: Path, text: pd.Series, column: str, rule: _Rule, lines: np.ndarray) -> np.ndarray:
    """The column's values as numbers, or a DataError naming the first bad one and the count of all."""
    raw = text.to_numpy(dtype=object)
    if rule == "id":
        ok = np.fromiter((bool(_INT_RE.fullmatch(v)) for v in raw), bool, len(raw))
        values: np.ndarray = np.zeros(len(raw), np.int64)
        values[ok] = [int(v) for v in raw[ok]]
    else:
        ok = np.fromiter((bool(_NUMBER_RE.fullmatch(v)) for v in raw), bool, len(raw))
        values = np.full(len(raw), np.nan)
        values[ok] = [float(v) for v in raw[ok]]
        with np.errstate(invalid="ignore"):
            ok &= (values == 0) | (values == 1) if rule == "label" else (values >= 0) & (values <= 1)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        if rule == "id":
            what = "not a decimal integer"
        else:
            what = "value out of range" if _NUMBER_RE.fullmatch(raw[bad[0]]) else "not a number"
        raise DataError(
            p,
            what,
            line=int(lines[bad[0]]),
            column=column,
            expected=_EXPECTED[rule],
            found=repr(str(raw[bad[0]]).strip()[:40]) if str(raw[bad[0]]).strip() else "an empty field",
            count=len(bad),
        )
    return values

"""Refuse what is wrong, warn about what is odd, and say it in plain words.

Bad inputs tried here (class B): 14 non-decimal integer forms (and 2 decimal ones that stay accepted),
4 extreme timestamps, 9 paths that are not readable regular files, 4 odd headers, 3 non-UTF-8 rows with a
wrong field count, 1 header-only file under pyarrow's threaded reader.
"""

from __future__ import annotations

import errno
import gzip
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from flowtui.cli import app
from flowtui.core.data.io import load_dataset
from flowtui.core.data.schema import TRAIN_COLUMNS
from flowtui.core.data.summary import format_ts, summarize
from flowtui.core.errors import DataError
from tests.data.test_validation import refused, train_frame, with_value, write, write_text

runner = CliRunner()

# ----- decimal integers only --------------------------------------------------------------------------

NON_DECIMAL = [
    ("user_id", "0x16"),
    ("user_id", "0X16"),
    ("user_id", "0x0"),
    ("ts_listen", "0x58187D00"),
    ("ts_listen", "0x7fffffffffffffff"),
    ("user_id", "-0x16"),
    ("user_id", "+22"),
    ("user_id", "1e3"),
    ("user_id", "22.0"),
    ("user_id", "0b1"),
    ("user_id", "0o7"),
    ("user_id", "1_000"),
    ("user_id", "\u0662\u0662"),  # Arabic-Indic digits
    ("user_id", "\uff12\uff12"),  # full-width digits
]


@pytest.mark.parametrize(("column", "value"), NON_DECIMAL)
def test_non_decimal_integers_are_refused(tmp_path: Path, column: str, value: str) -> None:
    p = with_value(tmp_path, column, {1: value})
    err = refused(p)
    assert err.line == 3 and err.column == column, str(err)
    assert "not an integer" in err.message or "out of range" in err.message


def test_hex_in_a_gzip_file_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "train.csv.gz"
    df = train_frame().astype(object)
    df.loc[4, "media_id"] = "0x10"
    p.write_bytes(gzip.compress(df.to_csv(index=False).encode()))
    err = refused(p)
    assert err.line == 6 and err.column == "media_id" and err.found == "'0x10'"
    assert err.expected == "a decimal integer"


@pytest.mark.parametrize("value", ["022", " 22"])
def test_decimal_forms_stay_accepted(tmp_path: Path, value: str) -> None:
    ds = load_dataset(with_value(tmp_path, "user_id", {1: value}), use_cache=False)
    assert ds.frame.loc[1, "user_id"] == 22


def test_hex_looking_text_in_an_extra_column_is_fine(tmp_path: Path) -> None:
    df = train_frame()
    df["note"] = "0xdeadbeef"
    ds = load_dataset(write(tmp_path, df), use_cache=False)
    assert ds.n_rows == 6 and ds.warning_counts() == {"extra_columns": 1}


# ----- extreme timestamps warn, never crash -----------------------------------------------------------

EXTREME_TS = {
    "INT64_MAX": (np.iinfo(np.int64).max, "future_timestamp"),
    "year 10000": (253_402_300_800, "future_timestamp"),
    "year 2100": (4_102_444_800, "future_timestamp"),
    "INT64_MIN": (np.iinfo(np.int64).min, "bogus_timestamp"),
}


@pytest.mark.parametrize("name", list(EXTREME_TS))
def test_extreme_timestamps_warn_and_info_works(tmp_path: Path, name: str) -> None:
    ts, code = EXTREME_TS[name]
    p = with_value(tmp_path, "ts_listen", {2: int(ts)})
    ds = load_dataset(p, use_cache=False)
    assert ds.warning_counts()[code] == 1
    (w,) = [w for w in ds.warnings if w.code == code]
    assert w.examples == (f"line 4: {int(ts)}",)
    summary = summarize(ds)
    assert int(ts) in (summary["ts_min"], summary["ts_max"])
    r = runner.invoke(app, ["data", "info", str(p), "--no-cache"])
    assert r.exit_code == 0, r.output
    assert ("year 10000 or later" if ts > 0 else "before year 1") in r.output or name == "year 2100"
    assert load_dataset(p, use_cache=False, drop_bogus_timestamps=True).n_rows == 5


def test_format_ts_never_raises() -> None:
    for ts in (None, 0, -1, 1_478_000_000, 253_402_300_799, 253_402_300_800, 2**63 - 1, -(2**63)):
        assert isinstance(format_ts(ts), str)
    assert format_ts(1_478_000_000) == "1478000000 (2016-11-01 11:33 UTC)"


# ----- paths that are not readable regular files ------------------------------------------------------


def _fifo(tmp_path: Path) -> Path:
    p = tmp_path / "pipe.csv"
    os.mkfifo(p)
    return p


def _loop(tmp_path: Path) -> Path:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    return tmp_path / "a"


def _link(target: str) -> Any:
    def make(tmp_path: Path) -> Path:
        if target == "dir":
            (tmp_path / "d").mkdir()
        elif target == "fifo":
            os.mkfifo(tmp_path / "fifo")
        (tmp_path / "link.csv").symlink_to(tmp_path / {"dir": "d", "fifo": "fifo", "none": "nowhere"}[target])
        return tmp_path / "link.csv"

    return make


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "folder.csv").mkdir()
    return tmp_path / "folder.csv"


def _under_a_file(tmp_path: Path) -> Path:
    write(tmp_path, train_frame(), "file.csv")
    return tmp_path / "file.csv" / "x.csv"


NOT_A_FILE = {
    "folder": (_folder, "not a regular file", "a folder"),
    "named pipe": (_fifo, "not a regular file", "a named pipe (FIFO)"),
    "character device": (lambda _: Path("/dev/null"), "not a regular file", "a character device"),
    "symlink loop": (_loop, "a symbolic link loop", None),
    "broken symlink": (_link("none"), "a broken symbolic link", None),
    "link to a folder": (_link("dir"), "not a regular file", "a symbolic link to a folder"),
    "link to a pipe": (_link("fifo"), "not a regular file", "a symbolic link to a named pipe (FIFO)"),
    "path under a file": (_under_a_file, "a part of this path is not a folder", None),
    "missing": (lambda t: t / "missing.csv", "file not found", None),
}


@pytest.mark.parametrize("name", list(NOT_A_FILE))
def test_what_is_not_a_file_is_named_for_what_it_is(tmp_path: Path, name: str) -> None:
    make, message, found = NOT_A_FILE[name]
    p = make(tmp_path)
    err = refused(p)  # a named pipe is refused before it is opened: this never blocks
    assert err.message == message and err.found == found, str(err)
    assert "directory" not in str(err) and ("not found" not in str(err) or name == "missing")


def test_permission_denied_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, train_frame())
    real_open = os.open

    def deny(path: Any, *args: Any, **kw: Any) -> int:
        if Path(path) == p:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kw)

    monkeypatch.setattr(os, "open", deny)
    err = refused(p)
    assert str(err) == f"{p}: cannot read file: permission denied"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_for_real(tmp_path: Path) -> None:
    p = write(tmp_path, train_frame())
    p.chmod(0)
    r = runner.invoke(app, ["data", "validate", str(p)])
    assert r.exit_code == 2 and "permission denied" in r.output and "Traceback" not in r.output


# ----- headers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message", "found"),
    [
        (",,,", "empty column name", "column 1 of 4 has no name (4 without a name)"),
        ("genre_id, ,ts_listen", "empty column name", "column 2 of 3 has no name (1 without a name)"),
        ("a,a,b", "duplicate column names", "a"),
        ("user id,some thing", "not a DSG17 train or test file", "'user id', 'some thing'"),
    ],
)
def test_odd_headers_say_what_they_found(tmp_path: Path, header: str, message: str, found: str) -> None:
    err = refused(write_text(tmp_path, header + "\n1,2,3,4\n"))
    assert err.message.startswith(message) and err.found == found
    assert not str(err).endswith("found ") and "found ;" not in str(err)


def test_spaces_around_header_names_are_fine(tmp_path: Path) -> None:
    text = write(tmp_path, train_frame()).read_text()
    header, rest = text.split("\n", 1)
    ds = load_dataset(write_text(tmp_path, ", ".join(header.split(",")) + "\n" + rest), use_cache=False)
    assert ds.n_rows == 6


# ----- rows with a wrong number of fields -------------------------------------------------------------

HEADER = ",".join(TRAIN_COLUMNS)
ROW = "0,1478000000,5,6,0,20150601,0,1,200,0,0,3,7,25,1"


@pytest.mark.parametrize("bad", [b"1,2,\xff\xfe,3", b"\xff" * 20, b"0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,\xc3"])
def test_non_utf8_bad_row_is_counted_without_exception_noise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: bytes
) -> None:
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    text = (HEADER + "\n" + ROW + "\n").encode() + bad + ("\n" + ROW + "\n").encode()
    err = refused(write_text(tmp_path, text))
    assert err.message == "wrong number of fields" and err.line == 3 and err.count == 1
    assert err.examples and err.examples[0].startswith("line 3: ")
    if bad == b"1,2,\xff\xfe,3":  # each byte that is not UTF-8 shown once as \xNN, not doubled
        assert err.examples[0] == "line 3: '1,2,\\xff\\xfe,3'"
    assert unraisable == []  # nothing like "Exception ignored in on_bad_row"


def test_rows_with_wrong_field_counts_are_all_counted(tmp_path: Path) -> None:
    rows = [ROW, ROW + ",9", "", ROW, "1,2", '"a,b",' + ROW.split(",", 1)[1], ROW[:-2]]
    err = refused(write_text(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n"))
    assert err.message == "wrong number of fields" and err.count == 3
    assert [e.split(":")[0] for e in err.examples] == [
        "line 3",
        "line 5",
        "line 7",
    ]  # the blank is not a line
    last = refused(write_text(tmp_path, HEADER + "\n" + ROW + "\n" + ROW[:-4]))
    assert last.message == "truncated last line" and last.line == 3


def test_no_python_callback_reaches_pyarrows_threaded_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The root of "terminate called without an active exception" (exit 134) after a refusal: a pyarrow
    worker thread dropping the last reference to a Python invalid-row handler while the interpreter
    exits (it takes the GIL, Python ends the thread, the unwind hits a noexcept frame). No parse may hand
    pyarrow a Python callable."""
    real = pacsv.ParseOptions

    def guarded(*args: Any, **kw: Any) -> Any:
        assert kw.get("invalid_row_handler") is None, "a Python callback handed to pyarrow's reader"
        return real(*args, **kw)

    monkeypatch.setattr(pacsv, "ParseOptions", guarded)
    for text in (
        HEADER + "\n",  # header only: the case that aborted
        HEADER,
        HEADER + "\n" + ROW + "\n1,2\n",
        HEADER + "\n" + ROW.replace("1478000000", "abc") + "\n",
        HEADER + "\n" + ROW + "\n" + ROW[:-3],
    ):
        with pytest.raises(DataError):
            load_dataset(write_text(tmp_path, text), use_cache=False)


def test_no_module_sets_a_python_invalid_row_handler() -> None:
    """The same guard for every module and every way of setting one (keyword or attribute). The abort hit
    7 of 150 runs of `data validate header_only.csv --no-cache` on the pre-fix tree (all in
    OwnedRefNoGIL's dispose, in an Arrow worker), 0 of 400 after it."""
    root = Path(__file__).resolve().parents[2] / "flowtui"
    offenders = [
        f"{p.relative_to(root)}:{i}"
        for p in root.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "invalid_row_handler" in line
    ]
    assert offenders == []


# ----- plain words ------------------------------------------------------------------------------------


def test_messages_show_plain_numbers_and_no_temp_files(tmp_path: Path) -> None:
    df = train_frame()
    df.loc[0, "media_duration"] = 0
    df.loc[1, "release_date"] = 30000101
    df.loc[2, "ts_listen"] = 5
    ds = load_dataset(write(tmp_path, df), use_cache=False)
    text = " ".join(w.one_line() + " " + " ".join(w.examples) for w in ds.warnings)
    assert not re.search(r"np\.|int64\(|int32\(|\.tmp\b", text), text
    for column, value in (("listen_type", 2), ("media_duration", -5), ("user_age", 300)):
        err = refused(with_value(tmp_path, column, {0: value}))
        assert not re.search(r"np\.|int\d+\(|\.tmp\b", str(err) + " ".join(err.examples)), str(err)

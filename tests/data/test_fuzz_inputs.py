"""Fuzz the data commands' file inputs: never a traceback, never exit 1 or 134, always 0 or 2 with one line.

`data validate`, `data info`, `data import` (each also under --json) and `load_dataset` get garbage bytes,
mangled and truncated CSVs, huge numbers, odd encodings, and paths that are not regular files (empty
files, folders, named pipes, devices, symbolic link loops, broken links, unreadable files). A refusal is
exit 2 with exactly one `error:` line (example lines below it are indented), or one JSON object
{"error": {...}} on stdout under --json; `load_dataset` raises DataError and nothing else.
A named pipe must be refused before it is opened (opening one for reading blocks): a timer turns a hang
into a failure instead of a stuck test run.

Bad inputs tried here (class D): 6 special paths x 7 callers, 9 encodings and 5 odd files x 7 callers,
and 190 generated ones (binary garbage, mangled DSG17 CSVs, huge numbers, mangled logs for import).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flowtui.cli import app
from flowtui.core.data.io import load_dataset
from flowtui.core.data.schema import TRAIN_COLUMNS
from flowtui.core.errors import DataError

runner = CliRunner()

HEADER = ",".join(TRAIN_COLUMNS) + "\n"
ROW = "0,1478000000,5,6,0,20150601,0,1,200,0,0,3,7,25,1\n"
GOOD = HEADER + ROW * 3
LOG = "user,item,plays\nu1,a,5\nu2,b,1\nu1,b,3\n"


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail (TimeoutError) instead of hanging, e.g. on a blocking open of a named pipe."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no answer within {seconds} s (blocked on a named pipe?)")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _cli(command: str, as_json: bool) -> Callable[[Path, Path], list[str]]:
    def args(p: Path, tmp: Path) -> list[str]:
        extra = ["--json"] if as_json else []
        if command == "import":
            out = tmp / "imported.csv"
            opts = ["--user", "user", "--item", "item", "--weight", "plays", "--threshold", "2"]
            return ["data", "import", str(p), *opts, "--out", str(out), *extra]
        return ["data", command, str(p), "--no-cache", *extra]

    return args


CALLERS: dict[str, Callable[[Path, Path], list[str]] | None] = {
    "validate": _cli("validate", False),
    "validate --json": _cli("validate", True),
    "info": _cli("info", False),
    "info --json": _cli("info", True),
    "import": _cli("import", False),
    "import --json": _cli("import", True),
    "load_dataset": None,
}


def check(caller: str, p: Path, tmp: Path) -> int:
    """Run one caller on `p`; assert the contract; return the exit status (0 or 2)."""
    make_args = CALLERS[caller]
    if make_args is None:
        with time_limit(10):
            try:
                load_dataset(p, use_cache=False)
            except DataError as err:
                assert "\n" not in str(err) and str(err).strip()
                return 2
        return 0
    args = make_args(p, tmp)
    with time_limit(10):
        r = runner.invoke(app, args)
    detail = f"{caller} {p.name}: exit {r.exit_code}\n{r.output}"
    assert r.exit_code in (0, 2), detail
    assert r.exception is None or isinstance(r.exception, SystemExit), f"{detail}\n{r.exception!r}"
    assert "Traceback" not in r.output and "Exception ignored" not in r.output, detail
    if "--json" in args:
        doc = json.loads(r.stdout)  # exactly one JSON object, nothing else on stdout
        if r.exit_code == 2:
            assert set(doc) == {"error"} and "\n" not in doc["error"]["message"], detail
    elif r.exit_code == 2:
        lines = r.output.splitlines()
        errors = [line for line in lines if line.startswith("error:")]
        assert len(errors) == 1 and all(line == errors[0] or line.startswith("  ") for line in lines), detail
    return r.exit_code


# ----- paths that are not regular files ---------------------------------------------------------------


def _special(name: str, tmp: Path) -> Path:
    if name == "folder":
        (tmp / "d.csv").mkdir()
        return tmp / "d.csv"
    if name == "named pipe":
        os.mkfifo(tmp / "p.csv")
        return tmp / "p.csv"
    if name == "device":
        return Path("/dev/null")
    if name == "symlink loop":
        (tmp / "a.csv").symlink_to(tmp / "b.csv")
        (tmp / "b.csv").symlink_to(tmp / "a.csv")
        return tmp / "a.csv"
    if name == "broken symlink":
        (tmp / "l.csv").symlink_to(tmp / "nowhere.csv")
        return tmp / "l.csv"
    assert name == "empty"
    (tmp / "e.csv").write_bytes(b"")
    return tmp / "e.csv"


SPECIAL = ["folder", "named pipe", "device", "symlink loop", "broken symlink", "empty"]


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("name", SPECIAL)
def test_special_paths_are_refused(tmp_path: Path, name: str, caller: str) -> None:
    assert check(caller, _special(name, tmp_path), tmp_path) == 2


@pytest.mark.parametrize("caller", list(CALLERS))
def test_unreadable_file_is_refused(tmp_path: Path, caller: str, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "secret.csv"
    p.write_text(GOOD if "import" not in caller else LOG)
    p.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the open fail as it would for a user
        real_open = os.open

        def deny(path: Any, *args: Any, **kw: Any) -> int:
            if Path(path) == p:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, *args, **kw)

        monkeypatch.setattr(os, "open", deny)
    assert check(caller, p, tmp_path) == 2


# ----- encodings and odd files ------------------------------------------------------------------------

ENCODED = {
    "utf-8 BOM": ("\ufeff" + GOOD).encode(),
    "utf-16": GOOD.encode("utf-16"),
    "utf-16-be": GOOD.encode("utf-16-be"),
    "utf-32": GOOD.encode("utf-32"),
    "latin-1 value": (HEADER + ROW.replace("0,3,7", "0,\xe9,7")).encode("latin-1"),
    "cp1252 header": (HEADER.replace("genre_id", "genr\u2019e_id") + ROW).encode("cp1252"),
    "CRLF": GOOD.replace("\n", "\r\n").encode(),
    "CR only": GOOD.replace("\n", "\r").encode(),
    "NUL bytes": GOOD.replace(",", "\x00").encode(),
}
ODD = {
    "gzip garbage.csv.gz": b"\x1f\x8b\x08\x00garbage",
    "truncated.csv.gz": gzip.compress(GOOD.encode())[:30],
    "garbage.parquet": b"PAR1" + os.urandom(64) + b"PAR1",
    "huge header": ("x" * (2 << 20) + "\n" + ROW).encode(),
    "one long line": b"1," * 300_000,
}


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("name", [*ENCODED, *ODD])
def test_encodings_and_odd_files(tmp_path: Path, name: str, caller: str) -> None:
    data = ENCODED.get(name) or ODD[name]
    suffix = "" if "." in name else ".csv"
    p = tmp_path / (name.replace(" ", "_") + suffix)
    p.write_bytes(data)
    status = check(caller, p, tmp_path)
    if name in ("utf-8 BOM", "CRLF") and "import" not in caller:
        assert status == 0
    if name.startswith(("utf-16", "utf-32")):
        assert status == 2


# ----- generated inputs -------------------------------------------------------------------------------

SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None
)


@SETTINGS
@given(data=st.binary(max_size=400), caller=st.sampled_from(list(CALLERS)), gz=st.booleans())
def test_garbage_bytes(tmp_path: Path, data: bytes, caller: str, gz: bool) -> None:
    p = tmp_path / ("garbage.csv.gz" if gz else "garbage.csv")
    p.write_bytes(gzip.compress(data) if gz and data[:1] != b"\x00" else data)
    check(caller, p, tmp_path)


def _mangle(text: str, cuts: list[tuple[int, int]], inserts: list[tuple[int, str]], junk: bytes) -> bytes:
    for at, n in cuts:
        text = text[:at] + text[at + n :]
    for at, s in inserts:
        text = text[:at] + s + text[at:]
    raw = text.encode()
    return raw[: len(raw) // 2] + junk + raw[len(raw) // 2 :]


MANGLE = {
    "cuts": st.lists(st.tuples(st.integers(0, 300), st.integers(0, 8)), max_size=4),
    "inserts": st.lists(
        st.tuples(
            st.integers(0, 300),
            st.sampled_from(['"', ",", "\n", "\r\n", "0x1F", "+1", "-", "1e9", "\xe9", " ", "\t", ",,"]),
        ),
        max_size=4,
    ),
    "junk": st.sampled_from([b"", b"\xff", b"\x00", b"\xc3", b"\xef\xbb\xbf", b"\x1a"]),
}


@SETTINGS
@given(caller=st.sampled_from(list(CALLERS)), **MANGLE)
def test_mangled_and_truncated_files(
    tmp_path: Path, caller: str, cuts: list[tuple[int, int]], inserts: list[tuple[int, str]], junk: bytes
) -> None:
    base = LOG if "import" in caller else GOOD
    p = tmp_path / "mangled.csv"
    p.write_bytes(_mangle(base, cuts, inserts, junk))
    check(caller, p, tmp_path)


@SETTINGS
@given(
    caller=st.sampled_from(list(CALLERS)),
    column=st.integers(0, len(TRAIN_COLUMNS) - 1),
    value=st.one_of(
        st.integers(-(10**30), 10**30),
        st.sampled_from([2**63 - 1, -(2**63), 2**63, 2**31, 2**15, 253_402_300_800, 4_102_444_800]),
        st.floats(allow_nan=True, allow_infinity=True),
    ),
)
def test_huge_numbers(tmp_path: Path, caller: str, column: int, value: float) -> None:
    if "import" in caller:
        text = LOG.replace("u2,b,1", f"u2,b,{value}") + f"u3,c,{value}\n"
    else:
        fields = ROW.strip().split(",")
        fields[column] = str(value)
        text = HEADER + ROW + ",".join(fields) + "\n"
    p = tmp_path / "huge.csv"
    p.write_text(text)
    check(caller, p, tmp_path)

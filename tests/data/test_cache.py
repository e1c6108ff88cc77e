"""The load cache never serves stale or damaged data, is shared by every caller, and stays private.

Bad inputs tried here (class A): 4 ways to change a source behind the cache's back, 11 damaged cache
entries, 1 source changed during its parse, 1 unwritable cache folder.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowtui.core.data import cache, reader
from flowtui.core.data.io import load_dataset
from flowtui.core.events import Event, Log
from tests.data.test_validation import train_frame, write


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("FLOWTUI_CACHE_DIR", str(d))
    return d


def entries(d: Path) -> list[Path]:
    return sorted(d.glob("*.arrow"))


def big_train(tmp_path: Path) -> Path:
    """A train file of about 6 MB: larger than the head, tail and sampled blocks together."""
    return write(tmp_path, train_frame(90_000))


def edit_in_place(p: Path, at: float, new: bytes) -> None:
    """Overwrite the first field of the row after byte `at * size` with `new` (same length)."""
    data = bytearray(p.read_bytes())
    i = data.index(b"\n", int(len(data) * at)) + 1
    assert len(new) == 1 and data[i : i + 1] in (b"0", b"1", b"2")
    data[i : i + 1] = new
    with open(p, "r+b") as f:  # same inode, same size
        f.write(data)


# ----- never stale ------------------------------------------------------------------------------------


@pytest.mark.parametrize("at", [0.37, 0.5, 0.91])
def test_edit_in_the_middle_with_size_and_mtime_restored_misses(
    tmp_path: Path, cache_dir: Path, at: float
) -> None:
    p = big_train(tmp_path)
    ref = tmp_path / "ref"
    shutil.copy2(p, ref)
    assert not load_dataset(p).from_cache and load_dataset(p).from_cache
    edit_in_place(p, at, b"7")
    subprocess.run(["touch", "-r", str(ref), str(p)], check=True)  # size and mtime as before
    assert p.stat().st_size == ref.stat().st_size and p.stat().st_mtime_ns == ref.stat().st_mtime_ns
    ds = load_dataset(p)
    assert not ds.from_cache and int((ds.frame["genre_id"] == 7).sum()) == 1
    assert load_dataset(p).from_cache and len(entries(cache_dir)) == 1  # the stale entry is gone


def test_sampled_content_alone_changes_the_key(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even where inode, size and both times cannot tell (a file system with coarse or forged times),
    an edit inside a sampled block changes the key."""
    p = big_train(tmp_path)
    monkeypatch.setattr(cache, "_identity", lambda st: (1, 2, 3, 4, 5))
    before = cache.entry_for(p, frozenset())
    size = p.stat().st_size
    block = round(10 * (size - cache._BLOCK) / (cache._N_BLOCKS + 1))  # the 10th sampled block
    edit_in_place(p, (block + 100) / size, b"7")
    assert cache.entry_for(p, frozenset()).path != before.path


def test_replaced_file_with_same_size_and_mtime_misses(tmp_path: Path, cache_dir: Path) -> None:
    p = write(tmp_path, train_frame())
    st = p.stat()
    load_dataset(p)
    other = tmp_path / "other.csv"
    other.write_text(p.read_text().replace("20150601", "20150602"))
    os.replace(other, p)  # a new inode
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    ds = load_dataset(p)
    assert not ds.from_cache and (ds.frame["release_date"] == 20150602).all()


def test_source_changed_during_the_parse_is_not_cached(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = write(tmp_path, train_frame())
    real = reader.read_csv

    def read_then_touch(path: Path, kind: object) -> object:
        out = real(path, kind)  # type: ignore[arg-type]
        with open(path, "a") as f:
            f.write("\n")
        return out

    monkeypatch.setattr(reader, "read_csv", read_then_touch)
    seen: list[Event] = []
    ds = load_dataset(p, on_event=seen.append)
    assert ds.n_rows == 6 and entries(cache_dir) == []
    assert any(isinstance(e, Log) and "changed while it was read" in e.message for e in seen)


# ----- never damaged ----------------------------------------------------------------------------------


def _flip(at: float) -> object:
    def damage(b: bytearray) -> bytearray:
        i = min(len(b) - 1, int(len(b) * at))
        b[i] ^= 0x5A
        return b

    return damage


DAMAGE = {
    "flip at the start (Arrow magic)": _flip(0.0),
    "flip in the schema": _flip(0.05),
    "flip at 25%": _flip(0.25),
    "flip at 50%": _flip(0.5),
    "flip at 75%": _flip(0.75),
    "flip in the checksum": lambda b: b[:-1] + bytes([b[-1] ^ 1]),
    "flip in the trailer's magic": lambda b: b[:-40] + bytes([b[-40] ^ 1]) + b[-39:],
    "truncated": lambda b: b[: len(b) // 2],
    "trailer cut off": lambda b: b[:-40],
    "garbage appended": lambda b: b + b"garbage",
    "empty": lambda b: bytearray(),
}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_damaged_entry_is_rebuilt_with_a_warning(tmp_path: Path, cache_dir: Path, how: str) -> None:
    p = write(tmp_path, train_frame(200))
    first = load_dataset(p)
    (entry,) = entries(cache_dir)
    entry.write_bytes(bytes(DAMAGE[how](bytearray(entry.read_bytes()))))  # type: ignore[operator]
    seen: list[Event] = []
    ds = load_dataset(p, on_event=seen.append)
    assert not ds.from_cache
    pd.testing.assert_frame_equal(ds.frame, first.frame)
    logs = [e for e in seen if isinstance(e, Log)]
    assert len(logs) == 1 and logs[0].level == "warning" and "ignoring the load cache" in logs[0].message
    again = load_dataset(p)  # rebuilt and whole again
    assert again.from_cache and again.frame.equals(first.frame)


@pytest.mark.parametrize(
    "command", [["data", "validate"], ["data", "info"], ["evaluate", "-m", "constant", "--data"]]
)
def test_the_cli_says_when_it_rebuilds_a_damaged_entry(
    tmp_path: Path, cache_dir: Path, command: list[str]
) -> None:
    """Not on a terminal (a script, a pipe) too: the warning goes to stderr, the output stays clean."""
    from typer.testing import CliRunner

    from flowtui.cli import app

    p = write(tmp_path, train_frame(200))
    load_dataset(p)
    (entry,) = entries(cache_dir)
    entry.write_bytes(bytes(_flip(0.5)(bytearray(entry.read_bytes()))))  # type: ignore[operator]
    r = CliRunner().invoke(app, [*command, str(p)])
    assert r.exit_code == 0, r.output
    assert "warning:" in r.stderr and "ignoring the load cache (checksum mismatch)" in r.stderr
    assert "warning" not in r.stdout.replace("warnings", "")
    assert load_dataset(p).from_cache  # rebuilt


def test_a_flip_in_the_values_never_reaches_the_frame(tmp_path: Path, cache_dir: Path) -> None:
    """Flip every 997th byte of the entry in turn: no load may return values other than the file's."""
    p = write(tmp_path, train_frame(50))
    truth = load_dataset(p, use_cache=False).frame
    load_dataset(p)
    (entry,) = entries(cache_dir)
    good = entry.read_bytes()
    for i in range(0, len(good), 997):
        bad = bytearray(good)
        bad[i] ^= 0x01
        entry.write_bytes(bytes(bad))
        ds = load_dataset(p)
        assert not ds.from_cache and ds.frame.equals(truth), i
        entry.write_bytes(good)


def test_unwritable_cache_folder_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("FLOWTUI_CACHE_DIR", str(blocker / "cache"))
    seen: list[Event] = []
    ds = load_dataset(write(tmp_path, train_frame()), on_event=seen.append)
    assert ds.n_rows == 6 and not ds.from_cache
    assert any(isinstance(e, Log) and "could not write the load cache" in e.message for e in seen)


# ----- one entry for every caller ---------------------------------------------------------------------


def test_validate_and_train_share_one_entry(tmp_path: Path, cache_dir: Path) -> None:
    """`data validate` loads with kind=None, train/evaluate with kind="train": the same entry serves both."""
    p = write(tmp_path, train_frame())
    assert not load_dataset(p).from_cache  # data validate
    assert load_dataset(p, kind="train").from_cache  # train, evaluate
    assert load_dataset(p).from_cache
    assert len(entries(cache_dir)) == 1


def test_cli_validate_then_train_loader_hits(tmp_path: Path, cache_dir: Path) -> None:
    from typer.testing import CliRunner

    from flowtui.cli import app

    p = write(tmp_path, train_frame())
    r = CliRunner().invoke(app, ["data", "validate", str(p)])
    assert r.exit_code == 0, r.output
    assert load_dataset(p, kind="train").from_cache
    r = CliRunner().invoke(app, ["data", "validate", str(p), "--json"])
    assert r.exit_code == 0 and '"from_cache": true' in r.stdout


def test_other_kind_is_a_plain_miss(tmp_path: Path, cache_dir: Path) -> None:
    df = train_frame()
    df.insert(0, "sample_id", np.arange(len(df)))  # train columns and a sample_id: either kind
    p = write(tmp_path, df)
    assert load_dataset(p).kind == "train"
    seen: list[Event] = []
    ds = load_dataset(p, kind="test", on_event=seen.append)
    assert ds.kind == "test" and not ds.from_cache and not [e for e in seen if isinstance(e, Log)]


def test_drop_options_keep_their_own_entries(tmp_path: Path, cache_dir: Path) -> None:
    df = train_frame()
    df.loc[0, "ts_listen"] = 1000
    p = write(tmp_path, df)
    load_dataset(p)
    load_dataset(p, drop_bogus_timestamps=True)
    assert load_dataset(p).from_cache and load_dataset(p, drop_bogus_timestamps=True).n_rows == 5
    assert len(entries(cache_dir)) == 2


# ----- private when the source is ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"), [(0o600, 0o600), (0o640, 0o640), (0o644, 0o644), (0o666, 0o644)]
)
def test_entry_keeps_the_source_permissions(
    tmp_path: Path, cache_dir: Path, source: int, expected: int
) -> None:
    p = write(tmp_path, train_frame())
    os.chmod(p, source)
    load_dataset(p)
    (entry,) = entries(cache_dir)
    assert stat.S_IMODE(entry.stat().st_mode) == expected
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700  # a new cache folder is private


def test_chmod_of_the_source_makes_a_new_private_entry(tmp_path: Path, cache_dir: Path) -> None:
    p = write(tmp_path, train_frame())
    load_dataset(p)
    os.chmod(p, 0o600)  # made private after a world-readable entry was written
    assert not load_dataset(p).from_cache
    (entry,) = entries(cache_dir)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600


@pytest.mark.parametrize("what", ["fifo", "symlink", "folder"])
def test_an_entry_that_is_not_a_regular_file_is_never_opened(
    tmp_path: Path, cache_dir: Path, what: str
) -> None:
    """A named pipe where the entry should be blocked `data validate` and `evaluate` forever: now a miss."""
    import threading

    p = write(tmp_path, train_frame(200))
    first = load_dataset(p)
    (entry,) = entries(cache_dir)
    entry.unlink()
    if what == "fifo":
        os.mkfifo(entry)
    elif what == "symlink":
        entry.symlink_to(p)
    else:
        entry.mkdir()
    seen: list[Event] = []
    done: list[bool] = []
    worker = threading.Thread(
        target=lambda: done.append(load_dataset(p, on_event=seen.append).frame.equals(first.frame))
    )
    worker.daemon = True
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "load_dataset blocked on a cache entry that is not a regular file"
    assert done == [True]
    logs = [e.message for e in seen if isinstance(e, Log)]
    assert any("not a regular file" in m for m in logs), logs
    if what != "folder":  # a folder cannot be replaced by a file: the entry just stays a miss
        assert stat.S_ISREG(os.lstat(entry).st_mode) and load_dataset(p).from_cache


@pytest.mark.parametrize("command", [["data", "validate"], ["evaluate", "-m", "constant", "--data"]])
def test_the_cli_does_not_hang_on_a_fifo_in_the_cache(
    tmp_path: Path, cache_dir: Path, command: list[str]
) -> None:
    import sys

    p = write(tmp_path, train_frame(300))
    load_dataset(p)
    (entry,) = entries(cache_dir)
    entry.unlink()
    os.mkfifo(entry)
    env = {**os.environ, "FLOWTUI_CACHE_DIR": str(cache_dir)}
    out = subprocess.run(
        [sys.executable, "-m", "flowtui", *command, str(p)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "not a regular file" in out.stderr + out.stdout

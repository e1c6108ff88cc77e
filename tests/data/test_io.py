"""The loader end to end: kinds, dtypes, the cache, progress and cancel, real fixtures, garbage input."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowtui.core import paths
from flowtui.core.data.io import load_dataset
from flowtui.core.data.schema import DTYPES, TEST_COLUMNS, TRAIN_COLUMNS
from flowtui.core.errors import DataError
from flowtui.core.events import Cancelled, Event, Progress
from flowtui.core.safe_files import atomic_path, write_csv
from tests.data.test_validation import make_test_frame, train_frame, write


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("FLOWTUI_CACHE_DIR", str(d))
    return d


def test_kinds_and_compact_dtypes(tmp_path: Path) -> None:
    tr = load_dataset(write(tmp_path, train_frame(), "a.csv"), use_cache=False)
    te = load_dataset(write(tmp_path, make_test_frame(), "b.csv"), use_cache=False)
    assert tr.kind == "train" and tuple(tr.frame.columns) == TRAIN_COLUMNS
    assert te.kind == "test" and tuple(te.frame.columns) == TEST_COLUMNS
    assert all(tr.frame[c].dtype == DTYPES[c] for c in TRAIN_COLUMNS)
    assert tr.frame.memory_usage(index=False).sum() == 44 * tr.n_rows  # 44 bytes a row: 7.5M rows take 330 MB
    pd.testing.assert_frame_equal(tr.frame, train_frame().astype({c: DTYPES[c] for c in TRAIN_COLUMNS}))


def test_cache_hit_on_second_load(tmp_path: Path, cache: Path) -> None:
    p = write(tmp_path, train_frame())
    p.write_text(p.read_text().replace("20150601", "0", 1))  # one warning to carry through the cache
    first = load_dataset(p)
    second = load_dataset(p)
    assert not first.from_cache and second.from_cache
    assert len(list(cache.glob("*.arrow"))) == 1
    pd.testing.assert_frame_equal(first.frame, second.frame)
    assert second.warnings == first.warnings and second.warning_counts() == {"invalid_release_date": 1}
    second.frame.loc[0, "user_id"] = 5  # a cached frame is writable like a parsed one


def test_cache_invalidated_when_the_file_changes(tmp_path: Path, cache: Path) -> None:
    p = write(tmp_path, train_frame())
    load_dataset(p)
    df = train_frame()
    df.loc[0, "user_age"] = 29
    write(tmp_path, df)
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    ds = load_dataset(p)
    assert not ds.from_cache and ds.frame.loc[0, "user_age"] == 29
    assert len(list(cache.glob("*.arrow"))) == 1  # the stale copy is removed


def test_same_size_and_mtime_but_other_content_misses(tmp_path: Path, cache: Path) -> None:
    p = write(tmp_path, train_frame())
    st = p.stat()
    load_dataset(p)
    p.write_text(p.read_text().replace("20150601", "20150602"))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    ds = load_dataset(p)
    assert not ds.from_cache and (ds.frame["release_date"] == 20150602).all()


def test_corrupt_cache_is_rebuilt(tmp_path: Path, cache: Path) -> None:
    p = write(tmp_path, train_frame())
    load_dataset(p)
    (cached,) = cache.glob("*.arrow")
    cached.write_bytes(b"garbage" * 10)
    ds = load_dataset(p)
    assert not ds.from_cache and ds.n_rows == 6
    assert load_dataset(p).from_cache


def test_use_cache_false_writes_nothing(tmp_path: Path, cache: Path) -> None:
    load_dataset(write(tmp_path, train_frame()), use_cache=False)
    assert not cache.exists() or not any(cache.iterdir())


def test_progress_events_and_cancel(tmp_path: Path, cache: Path) -> None:
    p = write(tmp_path, train_frame())
    seen: list[Event] = []
    load_dataset(p, on_event=seen.append)
    steps = [e.message for e in seen if isinstance(e, Progress) and e.task == "load"]
    assert steps == ["parse", "validate", "cache", "done"]
    cancel = threading.Event()
    cancel.set()
    p2 = write(tmp_path, train_frame(), "other.csv")
    with pytest.raises(Cancelled):
        load_dataset(p2, cancel=cancel)
    assert len(list(cache.glob("*.arrow"))) == 1  # nothing cached for the cancelled load


def test_cancel_during_load_leaves_no_cache(tmp_path: Path, cache: Path) -> None:
    cancel = threading.Event()

    def on_event(e: Event) -> None:
        if isinstance(e, Progress) and e.message == "validate":
            cancel.set()

    with pytest.raises(Cancelled):
        load_dataset(write(tmp_path, train_frame()), on_event=on_event, cancel=cancel)
    assert not cache.exists() or not any(cache.iterdir())


def test_cache_dir_follows_env(cache: Path) -> None:
    assert paths.cache_dir() == cache


def test_write_csv_round_trip_and_atomic(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "t.csv"
    write_csv(train_frame(), out, make_parents=True)
    pd.testing.assert_frame_equal(pd.read_csv(out), train_frame())
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert pd.read_csv(out).shape == (6, 15)
    assert [f.name for f in out.parent.iterdir()] == ["t.csv"]
    mixed = pd.DataFrame({"sample_id": [0, 1], "name": ["a,b", "c"]})
    write_csv(mixed, out)
    pd.testing.assert_frame_equal(pd.read_csv(out), mixed)


# ----- real DSG17 fixtures -----------------------------------------------------------------------------


def test_real_test_file(dsg17_dir: Path) -> None:
    ds = load_dataset(dsg17_dir / "test.csv", use_cache=False)
    assert ds.kind == "test" and ds.n_rows == 19918 and ds.frame["user_id"].nunique() == 19918
    assert set(ds.frame["context_type"].unique()) == {1, 5, 20, 23}


@pytest.mark.parametrize("name", ["train_sample.csv", "train_head_tail.csv"])
def test_real_train_files(dsg17_dir: Path, name: str) -> None:
    ds = load_dataset(dsg17_dir / name, use_cache=False)
    assert ds.kind == "train" and ds.n_rows in (19880, 60)
    assert ds.frame["is_listened"].isin([0, 1]).all()


def test_real_listened_before_release(dsg17_dir: Path) -> None:
    ds = load_dataset(dsg17_dir / "train_listened_before_release.csv", use_cache=False)
    counts = ds.warning_counts()
    assert ds.n_rows == 1000 and counts["listened_before_release"] == 1000
    assert counts["bogus_timestamp"] == int((ds.frame["ts_listen"] < 1_230_768_000).sum()) > 0


@pytest.mark.parametrize("name", ["sample_submission.csv", "user_row_counts.csv", "user_distinct_songs.csv"])
def test_real_non_data_files_refused_clearly(dsg17_dir: Path, name: str) -> None:
    with pytest.raises(DataError) as info:
        load_dataset(dsg17_dir / name, use_cache=False)
    assert name in str(info.value) and "not a DSG17" in str(info.value)


# ----- garbage input -----------------------------------------------------------------------------------

HEADER = ",".join(TRAIN_COLUMNS) + "\n"
ROW = "0,1478000000,5,6,0,20150601,0,1,200,0,0,3,7,25,1\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=300), suffix=st.sampled_from([".csv", ".csv.gz", ".parquet"]))
def test_random_bytes_never_crash(tmp_path: Path, data: bytes, suffix: str) -> None:
    p = tmp_path / f"garbage{suffix}"
    p.write_bytes(data)
    try:
        load_dataset(p, use_cache=False)
    except DataError as err:
        assert f"garbage{suffix}" in str(err)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cuts=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 6)), max_size=4),
    inserts=st.lists(
        st.tuples(
            st.integers(0, 400), st.sampled_from(['"', ",", "\n", "x", "-", "\xe9", "\r", " ", "99999"])
        ),
        max_size=4,
    ),
    binary_junk=st.sampled_from([b"", b"\xff", b"\x00", b"\xc3"]),
)
def test_mangled_csv_is_data_error_or_loads(
    tmp_path: Path, cuts: list[tuple[int, int]], inserts: list[tuple[int, str]], binary_junk: bytes
) -> None:
    text = HEADER + ROW * 3
    for at, n in cuts:
        text = text[:at] + text[at + n :]
    for at, s in inserts:
        text = text[:at] + s + text[at:]
    raw = text.encode()
    raw = raw[: len(raw) // 2] + binary_junk + raw[len(raw) // 2 :]
    p = tmp_path / "mangled.csv"
    p.write_bytes(raw)
    try:
        ds = load_dataset(p, use_cache=False)
    except DataError as err:
        assert "mangled.csv" in str(err)
    else:
        assert ds.n_rows >= 1 and all(ds.frame[c].dtype == DTYPES[c] for c in ds.frame.columns)
        assert np.isin(ds.frame["is_listened"] if ds.kind == "train" else [0], [0, 1]).all()

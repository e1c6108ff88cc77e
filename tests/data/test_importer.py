"""import_log: another service's log becomes a DSG17 train frame the loader accepts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flowtui.core.data.importer import DEFAULT_GAP_S, DEFAULT_START_TS, import_log
from flowtui.core.data.io import load_dataset
from flowtui.core.data.schema import DTYPES, TRAIN_COLUMNS
from flowtui.core.errors import DataError
from flowtui.core.safe_files import write_csv

LOG = "user\tartist\tplays\n" + "u1\tradiohead\t10\nu2\tbeck\t1\nu1\tbeck\t3\nu3\tradiohead\t7\nu1\tmuse\t0\n"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    p = tmp_path / "lastfm.tsv"
    p.write_text(LOG)
    return p


def test_weight_threshold_and_dense_ids(log: Path) -> None:
    df = import_log(log, user="user", item="artist", weight="plays", threshold=3, sep="\t")
    assert tuple(df.columns) == TRAIN_COLUMNS and all(df[c].dtype == DTYPES[c] for c in TRAIN_COLUMNS)
    assert df["is_listened"].tolist() == [1, 0, 1, 1, 0]
    # ranked by activity: u1 (3 rows) is user 0; radiohead and beck (2 rows each) are 0 and 1, by first appearance
    assert df["user_id"].tolist() == [0, 1, 0, 2, 0]
    assert df["media_id"].tolist() == [0, 1, 1, 0, 2]
    assert (df["artist_id"] == df["media_id"]).all() and (df["genre_id"] == 0).all()
    assert (df["listen_type"] == 1).all() and (df["media_duration"] == 222).all()
    # no time column: each user's rows in file order, 4 minutes apart
    assert df["ts_listen"].tolist() == [
        DEFAULT_START_TS,
        DEFAULT_START_TS,
        DEFAULT_START_TS + DEFAULT_GAP_S,
        DEFAULT_START_TS,
        DEFAULT_START_TS + 2 * DEFAULT_GAP_S,
    ]


def test_imported_file_loads_without_warnings(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.csv"
    write_csv(import_log(log, user="user", item="artist", weight="plays", threshold=3, sep="\t"), out)
    ds = load_dataset(out, use_cache=False)
    assert ds.kind == "train" and ds.n_rows == 5 and ds.warnings == []


def test_label_time_artist_genre(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text(
        "uid,track,liked,when,band,style\n"
        "a,t1,1,2017-03-01T10:00:00Z,x,rock\n"
        "b,t2,0,2017-03-01 10:05:00,y,pop\n"
        "a,t2,1,2017-03-02,y,pop\n"
    )
    df = import_log(p, user="uid", item="track", label="liked", time="when", artist="band", genre="style")
    assert df["is_listened"].tolist() == [1, 0, 1]
    assert df["ts_listen"].tolist() == [1488362400, 1488362700, 1488412800]
    assert df["artist_id"].tolist() == [1, 0, 0] and df["genre_id"].tolist() == [2, 1, 1]


def test_unix_time_column(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("u,i,y,t\n1,2,1,1478000000\n1,3,0,1478000100\n")
    df = import_log(p, user="u", item="i", label="y", time="t")
    assert df["ts_listen"].tolist() == [1478000000, 1478000100]


def test_missing_column(log: Path) -> None:
    with pytest.raises(DataError) as info:
        import_log(log, user="user", item="song", weight="plays", threshold=1, sep="\t")
    assert (
        "missing columns" in str(info.value)
        and info.value.expected == "song"
        and "lastfm.tsv" in str(info.value)
    )


def test_bad_weight_value(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("u,i,w\n1,2,5\n1,3,lots\n")
    with pytest.raises(DataError) as info:
        import_log(p, user="u", item="i", weight="w", threshold=1)
    err = info.value
    assert err.line == 3 and err.column == "w" and err.found == "'lots'" and err.count == 1


def test_label_outside_0_1(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("u,i,y\n1,2,1\n1,3,2\n")
    with pytest.raises(DataError, match="label outside") as info:
        import_log(p, user="u", item="i", label="y")
    assert info.value.line == 3


def test_bad_time(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("u,i,y,t\n1,2,1,2017-01-01\n1,3,0,yesterday\n")
    with pytest.raises(DataError, match="bad timestamp") as info:
        import_log(p, user="u", item="i", label="y", time="t")
    assert info.value.line == 3 and info.value.found == "'yesterday'"


def test_bad_value_among_unix_seconds_is_the_only_offender(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("u,i,y,t\n1,2,1,1480000000\n1,3,0,1480000100\n2,3,1,abc\n")
    with pytest.raises(DataError, match="bad timestamp") as info:
        import_log(p, user="u", item="i", label="y", time="t")
    assert (info.value.line, info.value.found, info.value.count) == (4, "'abc'", 1)
    assert info.value.expected is not None and "Unix seconds" in info.value.expected


def test_label_options_are_required_and_exclusive(log: Path) -> None:
    with pytest.raises(DataError, match="either a label column or a weight"):
        import_log(log, user="user", item="artist", sep="\t")
    with pytest.raises(DataError, match="needs a threshold"):
        import_log(log, user="user", item="artist", weight="plays", sep="\t")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        import_log(tmp_path / "x.csv", user="u", item="i", label="y")


def test_dense_ids_are_vectorised_and_stable() -> None:
    import pandas as pd

    from flowtui.core.data.importer import _dense_by_activity

    ids, originals = _dense_by_activity(pd.Series(["c", "a", "c", "b", "a", "c"]))
    assert ids.tolist() == [0, 1, 0, 2, 1, 0] and ids.dtype.kind == "i"
    assert np.array_equal(np.sort(np.unique(ids)), np.arange(3))
    assert originals.tolist() == ["c", "a", "b"]  # originals[internal id] is the log's own id

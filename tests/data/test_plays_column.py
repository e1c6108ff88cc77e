"""A train file's optional `plays` column: loaded, validated, cached; `data import --weight` writes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowtui.core.data import cache
from flowtui.core.data.importer import import_log, import_log_with_ids
from flowtui.core.data.io import from_frame, load_dataset
from flowtui.core.data.schema import TEST_COLUMNS, TRAIN_COLUMNS
from flowtui.core.errors import DataError
from tests.data.test_validation import refused, train_frame, write

PLAYS = [3.0, 0.0, 1.5, 12.0, 1.0, 2e3]


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("FLOWTUI_CACHE_DIR", str(d))
    return d


def with_plays(values: list[object] | None = None) -> pd.DataFrame:
    df = train_frame()
    df["plays"] = pd.Series(PLAYS if values is None else values)
    return df


def test_plays_is_kept_as_float64_after_the_train_columns(tmp_path: Path) -> None:
    ds = load_dataset(write(tmp_path, with_plays()), use_cache=False)
    assert tuple(ds.frame.columns) == (*TRAIN_COLUMNS, "plays")
    assert ds.frame["plays"].dtype == np.float64 and ds.frame["plays"].tolist() == PLAYS
    assert ds.warnings == []


def test_plays_beside_an_extra_column_and_in_any_position(tmp_path: Path) -> None:
    df = with_plays()
    df = df[["plays", *TRAIN_COLUMNS]].assign(note="x")
    ds = load_dataset(write(tmp_path, df), use_cache=False)
    assert ds.frame["plays"].tolist() == PLAYS and ds.warning_counts() == {"extra_columns": 1}
    assert ds.warnings[0].examples == ("note",)


def test_a_file_without_plays_loads_as_before(tmp_path: Path) -> None:
    ds = load_dataset(write(tmp_path, train_frame()), use_cache=False)
    assert tuple(ds.frame.columns) == TRAIN_COLUMNS and ds.warnings == []


def test_plays_in_a_test_file_is_an_extra_column(tmp_path: Path) -> None:
    df = train_frame().drop(columns="is_listened")
    df.insert(0, "sample_id", np.arange(len(df)))
    df["plays"] = 1
    ds = load_dataset(write(tmp_path, df, "test.csv"), use_cache=False)
    assert ds.kind == "test" and tuple(ds.frame.columns) == TEST_COLUMNS
    assert ds.warning_counts() == {"extra_columns": 1}


def test_parquet_and_frames_keep_plays(tmp_path: Path) -> None:
    df = with_plays([1, 2, 3, 4, 5, 6])
    p = tmp_path / "train.parquet"
    df.to_parquet(p, index=False)
    ds = load_dataset(p, use_cache=False)
    assert ds.frame["plays"].dtype == np.float64 and ds.frame["plays"].tolist() == [1, 2, 3, 4, 5, 6]
    mem = from_frame(with_plays(), name="mem")
    assert mem.frame["plays"].tolist() == PLAYS and mem.warnings == []
    as_text = from_frame(with_plays([str(v) for v in PLAYS]))
    assert as_text.frame["plays"].tolist() == PLAYS


@pytest.mark.parametrize(
    ("value", "message", "found"),
    [
        ("-1", "negative value", "-1.0"),
        ("abc", "value is not a number", "'abc'"),
        ("nan", "value is not a number", "'nan'"),
        ("inf", "value is not a number", "'inf'"),
        ("0x10", "value is not a number", "'0x10'"),
        ("", "value is not a number", "''"),
    ],
)
def test_bad_plays_refused_with_file_line_and_column(
    tmp_path: Path, value: str, message: str, found: str
) -> None:
    df = with_plays().astype({"plays": object})
    df.loc[3, "plays"] = value
    df.loc[5, "plays"] = value
    p = write(tmp_path, df)
    err = refused(p)
    assert str(err.path) == str(p) and err.column == "plays" and message in err.message
    assert err.line == 5 and err.count == 2 and err.found == found, err


@pytest.mark.parametrize("bad", [-0.5, np.inf, np.nan])
def test_bad_plays_refused_in_parquet_and_frames(tmp_path: Path, bad: float) -> None:
    df = with_plays([1.0, 2.0, bad, 3.0, 4.0, 5.0])
    with pytest.raises(DataError) as info:
        from_frame(df, name="mem")
    assert info.value.column == "plays" and "row 2" in info.value.examples[0]
    p = tmp_path / "train.parquet"
    df.to_parquet(p, index=False)
    err = refused(p)
    assert err.column == "plays" and err.count == 1


def test_number_forms_accepted(tmp_path: Path) -> None:
    ds = load_dataset(write(tmp_path, with_plays(["3", "0", " 1.5", "1.2e1", ".5", "+7"])), use_cache=False)
    assert ds.frame["plays"].tolist() == [3.0, 0.0, 1.5, 12.0, 0.5, 7.0]


def test_dropped_rows_drop_their_plays(tmp_path: Path) -> None:
    df = with_plays()
    df.loc[2, "media_duration"] = 0
    ds = load_dataset(write(tmp_path, df), use_cache=False, drop=["zero_duration"])
    assert ds.n_rows == 5 and ds.frame["plays"].tolist() == [3.0, 0.0, 12.0, 1.0, 2e3]


def test_cache_keeps_plays_and_files_without_them(tmp_path: Path, cache_dir: Path) -> None:
    assert cache.CACHE_VERSION >= 4  # entries written before `plays` was kept are rebuilt
    p = write(tmp_path, with_plays())
    first = load_dataset(p)
    again = load_dataset(p)
    assert not first.from_cache and again.from_cache
    pd.testing.assert_frame_equal(first.frame, again.frame)
    assert again.frame["plays"].dtype == np.float64
    bare = write(tmp_path, train_frame(), "bare.csv")
    load_dataset(bare)
    hit = load_dataset(bare)
    assert hit.from_cache and tuple(hit.frame.columns) == TRAIN_COLUMNS


LOG = "user\tartist\tcount\nu1\tradiohead\t10\nu2\tbeck\t1\nu1\tbeck\t3\nu1\tradiohead\t7\n"


def test_import_keeps_the_weight_as_plays(tmp_path: Path) -> None:
    log = tmp_path / "log.tsv"
    log.write_text(LOG)
    imported = import_log_with_ids(log, user="user", item="artist", weight="count", threshold=3, sep="\t")
    assert imported.frame["plays"].tolist() == [10.0, 1.0, 3.0, 7.0] and imported.warnings == []
    assert imported.frame["is_listened"].tolist() == [1, 0, 1, 1]
    assert "plays" not in import_log(log, user="user", item="artist", weight="count", threshold=3, sep="\t")
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("u,i,y\na,b,1\n")
    assert "plays" not in import_log_with_ids(labelled, user="u", item="i", label="y").frame


def test_import_with_negative_weights_keeps_no_plays(tmp_path: Path) -> None:
    log = tmp_path / "ratings.csv"
    log.write_text("u,i,r\na,x,2\nb,x,-1\na,y,-2\n")
    imported = import_log_with_ids(log, user="u", item="i", weight="r", threshold=0)
    assert "plays" not in imported.frame
    assert [(w.code, w.count, w.column) for w in imported.warnings] == [("weight_not_kept", 2, "r")]

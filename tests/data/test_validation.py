"""Every refusal and every warning of the loader, asserting what the message says."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowtui.core.data.io import check_test_users, from_frame, load_dataset
from flowtui.core.data.schema import TEST_COLUMNS, TRAIN_COLUMNS
from flowtui.core.errors import DataError

NOV_2016 = 1_478_000_000


def train_frame(n: int = 6) -> pd.DataFrame:
    """A small valid train frame: n rows of two users, November 2016, released in 2015."""
    return pd.DataFrame(
        {
            "genre_id": np.arange(n) % 3,
            "ts_listen": NOV_2016 + np.arange(n) * 100,
            "media_id": np.arange(n) + 10,
            "album_id": np.arange(n) + 100,
            "context_type": np.zeros(n, dtype=int),
            "release_date": np.full(n, 20150601),
            "platform_name": np.zeros(n, dtype=int),
            "platform_family": np.ones(n, dtype=int),
            "media_duration": np.full(n, 200),
            "listen_type": np.arange(n) % 2,
            "user_gender": np.zeros(n, dtype=int),
            "user_id": np.arange(n) % 2,
            "artist_id": np.arange(n) + 1000,
            "user_age": np.full(n, 25),
            "is_listened": (np.arange(n) + 1) % 2,
        }
    )[list(TRAIN_COLUMNS)]


def make_test_frame(n: int = 3) -> pd.DataFrame:
    df = train_frame(n).drop(columns="is_listened")
    df.insert(0, "sample_id", np.arange(n))
    return df[list(TEST_COLUMNS)]


def write(tmp_path: Path, df: pd.DataFrame, name: str = "train.csv") -> Path:
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def write_text(tmp_path: Path, text: str | bytes, name: str = "train.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def refused(p: Path, **kw: object) -> DataError:
    with pytest.raises(DataError) as info:
        load_dataset(p, use_cache=False, **kw)  # type: ignore[arg-type]
    return info.value


def with_value(
    tmp_path: Path, column: str, rows: dict[int, object], base: pd.DataFrame | None = None
) -> Path:
    df = (train_frame() if base is None else base).astype(object)
    for i, v in rows.items():
        df.loc[i, column] = v
    return write(tmp_path, df)


# ----- errors ------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    err = refused(tmp_path / "nope.csv")
    assert "nope.csv" in str(err) and "file not found" in str(err)


def test_empty_file(tmp_path: Path) -> None:
    err = refused(write_text(tmp_path, ""))
    assert "train.csv" in str(err) and "empty file" in str(err) and "0 bytes" in str(err)


def test_no_header(tmp_path: Path) -> None:
    p = write_text(tmp_path, "1,2,3,4\n5,6,7,8\n")
    err = refused(p)
    assert err.line == 1 and "no header" in str(err) and "expected a line of column names" in str(err)
    assert "'1,2,3,4'" in str(err)


def test_header_only_has_no_rows(tmp_path: Path) -> None:
    err = refused(write_text(tmp_path, ",".join(TRAIN_COLUMNS) + "\n"))
    assert "no data rows" in str(err) and err.line == 2


def test_missing_required_columns(tmp_path: Path) -> None:
    p = write(tmp_path, train_frame().drop(columns=["user_age", "media_id"]))
    err = refused(p)
    assert "missing required columns of a train file" in str(err)
    assert err.expected == "media_id, user_age" and err.line == 1
    assert "genre_id" in (err.found or "")


def test_not_an_integer(tmp_path: Path) -> None:
    p = with_value(tmp_path, "media_id", {2: "abc", 4: "1.5"})
    err = refused(p)
    assert str(err).startswith(f"{p}:4: value is not an integer")
    assert err.column == "media_id" and err.expected == "a decimal integer" and err.found == "'abc'"
    assert err.count == 2 and err.examples == ["line 4: 'abc'", "line 6: '1.5'"]


def test_empty_value_is_not_an_integer(tmp_path: Path) -> None:
    p = with_value(tmp_path, "user_id", {0: ""})
    err = refused(p)
    assert (
        err.line == 2 and err.column == "user_id" and err.count == 1 and "value is not an integer" in str(err)
    )


def test_out_of_range_for_compact_dtype_is_an_error(tmp_path: Path) -> None:
    p = with_value(tmp_path, "user_age", {1: 300, 3: -200})
    err = refused(p)
    assert "value out of range" in str(err) and err.column == "user_age" and err.line == 3
    assert err.expected == "an integer in [-128, 127] (int8)" and err.found == "'300'" and err.count == 2


def test_truncated_last_line(tmp_path: Path) -> None:
    text = write(tmp_path, train_frame()).read_text().rstrip("\n")
    p = write_text(tmp_path, text + "\n0,1478000000,5\n")
    err = refused(p)
    assert "truncated last line" in str(err) and err.line == 8
    assert err.expected == "15 fields" and err.found == "3" and err.count == 1
    assert err.examples == ["line 8: '0,1478000000,5'"]


def test_wrong_number_of_fields_mid_file(tmp_path: Path) -> None:
    lines = write(tmp_path, train_frame()).read_text().splitlines()
    lines[3] += ",9"
    p = write_text(tmp_path, "\n".join(lines) + "\n")
    err = refused(p)
    assert "wrong number of fields" in str(err) and err.line == 4 and err.found == "16"


@pytest.mark.parametrize("column", ["is_listened", "listen_type"])
def test_binary_column_outside_0_1(tmp_path: Path, column: str) -> None:
    p = with_value(tmp_path, column, {3: 2})
    err = refused(p)
    assert "value outside {0, 1}" in str(err) and err.column == column
    assert err.line == 5 and err.expected == "0 or 1" and err.found == "2" and err.count == 1


def test_negative_duration(tmp_path: Path) -> None:
    p = with_value(tmp_path, "media_duration", {0: -5, 5: -1})
    err = refused(p)
    assert "negative value" in str(err) and err.column == "media_duration" and err.line == 2
    assert err.found == "-5" and err.count == 2 and err.examples == ["line 2: -5", "line 7: -1"]


def test_duplicate_sample_id(tmp_path: Path) -> None:
    df = make_test_frame(4)
    df.loc[3, "sample_id"] = 1
    p = write(tmp_path, df, "test.csv")
    err = refused(p)
    assert "duplicate sample_id" in str(err) and err.line == 5 and err.found == "1" and err.count == 1


def test_non_utf8_in_header(tmp_path: Path) -> None:
    p = write_text(tmp_path, b"genre_id,ts\xff\xfelisten\n1,2\n")
    err = refused(p)
    assert "non-UTF-8 bytes" in str(err) and err.line == 1


def test_non_utf8_in_a_value(tmp_path: Path) -> None:
    lines = write(tmp_path, train_frame()).read_bytes().split(b"\n")
    lines[2] = b"\xff\xfe" + lines[2]
    p = write_text(tmp_path, b"\n".join(lines))
    err = refused(p)
    assert "non-UTF-8 bytes" in str(err) and err.line == 3 and err.column == "genre_id" and err.count == 1


def test_non_utf8_in_an_extra_column(tmp_path: Path) -> None:
    df = train_frame()
    df["note"] = "ok"
    lines = write(tmp_path, df).read_bytes().split(b"\n")
    lines[1] = lines[1][:-2] + b"\xe9t\xe9"
    p = write_text(tmp_path, b"\n".join(lines))
    err = refused(p)
    assert "non-UTF-8 bytes" in str(err) and err.column == "note" and err.line == 2


def test_submission_is_not_a_data_file(tmp_path: Path) -> None:
    p = write_text(tmp_path, "sample_id,is_listened\n0,0.5\n", "sub.csv")
    err = refused(p)
    assert "a submission or answers file" in str(err)


def test_bad_gzip(tmp_path: Path) -> None:
    p = write_text(tmp_path, b"this is not gzip at all", "train.csv.gz")
    err = refused(p)
    assert "train.csv.gz" in str(err)


def test_kind_forced_to_train_on_a_test_file(tmp_path: Path) -> None:
    p = write(tmp_path, make_test_frame(), "test.csv")
    err = refused(p, kind="train")
    assert "is_listened" in (err.expected or "")


# ----- warnings ----------------------------------------------------------------------------------------


def test_extra_columns_warned_and_left_out(tmp_path: Path) -> None:
    df = train_frame()
    df["note"] = "x"
    ds = load_dataset(write(tmp_path, df), use_cache=False)
    assert list(ds.frame.columns) == list(TRAIN_COLUMNS)
    w = ds.warning_counts()
    assert w == {"extra_columns": 1} and "note" in ds.warnings[0].message


def test_invalid_release_date(tmp_path: Path) -> None:
    ds = load_dataset(
        with_value(tmp_path, "release_date", {1: 20161301, 2: 20150229, 3: 20160229}), use_cache=False
    )
    (w,) = [w for w in ds.warnings if w.code == "invalid_release_date"]
    assert (
        w.count == 2 and w.column == "release_date" and w.examples == ("line 3: 20161301", "line 4: 20150229")
    )


def test_placeholder_release_dates_are_implausible_not_invalid(tmp_path: Path) -> None:
    ds = load_dataset(with_value(tmp_path, "release_date", {0: 30000101, 1: 19000101}), use_cache=False)
    counts = ds.warning_counts()
    assert counts.get("implausible_release_date") == 2 and "invalid_release_date" not in counts
    # 30000101 is also after every listen
    assert counts.get("listened_before_release") == 1


def test_bogus_timestamp(tmp_path: Path) -> None:
    ds = load_dataset(with_value(tmp_path, "ts_listen", {4: 1000}), use_cache=False)
    (w,) = [w for w in ds.warnings if w.code == "bogus_timestamp"]
    assert w.count == 1 and w.column == "ts_listen" and w.examples == ("line 6: 1000",)


def test_listened_before_release(tmp_path: Path) -> None:
    # 1478000000 is 2016-11-01 11:33 UTC: a release that day is not "before", the next day is.
    ds = load_dataset(with_value(tmp_path, "release_date", {0: 20161101, 1: 20161102}), use_cache=False)
    (w,) = [w for w in ds.warnings if w.code == "listened_before_release"]
    assert w.count == 1 and w.examples == ("line 3: 1478000100",)


def test_zero_duration(tmp_path: Path) -> None:
    ds = load_dataset(with_value(tmp_path, "media_duration", {2: 0, 3: 0}), use_cache=False)
    assert ds.warning_counts() == {"zero_duration": 2}


def test_test_users_without_history() -> None:
    train = from_frame(train_frame())
    test_df = make_test_frame(3)
    test_df.loc[2, "user_id"] = 77
    ws = check_test_users(train, from_frame(test_df))
    assert len(ws) == 1 and ws[0].code == "test_user_without_history" and ws[0].count == 1
    assert ws[0].examples == ("77",)
    assert check_test_users(train, from_frame(make_test_frame(2))) == []


def test_drop_is_explicit_and_reported(tmp_path: Path) -> None:
    p = with_value(tmp_path, "ts_listen", {0: 5, 1: 6})
    kept = load_dataset(p, use_cache=False)
    assert kept.n_rows == 6 and kept.warning_counts()["bogus_timestamp"] == 2
    ds = load_dataset(p, use_cache=False, drop_bogus_timestamps=True)
    assert ds.n_rows == 4 and (ds.frame["ts_listen"] > 1_000_000_000).all()
    assert ds.warning_counts()["dropped_rows"] == 2
    with pytest.raises(ValueError, match="cannot drop"):
        load_dataset(p, drop={"nonsense"})


# ----- from_frame --------------------------------------------------------------------------------------


def test_from_frame_compact_dtypes_and_rules() -> None:
    ds = from_frame(train_frame())
    assert (
        ds.kind == "train"
        and ds.frame["user_age"].dtype == np.int8
        and ds.frame["ts_listen"].dtype == np.int64
    )
    df = train_frame()
    df.loc[2, "is_listened"] = 3
    with pytest.raises(DataError) as info:
        from_frame(df, name="mem")
    assert info.value.examples == ["row 2: 3"] and info.value.line is None and "mem" in str(info.value)


def test_from_frame_refuses_nan_and_fractions() -> None:
    df = train_frame().astype({"media_id": float})
    df.loc[1, "media_id"] = np.nan
    with pytest.raises(DataError, match="missing value"):
        from_frame(df)
    df.loc[1, "media_id"] = 2.5
    with pytest.raises(DataError, match="not an integer"):
        from_frame(df)


def test_from_frame_result_is_writable() -> None:
    ds = from_frame(train_frame())
    ds.frame.loc[0, "user_id"] = 9
    assert ds.frame.loc[0, "user_id"] == 9


def test_gzip_and_parquet_load_the_same(tmp_path: Path) -> None:
    df = train_frame()
    gz = tmp_path / "train.csv.gz"
    with gzip.open(gz, "wt") as f:
        df.to_csv(f, index=False)
    pq = tmp_path / "train.parquet"
    df.to_parquet(pq)
    a = load_dataset(gz, use_cache=False).frame
    b = load_dataset(pq, use_cache=False).frame
    pd.testing.assert_frame_equal(a, b)
    assert a["is_listened"].dtype == np.int8


def test_parquet_out_of_range_located_by_row(tmp_path: Path) -> None:
    df = train_frame()
    df.loc[3, "platform_name"] = 1000
    p = tmp_path / "train.parquet"
    df.to_parquet(p)
    err = refused(p)
    assert "value out of range" in str(err) and err.examples == ["row 3: 1000"]

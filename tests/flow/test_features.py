"""Leak-free features: a naive reference, the leak test, cold start, the training and target matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowtui.core.data.io import load_dataset
from flowtui.core.data.schema import DTYPES, TRAIN_COLUMNS
from flowtui.core.flow.features import (
    FEATURE_NAMES,
    build_features,
    fold_matrices,
    target_matrix,
    training_matrix,
)
from flowtui.core.flow.split import holdout

M = 10.0  # smoothing used throughout


def random_frame(seed: int, n: int = 120, n_users: int = 5, n_ts: int = 40) -> pd.DataFrame:
    """A small DSG17-like frame with many timestamp ties, repeated items and a mix of Flow rows."""
    rng = np.random.default_rng(seed)
    media = rng.integers(0, 12, n)
    df = pd.DataFrame(
        {
            "genre_id": media % 3,
            "ts_listen": 1_478_000_000 + rng.integers(0, n_ts, n) * 400,
            "media_id": media,
            "album_id": media // 2,
            "context_type": rng.integers(0, 3, n),
            "release_date": rng.choice([20160101, 19991231, 30000101, 19000101], n),
            "platform_name": rng.integers(0, 3, n),
            "platform_family": rng.integers(0, 3, n),
            "media_duration": rng.integers(20, 400, n),
            "listen_type": rng.integers(0, 2, n),
            "user_gender": rng.integers(0, 2, n),
            "user_id": rng.integers(0, n_users, n),
            "artist_id": media // 4,
            "user_age": rng.integers(18, 31, n),
            "is_listened": rng.integers(0, 2, n),
        }
    )
    return df[list(TRAIN_COLUMNS)].astype({c: DTYPES[c] for c in TRAIN_COLUMNS})


def naive_features(df: pd.DataFrame, m: float = M) -> pd.DataFrame:
    """Row-by-row reference of the label and count statistics (slow, obviously correct)."""
    y = df["is_listened"].to_numpy(float)
    lab = ~np.isnan(y)
    ts = df["ts_listen"].to_numpy()
    flow = df["listen_type"].to_numpy() == 1
    user = df["user_id"].to_numpy()
    rows = []
    for i in range(len(df)):
        e = ts < ts[i]
        el = e & lab

        def sm(mask: np.ndarray, prior: float) -> float:
            return (y[mask].sum() + m * prior) / (mask.sum() + m)

        prior = sm(el, 0.5)
        flow_prior = sm(el & flow, prior)
        u = e & (user == user[i])
        r = {
            "user_count": u.sum(),
            "user_rate": sm(u & lab, prior),
            "user_flow_count": (u & flow).sum(),
            "user_flow_rate": sm(u & lab & flow, flow_prior),
        }
        for name, col in (("genre", "genre_id"), ("artist", "artist_id"), ("media", "media_id")):
            same = u & (df[col].to_numpy() == df[col].iat[i])
            r[f"user_{name}_count"] = same.sum()
            r[f"user_{name}_share"] = same.sum() / max(u.sum(), 1)
            r[f"user_{name}_rate"] = sm(same & lab, r["user_rate"])
        for name, col in (
            ("media", "media_id"),
            ("artist", "artist_id"),
            ("album", "album_id"),
            ("genre", "genre_id"),
            ("context", "context_type"),
        ):
            same = e & (df[col].to_numpy() == df[col].iat[i])
            r[f"te_{name}"] = sm(same & lab, prior)
        r["media_plays"] = (e & (df["media_id"].to_numpy() == df["media_id"].iat[i])).sum()
        r["artist_plays"] = (e & (df["artist_id"].to_numpy() == df["artist_id"].iat[i])).sum()
        # Session: the user's rows sorted by time; a gap > 600 s starts a new session.
        ut = np.sort(ts[user == user[i]])
        starts = ut[np.r_[True, np.diff(ut) > 600]]
        start = starts[starts <= ts[i]].max()
        r["session_position"] = ((ut >= start) & (ut < ts[i])).sum()
        r["session_first"] = float(r["session_position"] == 0)
        rows.append(r)
    return pd.DataFrame(rows, index=df.index)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_reference(seed: int) -> None:
    df = random_frame(seed)
    # Hide some labels: they must count as plays but never as labels.
    df = df.astype({"is_listened": "float64"})
    df.loc[df.index[::7], "is_listened"] = np.nan
    got = build_features(df, smoothing=M)
    want = naive_features(df)
    assert list(got.columns) == list(FEATURE_NAMES)
    assert (got.dtypes == np.float32).all()
    for col in want.columns:
        np.testing.assert_allclose(
            got[col].to_numpy(), want[col].to_numpy(), rtol=1e-5, atol=1e-6, err_msg=col
        )


def test_time_and_raw_columns() -> None:
    df = random_frame(3, n=5)
    df["ts_listen"] = [
        0,
        3600 * 5 + 59,
        86_400 * 4,
        1_478_000_000,
        1_478_000_000,
    ]  # 2016-11-01 11:33 UTC (Tue)
    df["release_date"] = [19700101, 19700101, 19700101, 20161030, 20161101]
    f = build_features(df)
    assert f["hour"].tolist() == [0, 5, 0, 11, 11]
    assert f["weekday"].tolist() == [3, 3, 0, 1, 1]  # 1970-01-01 Thursday, 1970-01-05 Monday
    assert f["days_since_release"].tolist() == [0, 0, 4, 2, 0]
    assert f["release_year"].tolist() == [1970, 1970, 1970, 2016, 2016]
    for c in ("media_duration", "platform_name", "context_type", "user_age", "listen_type"):
        assert f[c].tolist() == df[c].astype(float).tolist()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), data=st.data())
def test_leak_label_of_row_later_or_tied_rows_does_not_change_its_features(
    seed: int, data: st.DataObject
) -> None:
    """THE LEAK TEST: flipping labels of a row, of later rows or of same-timestamp rows changes none of its features."""
    df = random_frame(seed, n=80, n_users=4, n_ts=25)
    i = data.draw(st.integers(0, len(df) - 1))
    ts = df["ts_listen"].to_numpy()
    not_earlier = np.flatnonzero(ts >= ts[i])  # the row itself, its ties and every later row
    flip = data.draw(st.lists(st.sampled_from(not_earlier.tolist()), min_size=1, max_size=len(not_earlier)))
    flip = sorted({i, *flip})
    changed = df.copy()
    changed.loc[changed.index[flip], "is_listened"] = 1 - changed["is_listened"].to_numpy()[flip]
    # Hiding a label (NaN) must not change earlier-or-tied rows either.
    hidden = df.astype({"is_listened": "float64"})
    hidden.loc[hidden.index[flip], "is_listened"] = np.nan
    base = build_features(df).iloc[i]
    pd.testing.assert_series_equal(build_features(changed).iloc[i], base)
    pd.testing.assert_series_equal(build_features(hidden).iloc[i], base)


def test_leak_test_can_fail_on_earlier_rows() -> None:
    """Guard for the leak test: flipping an EARLIER row's label does change the row's label statistics."""
    df = random_frame(5)
    ts = df["ts_listen"].to_numpy()
    i = int(np.argmax(ts))
    j = int(np.flatnonzero((ts < ts[i]) & (df["user_id"].to_numpy() == df["user_id"].iat[i]))[0])
    changed = df.copy()
    changed.loc[changed.index[j], "is_listened"] = 1 - changed["is_listened"].iat[j]
    assert build_features(changed).iloc[i]["user_rate"] != build_features(df).iloc[i]["user_rate"]


def test_cold_start_is_finite_and_uses_priors() -> None:
    df = random_frame(4, n=30)
    df["is_listened"] = 1
    new = df.iloc[[0]].copy()
    new[["user_id", "media_id", "artist_id", "album_id", "genre_id"]] = [999, 999, 999, 999, 999]
    new["ts_listen"] = df["ts_listen"].max() + 10
    X, rows = target_matrix(df, new)
    assert len(X) == 1 and np.isfinite(X.to_numpy()).all()
    # Everything earlier was listened: prior = (30 + 10 * 0.5) / (30 + 10); no user or item history.
    prior = (30 + M * 0.5) / (30 + M)
    for c in ("user_rate", "user_genre_rate", "te_media", "te_artist", "te_album", "te_genre"):
        assert X[c].iat[0] == pytest.approx(prior, rel=1e-6), c
    assert X["user_count"].iat[0] == 0 and X["media_plays"].iat[0] == 0
    assert rows["user_id"].iat[0] == 999
    # A single row, no label column, or an empty frame: never NaN, never a crash.
    one = build_features(df.iloc[[0]].drop(columns=["is_listened"]))
    assert np.isfinite(one.to_numpy()).all()
    assert one["user_rate"].iat[0] == pytest.approx(0.5)
    assert build_features(df.iloc[:0]).shape == (0, len(FEATURE_NAMES))


def test_training_matrix_flow_only_and_alignment() -> None:
    df = random_frame(6).set_axis(np.arange(1000, 1120))
    X, y, rows = training_matrix(df)
    assert len(X) == len(y) == len(rows) == len(df)
    assert X.index.equals(pd.RangeIndex(len(df))) and rows.index.equals(pd.RangeIndex(len(df)))
    np.testing.assert_array_equal(y, df["is_listened"].to_numpy())
    Xf, _, rf = training_matrix(df, flow_only=True)
    flow = df["listen_type"].to_numpy() == 1
    assert len(Xf) == flow.sum() and (rf["listen_type"] == 1).all()
    # Flow rows keep the features computed over all rows.
    np.testing.assert_array_equal(Xf.to_numpy(), X[flow].to_numpy())


def test_target_matrix_hides_target_labels() -> None:
    df = random_frame(7, n=150)
    fold = holdout(df)[0]
    X, rows = target_matrix(fold.history, fold.targets)
    assert len(X) == len(rows) == len(fold.targets)
    np.testing.assert_array_equal(rows["is_listened"], fold.targets["is_listened"])
    flipped = fold.targets.assign(is_listened=1 - fold.targets["is_listened"])
    X2, _ = target_matrix(fold.history, flipped)
    pd.testing.assert_frame_equal(X, X2)
    # Test rows: sample_id, no label.
    test = fold.targets.drop(columns=["is_listened"]).assign(sample_id=np.arange(len(fold.targets)))
    X3, rows3 = target_matrix(fold.history, test)
    pd.testing.assert_frame_equal(X, X3)
    assert rows3["sample_id"].tolist() == list(range(len(test)))
    # The target's user statistics come from that user's history.
    u = fold.targets["user_id"].iat[0]
    assert X["user_count"].iat[0] == (fold.history["user_id"] == u).sum()


def test_fold_matrices_match_the_separate_calls() -> None:
    df = random_frame(8, n=200)
    fold = holdout(df)[0]
    X, y, rows, Xt, rows_t = fold_matrices(fold.history, fold.targets, flow_only=True)
    X1, y1, rows1 = training_matrix(fold.history, flow_only=True)
    Xt1, rows_t1 = target_matrix(fold.history, fold.targets)
    pd.testing.assert_frame_equal(Xt, Xt1)
    pd.testing.assert_frame_equal(rows_t, rows_t1)
    pd.testing.assert_frame_equal(rows, rows1)
    np.testing.assert_array_equal(y, y1)
    # Unlabelled targets only add plays to the popularity counts.
    plays = ["media_plays", "artist_plays"]
    pd.testing.assert_frame_equal(X.drop(columns=plays), X1.drop(columns=plays))
    assert (X[plays].to_numpy() >= X1[plays].to_numpy()).all()


def test_real_dsg17_sample_and_test_rows_give_finite_features(dsg17_dir: Path) -> None:
    train = load_dataset(dsg17_dir / "train_sample.csv").frame
    test = load_dataset(dsg17_dir / "test.csv").frame
    fold = holdout(train)[0]
    X, _, _ = training_matrix(fold.history)
    Xt, rows_t = target_matrix(train, test)
    assert np.isfinite(X.to_numpy()).all() and np.isfinite(Xt.to_numpy()).all()
    assert len(Xt) == len(test) and rows_t["sample_id"].tolist() == test["sample_id"].tolist()
    # Listened before release, 1970 timestamps, release date 30000101: odd but finite.
    odd = build_features(load_dataset(dsg17_dir / "train_listened_before_release.csv").frame)
    assert np.isfinite(odd.to_numpy()).all() and (odd["days_since_release"] < 0).any()

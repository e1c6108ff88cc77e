"""The cluster's features are EXACTLY the single-machine ones: every column, every row, bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("dask.dataframe", reason="the cluster extra is not installed")
pytest.importorskip("distributed", reason="the cluster extra is not installed")

from flowtui.core.cluster import features as cf
from flowtui.core.cluster.executor import compute
from flowtui.core.cluster.source import ROW
from flowtui.core.data.schema import LABEL
from flowtui.core.flow.features import FEATURE_NAMES, build_features, fold_matrices
from flowtui.core.flow.split import holdout
from tests.cluster.conftest import to_dask
from tests.flow.test_features import random_frame

#: Raw columns that are not also features (those are float32 features in the cluster frame).
ID_COLUMNS = ["ts_listen", "user_id", "media_id", "album_id", "artist_id", "genre_id", "release_date"]


def gathered(session: Any, frame: Any) -> pd.DataFrame:
    out = compute(session.client, frame)
    return out.sort_values(ROW, kind="stable").reset_index(drop=True)


def assert_same_features(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Every feature column bit-equal (NaN nowhere), named on failure."""
    assert len(got) == len(want)
    differ = [
        f"{c} ({int((got[c].to_numpy() != want[c].to_numpy()).sum())} rows)"
        for c in FEATURE_NAMES
        if not np.array_equal(got[c].to_numpy(), want[c].to_numpy())
    ]
    assert differ == [], f"features differ: {', '.join(differ)}"
    assert (got[list(FEATURE_NAMES)].dtypes == np.float32).all()


def test_all_rows_equal_build_features(session: Any, synth_train: pd.DataFrame) -> None:
    """build_features(frame) == cluster_features of the same rows, in 3 input and 4 user partitions."""
    users = cf.by_user(to_dask(synth_train, 3), 4)
    got = gathered(session, cf.cluster_features(users, smoothing=10.0))
    assert_same_features(got, build_features(synth_train, smoothing=10.0))
    # The raw rows come back whole and in input order.
    for c in ID_COLUMNS:
        np.testing.assert_array_equal(got[c].to_numpy(), synth_train[c].to_numpy(), err_msg=c)
    assert (got[cf.ROLE] == 0).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_ties_across_partitions_and_hidden_labels(session: Any, seed: int) -> None:
    """Many rows share a timestamp (40 distinct over 400 rows), users and items spread over partitions,
    some labels hidden: the global priors and the item statistics still match exactly, smoothing 3."""
    df = pd.concat(
        [random_frame(seed, n=200, n_users=7), random_frame(seed + 10, n=200, n_users=7)], ignore_index=True
    )
    df = df.astype({LABEL: "float64"})
    df.loc[df.index[::9], LABEL] = np.nan
    users = cf.by_user(to_dask(df, 5), 3)
    got = gathered(session, cf.cluster_features(users, smoothing=3.0))
    assert_same_features(got, build_features(df, smoothing=3.0))


def test_prior_table_counts_strictly_earlier_rows() -> None:
    """The global prefix: per timestamp, the counts over all rows strictly before it (ties excluded)."""
    part = pd.DataFrame(
        {"ts_listen": [5, 1, 5, 3], LABEL: [1.0, 0.0, np.nan, 1.0], "listen_type": [1, 1, 0, 0]}
    )
    other = pd.DataFrame({"ts_listen": [3, 9], LABEL: [1.0, 1.0], "listen_type": [1, 1]})
    summed = pd.concat([cf._ts_counts(part), cf._ts_counts(other)]).groupby("ts_listen").sum()
    table = cf._exclusive(summed)
    assert table["ts_listen"].tolist() == [1, 3, 5, 9]
    assert table["n_labelled"].tolist() == [0, 1, 3, 4]  # ts 5: rows at 1, 3, 3 (not the ties at 5)
    assert table["n_listened"].tolist() == [0, 0, 2, 3]
    assert table["n_flow_labelled"].tolist() == [0, 1, 2, 3]
    assert table["n_flow_listened"].tolist() == [0, 0, 1, 2]


@pytest.mark.parametrize(("rounds", "contexts", "flow_only"), [(2, None, False), (1, (1, 5, 20, 23), True)])
def test_holdout_rounds_equal_fold_matrices(
    session: Any,
    synth_train: pd.DataFrame,
    rounds: int,
    contexts: tuple[int, ...] | None,
    flow_only: bool,
) -> None:
    """Each round's history and hidden targets: X, y, rows, X_targets and rows_targets of fold_matrices."""
    users = cf.by_user(to_dask(synth_train, 2), 3)
    folds = holdout(synth_train, rounds=rounds, contexts=contexts)
    assert len(folds) == rounds
    assert int(compute(session.client, cf.count_rounds(users, rounds + 3, contexts))) == len(
        holdout(synth_train, rounds=rounds + 3, contexts=contexts)
    )
    for fold in folds:
        X, y, rows, Xt, rows_t = fold_matrices(
            fold.history, fold.targets, smoothing=10.0, flow_only=flow_only
        )
        got = gathered(session, cf.fold_frame(users, fold.round, smoothing=10.0, contexts=contexts))
        hist = got[(got[cf.ROLE] == 0) & got[LABEL].notna()]
        if flow_only:
            hist = hist[hist["listen_type"] == 1]
        targets = got[got[cf.ROLE] == 1]
        assert_same_features(hist.reset_index(drop=True), X)
        assert_same_features(targets.reset_index(drop=True), Xt)
        np.testing.assert_array_equal(hist[LABEL].to_numpy().astype(np.int8), y)
        np.testing.assert_array_equal(targets[cf.TRUTH].to_numpy(), rows_t[LABEL].to_numpy())
        assert targets[LABEL].isna().all()  # the targets' labels were hidden from the features
        for c in ID_COLUMNS:
            np.testing.assert_array_equal(hist[c].to_numpy(), rows[c].to_numpy(), err_msg=c)
            np.testing.assert_array_equal(targets[c].to_numpy(), rows_t[c].to_numpy(), err_msg=c)

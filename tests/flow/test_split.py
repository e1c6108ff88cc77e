"""Holdout construction on tiny hand-built tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flowtui.core.flow.split import Fold, holdout


def table(rows: list[tuple[int, int, int, int]], start: int = 0) -> pd.DataFrame:
    """Rows of (user_id, ts_listen, listen_type, is_listened); the index starts at `start`."""
    df = pd.DataFrame(rows, columns=["user_id", "ts_listen", "listen_type", "is_listened"])
    df["media_id"] = np.arange(len(df))  # identifies each row in assertions
    return df.set_axis(np.arange(start, start + len(df)))


def media(df: pd.DataFrame) -> list[int]:
    return sorted(df["media_id"].tolist())


def test_last_flow_row_is_target_and_history_is_strictly_before() -> None:
    df = table(
        [
            (1, 10, 0, 1),  # 0
            (1, 20, 1, 0),  # 1
            (1, 30, 1, 1),  # 2  target of user 1
            (1, 40, 0, 1),  # 3  later non-Flow row: dropped from history
            (2, 5, 0, 1),  # 4  user 2 has no Flow row: all rows stay
            (2, 50, 0, 0),  # 5
            (3, 7, 1, 1),  # 6  user 3 has a single row: not a target, row stays
        ],
        start=100,
    )
    (fold,) = holdout(df)
    assert isinstance(fold, Fold) and fold.round == 0
    assert media(fold.targets) == [2]
    assert media(fold.history) == [0, 1, 4, 5, 6]
    assert fold.targets.index.tolist() == [102]  # original index kept
    assert fold.history.index.tolist() == [100, 101, 104, 105, 106]


def test_timestamp_ties_last_row_wins_and_tied_rows_leave_history() -> None:
    df = table(
        [
            (1, 10, 0, 1),  # 0
            (1, 30, 1, 1),  # 1  tied Flow row: earlier in file order
            (1, 30, 1, 0),  # 2  target (last of the tie in original order)
            (1, 30, 0, 1),  # 3  tied non-Flow row
            (1, 20, 1, 1),  # 4  earlier Flow row, out of file order
        ]
    )
    f0, f1 = holdout(df, rounds=2)
    assert media(f0.targets) == [2]
    assert media(f0.history) == [0, 4]  # no row at ts 30 leaks into the history
    # Round 1 peels off the next Flow timestamp (20), not the other tied row at 30.
    assert media(f1.targets) == [4]
    assert media(f1.history) == [0]


def test_multiple_rounds_and_min_history() -> None:
    df = table(
        [
            (1, 1, 0, 1),  # 0
            (1, 2, 1, 0),  # 1  round 2 target (1 earlier row)
            (1, 3, 1, 1),  # 2  round 1 target
            (1, 4, 1, 0),  # 3  round 0 target
            (2, 1, 1, 1),  # 4  no earlier row: never a target
            (2, 2, 0, 1),  # 5
            (2, 3, 1, 0),  # 6  round 0 target (2 earlier rows)
        ]
    )
    folds = holdout(df, rounds=4)
    assert [f.round for f in folds] == [0, 1, 2]  # no candidate is left for round 3
    assert media(folds[0].targets) == [3, 6]
    assert media(folds[0].history) == [0, 1, 2, 4, 5]
    assert media(folds[1].targets) == [2]  # user 2's Flow row at ts 1 has no earlier row
    assert media(folds[1].history) == [0, 1, 4, 5]  # user 2 stays cut at its round-0 target
    assert media(folds[2].targets) == [1]
    assert media(folds[2].history) == [0, 4, 5]
    # min_history=2: user 1's round-1 candidate (2 earlier rows) passes, round 2 (1 earlier row) does not.
    strict = holdout(df, rounds=4, min_history=2)
    assert [media(f.targets) for f in strict] == [[3, 6], [2]]
    assert media(strict[1].history) == [0, 1, 4, 5]
    # A user failing min_history keeps all rows in the history, as training rows.
    assert media(holdout(df, min_history=3)[0].history) == [0, 1, 2, 4, 5, 6]


def test_no_target_at_all_never_crashes() -> None:
    assert holdout(table([])) == []
    assert holdout(table([(1, 5, 0, 1), (2, 6, 0, 0)])) == []  # no Flow row
    assert holdout(table([(1, 5, 1, 1)])) == []  # a single row
    with pytest.raises(ValueError):
        holdout(table([(1, 5, 1, 1)]), rounds=0)


def test_targets_are_later_than_their_users_history_on_random_data() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    cols = [rng.integers(0, 50, n), rng.integers(0, 300, n), rng.integers(0, 2, n), rng.integers(0, 2, n)]
    df = table(list(zip(*cols, strict=True)))
    folds = holdout(df, rounds=3)
    assert len(folds) == 3
    seen: set[int] = set()
    for f in folds:
        t = f.targets.set_index("user_id")["ts_listen"]
        assert t.index.is_unique and (f.targets["listen_type"] == 1).all()
        h = f.history.join(t.rename("target_ts"), on="user_id")
        assert (h["target_ts"].isna() | (h["ts_listen"] < h["target_ts"])).all()
        # Earlier rounds' targets are never in a later round's history nor target again.
        assert not seen & set(f.history.index) and not seen & set(f.targets.index)
        seen |= set(f.targets.index)
        # Every target user's last Flow row in this round's data is the target.
        data = df if f.round == 0 else folds[f.round - 1].history
        last = data[data["listen_type"] == 1].groupby("user_id")["ts_listen"].max()
        assert (last.loc[t.index] == t).all()
        # ... and every user with a Flow row later than their first row is a target.
        first = data.groupby("user_id")["ts_listen"].min()
        eligible = last.index[last > first.loc[last.index]]
        assert sorted(eligible) == sorted(t.index)


def test_target_contexts_pick_the_last_flow_row_of_those_contexts() -> None:
    df = table(
        [
            (1, 10, 0, 1),  # 0
            (1, 20, 1, 0),  # 1  context 1
            (1, 30, 1, 1),  # 2  context 1: the target when only contexts {1, 5} count
            (1, 40, 1, 1),  # 3  context 7: the plain target; later than the chosen one, so out of history
            (2, 5, 0, 1),  # 4
            (2, 9, 1, 1),  # 5  context 7 only: user 2 has no target under {1, 5}
        ]
    )
    df["context_type"] = [0, 1, 1, 7, 0, 7]
    (plain,) = holdout(df)
    assert media(plain.targets) == [3, 5]
    (fold,) = holdout(df, contexts=[1, 5])
    assert media(fold.targets) == [2]
    assert media(fold.history) == [0, 1, 4, 5]
    assert holdout(df, contexts=[99]) == []

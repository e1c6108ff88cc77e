"""The warning for a train and a test file that do not belong together (issue 20 item 12)."""

from __future__ import annotations

import pandas as pd

from flowtui.core.flow.pairing import pairing_warning, user_overlap


def _frame(users: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"user_id": users, "media_id": range(len(users))})


def test_a_matching_pair_is_quiet() -> None:
    train, test = _frame([1, 1, 2, 3, 4]), _frame([1, 2, 3, 3])
    assert user_overlap(train, test).share == 1.0
    assert pairing_warning(train, test) == ""


def test_barely_overlapping_users_are_told_with_both_names() -> None:
    train, test = _frame([1, 2, 3]), _frame([1, 7, 8, 9, 9])
    overlap = user_overlap(train, test)
    assert (overlap.n_test_users, overlap.n_shared) == (4, 1)
    line = pairing_warning(train, test, train_name="a/train.csv", test_name="b/test.csv")
    assert "25%" in line and "1 of 4" in line and "a/train.csv" in line and "b/test.csv" in line
    assert "\n" not in line


def test_the_threshold_and_an_empty_test_file() -> None:
    train, test = _frame([1, 2]), _frame([1, 2, 3, 4])
    assert pairing_warning(train, test) == ""  # half known: at the threshold
    assert pairing_warning(train, test, min_shared=0.6) != ""
    assert pairing_warning(train, _frame([])) == ""

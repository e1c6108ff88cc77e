"""Do a train file and a test file belong together? A test file's predictions rest on its users' train
history, so a test file whose users the train file barely knows (another data set's) gets a warning."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Under this share of the test file's users with train rows, the pair is told as probably mismatched.
MIN_SHARED = 0.5


@dataclass(frozen=True)
class UserOverlap:
    """How many of the test file's distinct users have rows in the train file."""

    n_test_users: int
    n_shared: int

    @property
    def share(self) -> float:
        """The share of the test users the train file knows (1.0 for a test file without users)."""
        return self.n_shared / self.n_test_users if self.n_test_users else 1.0


def user_overlap(train: pd.DataFrame, test: pd.DataFrame) -> UserOverlap:
    """The test frame's distinct users, and how many of them the train frame has rows of."""
    test_users = test["user_id"].drop_duplicates().to_numpy()  # hashing: fast on millions of rows
    shared = np.isin(test_users, train["user_id"].drop_duplicates().to_numpy())
    return UserOverlap(len(test_users), int(shared.sum()))


def pairing_warning(
    train: pd.DataFrame,
    test: pd.DataFrame,
    *,
    train_name: str = "the train file",
    test_name: str = "the test file",
    min_shared: float = MIN_SHARED,
) -> str:
    """One line when under `min_shared` of `test`'s users have rows in `train` (the files probably do not
    belong together: a submission would be a guess for the others); empty otherwise."""
    overlap = user_overlap(train, test)
    if overlap.share >= min_shared:
        return ""
    return (
        f"only {overlap.share:.0%} of the users of {test_name} ({overlap.n_shared:,} of "
        f"{overlap.n_test_users:,}) have rows in {train_name}: the two files may not belong together"
    )

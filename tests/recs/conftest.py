"""Tiny planted data for the recommender tests, and quick parameters for every registered recommender."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flowtui.core import registry
from flowtui.core.recs.recommender import RecommenderBase

#: Small, fast settings per recommender (the rest are the registered defaults).
FAST: dict[str, dict[str, object]] = {
    "rbm": {"n_components": 16, "n_iter": 8, "exposure_n_components": 16, "exposure_n_iter": 8,
            "batch_size": 16, "device": "cpu"},
    "dbn": {"layers": [16, 8], "n_iter": 6, "exposure_n_iter": 6, "batch_size": 16, "device": "cpu"},
    "ease": {"l2": 10.0},
    # the default regularization (50, tuned on thousands of users) flattens 8 factors on 150 users
    "als": {"factors": 8, "iterations": 6, "num_threads": 1, "regularization": 1.0},
    "item_knn": {"k": 20, "num_threads": 1},
}  # fmt: skip


def build(name: str, **over: object) -> RecommenderBase:
    """A fresh recommender `name` with the fast settings (and `over`)."""
    return registry.get_recommender(name).build({**FAST.get(name, {}), **over})


def block_frame(
    n_users: int = 150,
    n_blocks: int = 3,
    per_block: int = 40,
    plays: int = 20,
    own: float = 0.85,
    p_in: float = 0.9,
    p_out: float = 0.15,
    seed: int = 0,
    implicit: bool = False,
) -> pd.DataFrame:
    """A DSG17-like log with planted tastes: user u belongs to group u % n_blocks and plays `plays` distinct
    items, a share `own` of them from its group's block of `per_block` items; it listens to its own block's
    items with probability `p_in`, to others with `p_out` (every row listened when `implicit`).

    Item i (media 1000 + i) lies in block i // per_block, is by artist 500 + i // 5 (each artist inside one
    block) and of genre block + 1."""
    rng = np.random.default_rng(seed)
    n_items = n_blocks * per_block
    users, items = [], []
    for user in range(n_users):
        g = user % n_blocks
        n_own = round(plays * own)
        mine = rng.choice(per_block, n_own, replace=False) + g * per_block
        others = np.setdiff1d(np.arange(n_items), np.arange(g * per_block, (g + 1) * per_block))
        theirs = rng.choice(others, plays - n_own, replace=False)
        chosen = np.r_[mine, theirs]
        users.append(np.full(len(chosen), user))
        items.append(chosen)
    u = np.concatenate(users)
    i = np.concatenate(items)
    block = i // per_block
    inside = block == u % n_blocks
    y = np.ones(len(u), np.int8) if implicit else (rng.random(len(u)) < np.where(inside, p_in, p_out))
    n = len(u)
    return pd.DataFrame(
        {
            "genre_id": (block + 1).astype(np.int32),
            "ts_listen": (1_480_000_000 + rng.integers(0, 30 * 86_400, n)).astype(np.int64),
            "media_id": (i + 1000).astype(np.int32),
            "album_id": (i // 5).astype(np.int32),
            "context_type": np.zeros(n, np.int16),
            "release_date": np.full(n, 20150101, np.int32),
            "platform_name": np.zeros(n, np.int8),
            "platform_family": np.zeros(n, np.int8),
            "media_duration": np.full(n, 220, np.int32),
            "listen_type": np.ones(n, np.int8),
            "user_gender": (u % 2).astype(np.int8),
            "user_id": u.astype(np.int32),
            "artist_id": (i // 5 + 500).astype(np.int32),
            "user_age": (18 + u % 13).astype(np.int8),
            "is_listened": y.astype(np.int8),
        }
    )


@pytest.fixture(scope="session")
def blocks() -> pd.DataFrame:
    return block_frame()


@pytest.fixture(scope="session")
def blocks_implicit() -> pd.DataFrame:
    return block_frame(implicit=True, seed=1)

"""The recommenders' leaderboard on the same held-out splits, naming the data it was computed on; kept
beside the models by `board_file`."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from flowtui.core import events as ev
from flowtui.core.errors import ParamError
from flowtui.core.modelfiles import fingerprint as fingerprint_of
from flowtui.core.recs import evaluation
from flowtui.core.recs.evaluation import Holdout, Leaderboard
from flowtui.core.recs.interactions import MAX_ITEMS


# -- evaluate ----------------------------------------------------------------------------------------
def evaluate(
    frame: pd.DataFrame,
    names: Sequence[str],
    *,
    k: int = 10,
    seeds: int = 3,
    seed: int = 0,
    fraction: float = 0.2,
    how: Holdout = "random",
    preset: str = "full",
    params: Mapping[str, Mapping[str, object]] | None = None,
    validation: bool = False,
    implicit: bool | None = None,
    max_items: int = MAX_ITEMS,
    source: str | None = None,
    fingerprint: str | None = None,
    stamp: bool = False,
    users: int | None = None,
    on_event: ev.EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> Leaderboard:
    """The leaderboard of `names` on the same held-out splits (`evaluation.leaderboard`), its setup naming
    the data (`source`, rows, fingerprint) and, with `stamp`, when it was computed. With `users`, on a
    sample of that many users drawn with `seed` (every row of each; the fingerprint is the whole data's).
    Keep it beside the models with `save_leaderboard`; `load_leaderboard` reads it back for the same data."""
    whole = frame
    if users is not None:
        frame = sample_users(frame, users, seed)
    board = evaluation.leaderboard(
        frame,
        list(names),
        k=k,
        seeds=seeds,
        seed=seed,
        fraction=fraction,
        how=how,
        preset=preset,
        params=params,
        validation=validation,
        implicit=implicit,
        max_items=max_items,
        on_event=on_event,
        cancel=cancel,
    )
    board.setup["data"] = {
        "source": source,
        "rows": len(whole),
        "fingerprint": fingerprint or fingerprint_of(whole),
    }
    if users is not None:
        board.setup["sample"] = {"users": int(frame["user_id"].nunique()), "rows": len(frame), "seed": seed}
    if stamp:
        board.setup["computed"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return board


def sample_users(frame: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """Every row of `n` users drawn at random with `seed` (all of them when the data has fewer)."""
    if n < 1:
        raise ParamError(f"users must be an integer >= 1, got {n}")
    ids = np.unique(frame["user_id"].to_numpy())
    if n >= len(ids):
        return frame
    chosen = np.random.default_rng(seed).choice(ids, size=n, replace=False)
    return frame[frame["user_id"].isin(chosen)].reset_index(drop=True)

"""Honest holdout that mimics the DSG17 test: each user's last Flow row is held out.

Round 0 holds out, for every user, the last Flow row (`listen_type == 1`; the latest `ts_listen`, ties broken by
original row order: the later row wins). Its history is that user's rows with a timestamp STRICTLY before the
target's, plus every row of every other user. Rows of the target user that share the target's timestamp (or come
later) are dropped from the history, never used: at the real test the user's whole history is earlier than the
test row, and a simultaneous row could leak the outcome. Round r repeats this on round r-1's history (peels the
next-to-last Flow timestamp off, and so on), so later targets never appear in an earlier round's history.

A candidate with fewer than `min_history` of the user's rows strictly before it is not a target; that user then
keeps all of their remaining rows in the history (as training rows) and has no target in later rounds either.
Users without a Flow row never become targets. Feature code uses other users' rows only when they are earlier in
time, so keeping later rows of other users in the history does not leak.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Fold:
    """One holdout round: train on `history`, score `targets` (one row per target user, with labels)."""

    history: pd.DataFrame
    targets: pd.DataFrame
    round: int


@dataclass(frozen=True)
class _Candidates:
    """The possible targets: per (user, timestamp) group holding a Flow row, its last Flow row."""

    pos: np.ndarray  # positions in the frame
    ts: np.ndarray
    user: np.ndarray
    rank: np.ndarray  # from the end within each user: 0 = the user's latest Flow timestamp
    n_earlier: np.ndarray  # the user's rows with a strictly earlier timestamp


def _candidates(user: np.ndarray, ts: np.ndarray, flow: np.ndarray) -> _Candidates | None:
    """The candidates of `holdout`, in ascending (user, ts) order; None without any Flow row."""
    n = user.size
    pos = np.arange(n, dtype=np.int64)
    # Sort by (user, ts, original position); then each (user, ts) tie group is contiguous.
    order = np.lexsort((pos, ts, user))
    u_s, t_s, f_s = user[order], ts[order], flow[order]
    new_user = np.empty(n, dtype=bool)
    new_user[0] = True
    new_user[1:] = u_s[1:] != u_s[:-1]
    new_group = new_user.copy()
    new_group[1:] |= t_s[1:] != t_s[:-1]
    idx = np.arange(n, dtype=np.int64)
    user_start = np.maximum.accumulate(np.where(new_user, idx, 0))
    group_start = np.maximum.accumulate(np.where(new_group, idx, 0))
    n_earlier = group_start - user_start  # the user's rows with a strictly earlier timestamp

    flow_idx = np.flatnonzero(f_s)
    if flow_idx.size == 0:
        return None
    fg = group_start[flow_idx]
    last_in_group = np.empty(flow_idx.size, dtype=bool)
    last_in_group[-1] = True
    last_in_group[:-1] = fg[1:] != fg[:-1]
    cand = flow_idx[last_in_group]  # sorted positions, ascending (user, ts)
    cand_user = u_s[cand]
    is_last_of_user = np.empty(cand.size, dtype=bool)
    is_last_of_user[-1] = True
    is_last_of_user[:-1] = cand_user[1:] != cand_user[:-1]
    cidx = np.arange(cand.size, dtype=np.int64)
    # Index of the user's last candidate, filled backwards.
    last_pos = np.minimum.accumulate(np.where(is_last_of_user, cidx, cand.size)[::-1])[::-1]
    return _Candidates(order[cand], t_s[cand], cand_user, last_pos - cidx, n_earlier[cand])


def holdout(
    frame: pd.DataFrame,
    *,
    rounds: int = 1,
    min_history: int = 1,
    contexts: Collection[int] | None = None,
) -> list[Fold]:
    """Per-user last-Flow-row holdout folds, round 0 first; rounds without any target are left out.

    Both `history` and `targets` keep `frame`'s index and original row order. An empty list means that no user
    has a Flow row with at least `min_history` earlier rows. With `contexts`, only Flow rows of those
    `context_type`s can be targets (the real test holds contexts 1, 5, 20 and 23 only); the user's later rows,
    whatever their context, still leave the history.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    if len(frame) == 0:
        return []
    user = frame["user_id"].to_numpy(np.int64)
    ts = frame["ts_listen"].to_numpy(np.int64)
    flow = frame["listen_type"].to_numpy() == 1
    if contexts is not None:
        flow &= np.isin(frame["context_type"].to_numpy(), np.asarray(list(contexts), dtype=np.int64))
    cand = _candidates(user, ts, flow)
    if cand is None:
        return []
    # Failing min_history at rank r means failing at every larger rank (fewer earlier rows), so the valid
    # ranks of a user are 0..R_u-1.
    ok = cand.n_earlier >= min_history

    folds: list[Fold] = []
    # cut_ts per user (by position in `uniq`): history keeps the user's rows with ts < cut.
    uniq, inv = np.unique(user, return_inverse=True)
    cut = np.full(uniq.size, np.iinfo(np.int64).max, dtype=np.int64)
    cand_uid = np.searchsorted(uniq, cand.user)
    for r in range(rounds):
        sel = (cand.rank == r) & ok
        if not sel.any():
            break
        cut[cand_uid[sel]] = cand.ts[sel]
        target_pos = np.sort(cand.pos[sel])
        keep = ts < cut[inv]
        folds.append(Fold(history=frame[keep], targets=frame.iloc[target_pos], round=r))
    return folds

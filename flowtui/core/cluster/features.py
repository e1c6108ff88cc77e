"""The leak-free features of `flow/features.py` on a Dask cluster, partition-wise and EXACTLY equal.

`build_features` reads four kinds of statistics; each is made exact on partitions as follows.

1. Row-wise columns (hour, weekday, release, the raw columns): any partition.
2. Per-user statistics (user counts and rates, Flow rates, session position) and user x item statistics
   (user x genre/artist/media counts, shares, rates): their keys all contain the user, so after ONE
   shuffle of the rows on `user_id` (each partition holds whole users, sorted back into input order by
   `_row`) the single-machine code (`user_features` of flow/features.py) run on a partition sees exactly
   the rows it sees on one machine: same counts, same floats.
3. Population priors (the overall and Flow listen rates of every STRICTLY earlier row, all users): a
   global prefix over time. Each partition counts (labelled, listened, Flow labelled, Flow listened) per
   timestamp; Dask's groupby sums those per-timestamp counts over partitions (a tree reduction, no
   shuffle of rows) into one table of the distinct timestamps, whose exclusive cumulative sum is, for each
   timestamp, the counts over all rows strictly before it: the very integers the single machine's
   cumulative sum gives. The table (one row per distinct second: 2.6M rows for a month at most, however
   many rows) is handed to every user partition as a task argument (worker to worker, never through the
   caller), and the priors are computed from it in float32 with the same `smooth` as on one machine.
4. Item statistics (target encodings of media, artist, album, genre, context; media and artist plays):
   keyed by the item alone, so for each of the five keys a NARROW frame (_row, user_id, key, timestamp,
   label, prior: about 40 bytes a row) is shuffled on the key, `Keyed` runs per partition (whole keys,
   any row order: the statistics depend only on (key, timestamp) groups), and the result (_row, user_id,
   one or two float32 columns) is shuffled back on `user_id` with the user partitions' count, which puts
   each row in the same partition as its user block (the same hash of the same column). The partitions
   are then joined on `_row`, checked row for row.

Shuffles: one of the raw rows on user, five narrow ones to the item keys and five narrow ones back.
`cluster_features(rows)` equals `build_features(frame)` of the same rows; `fold_frame(users, round)` equals
`fold_matrices` (history plus the round's targets with their labels hidden), row for row after sorting
by `_row`. The equality is tested in tests/cluster/test_cluster_features.py.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import pandas as pd

from flowtui.core.cluster.lazy import DaskFrame, dask_dataframe
from flowtui.core.cluster.source import ROW, portable_errors
from flowtui.core.data.schema import LABEL
from flowtui.core.flow import split
from flowtui.core.flow.features import (
    BASE_PRIOR,
    FEATURE_NAMES,
    Keyed,
    dense_codes,
    label_values,
    row_features,
    smooth,
    user_features,
)

__all__ = [
    "ITEM_KEYS",
    "ROLE",
    "TRUTH",
    "by_user",
    "cluster_features",
    "count_rounds",
    "feature_frame",
    "fold_frame",
    "frame_meta",
]

ROLE = "_role"  # 0: a history (training) row, 1: a held-out target (label hidden from the features)
TRUTH = "_y"  # the row's true label (float; kept for targets, whose LABEL is NaN in the features)
PRIOR = "_prior"  # the population prior of the row's timestamp (float32), carried to the item blocks
#: Item statistics: name -> key column; `te_NAME` for each, `NAME_plays` for media and artist.
ITEM_KEYS: Mapping[str, str] = {
    "media": "media_id",
    "artist": "artist_id",
    "album": "album_id",
    "genre": "genre_id",
    "context": "context_type",
}
_PLAYS = ("media", "artist")
_ITEM_FEATURES = tuple(f"te_{n}" for n in ITEM_KEYS) + tuple(f"{n}_plays" for n in _PLAYS)
_USER_FEATURES = tuple(f for f in FEATURE_NAMES if f not in _ITEM_FEATURES)
_COUNTS = ("n_labelled", "n_listened", "n_flow_labelled", "n_flow_listened")
_META = (ROW, ROLE, TRUTH)


# ---------------------------------------------------------------------------------------------------------
# Frames: empty metas of every stage


def _raw_part_meta() -> pd.DataFrame:
    """The rows after the user shuffle: train columns (label as float, NaN = hidden) and `_row`, role, truth."""
    from flowtui.core.cluster.source import raw_meta

    extra: dict[str, np.ndarray] = {
        ROW: np.empty(0, np.int64),
        ROLE: np.empty(0, np.int8),
        TRUTH: np.empty(0, np.float64),
    }
    return raw_meta().astype({LABEL: np.float64}).assign(**extra)


def frame_meta() -> pd.DataFrame:
    """The columns of a feature frame: train columns, `_row`, `_role`, `_y`, then `FEATURE_NAMES` (float32).

    Seven raw columns are features under their own names (listen_type, context_type, platform_name,
    platform_family, media_duration, user_age, user_gender): the frame holds them once, as the float32
    feature (the same values)."""
    return _raw_part_meta().assign(**{f: np.empty(0, np.float32) for f in FEATURE_NAMES})


def _user_block_meta() -> pd.DataFrame:
    base = _raw_part_meta().assign(**{PRIOR: np.empty(0, np.float32)})
    return base.assign(**{f: np.empty(0, np.float32) for f in _USER_FEATURES})


def _item_meta(name: str) -> pd.DataFrame:
    cols: dict[str, np.ndarray] = {ROW: np.empty(0, np.int64), "user_id": np.empty(0, np.int32)}
    cols[f"te_{name}"] = np.empty(0, np.float32)
    if name in _PLAYS:
        cols[f"{name}_plays"] = np.empty(0, np.float32)
    return pd.DataFrame(cols)


# ---------------------------------------------------------------------------------------------------------
# Stage 1: rows by user, and the holdout round of each user partition


def _sort_rows(part: pd.DataFrame) -> pd.DataFrame:
    return part.sort_values(ROW, kind="stable").reset_index(drop=True)


def by_user(rows: DaskFrame, npartitions: int) -> DaskFrame:
    """`rows` (with `_row`) shuffled on `user_id` into `npartitions` partitions of whole users, each in
    input order."""
    shuffled = rows.shuffle(on="user_id", npartitions=npartitions)
    return shuffled.map_partitions(_sort_rows, meta=rows._meta)


def _all_rows(part: pd.DataFrame) -> pd.DataFrame:
    label = part[LABEL].to_numpy(np.float64, na_value=np.nan)
    return part.assign(**{LABEL: label, ROLE: np.zeros(len(part), np.int8), TRUTH: label})


def _round_rows(part: pd.DataFrame, round_: int, contexts: tuple[int, ...] | None) -> pd.DataFrame:
    """The rows `fold_matrices` sees in holdout round `round_` for these users: the round's history, then
    its targets with the label hidden (NaN) and kept in `_y`; in input order."""
    folds = split.holdout(part, rounds=round_ + 1, contexts=contexts)
    if len(folds) > round_:
        history, targets = folds[round_].history, folds[round_].targets
    else:  # no target of these users in this round: their history stays that of their last round
        history, targets = (folds[-1].history if folds else part), part.iloc[:0]
    hist = _all_rows(history)
    truth = targets[LABEL].to_numpy(np.float64, na_value=np.nan)
    cols: dict[str, np.ndarray] = {
        LABEL: np.full(len(targets), np.nan),
        ROLE: np.ones(len(targets), np.int8),
        TRUTH: truth,
    }
    hidden = targets.assign(**cols)
    return _sort_rows(pd.concat([hist, hidden], ignore_index=True))


def _n_rounds(part: pd.DataFrame, rounds: int, contexts: tuple[int, ...] | None) -> pd.Series:
    return pd.Series([len(split.holdout(part, rounds=rounds, contexts=contexts))], dtype=np.int64)


def count_rounds(users: DaskFrame, rounds: int, contexts: Collection[int] | None) -> Any:
    """A Dask scalar: the number of holdout rounds with at least one target (at most `rounds`)."""
    ctx = tuple(contexts) if contexts is not None else None
    per_part = users.map_partitions(_n_rounds, rounds, ctx, meta=pd.Series([], dtype=np.int64))
    return per_part.max()


# ---------------------------------------------------------------------------------------------------------
# Stage 2: the population priors, a global prefix over time


def _ts_counts(part: pd.DataFrame) -> pd.DataFrame:
    """Per distinct timestamp of the partition: labelled, listened, Flow labelled, Flow listened rows."""
    ts = part["ts_listen"].to_numpy(np.int64)
    label = part[LABEL].to_numpy(np.float64, na_value=np.nan)
    labelled = ~np.isnan(label)
    listened = labelled & (label == 1)
    flow = part["listen_type"].to_numpy() == 1
    uniq, inv = np.unique(ts, return_inverse=True)
    cols = {"ts_listen": uniq}
    for name, v in zip(_COUNTS, (labelled, listened, labelled & flow, listened & flow), strict=True):
        cols[name] = np.bincount(inv, weights=v, minlength=uniq.size).astype(np.int64)
    return pd.DataFrame(cols)


def _exclusive(table: pd.DataFrame) -> pd.DataFrame:
    """The per-timestamp counts -> for each timestamp, the counts over all STRICTLY earlier timestamps."""
    t = table.reset_index().sort_values("ts_listen", kind="stable")
    out = {"ts_listen": t["ts_listen"].to_numpy(np.int64)}
    for c in _COUNTS:
        v = t[c].to_numpy(np.int64)
        out[c] = np.cumsum(v) - v
    return pd.DataFrame(out)


def prior_table(fold: DaskFrame) -> Any:
    """One small frame (a row per distinct timestamp) of the counts over every strictly earlier row, as a
    Delayed handed to the user blocks (computed and kept on the workers)."""
    counts = fold.map_partitions(
        _ts_counts,
        meta=pd.DataFrame(
            {"ts_listen": np.empty(0, np.int64), **{c: np.empty(0, np.int64) for c in _COUNTS}}
        ),
    )
    summed = counts.groupby("ts_listen").sum(split_out=1)
    meta = pd.DataFrame({"ts_listen": np.empty(0, np.int64), **{c: np.empty(0, np.int64) for c in _COUNTS}})
    table = summed.map_partitions(_exclusive, meta=meta)
    (out,) = table.to_delayed()
    return out


# ---------------------------------------------------------------------------------------------------------
# Stage 3: per-user and user x item statistics, on whole users


@portable_errors
def _user_block(part: pd.DataFrame, table: pd.DataFrame, smoothing: float) -> pd.DataFrame:
    """`build_features` of the user columns on a partition of whole users, with the global priors."""
    n = len(part)
    ts = part["ts_listen"].to_numpy(np.int64)
    vals = label_values(part)
    out: dict[str, np.ndarray] = {}

    def put(name: str, value: np.ndarray) -> None:
        col = np.empty(n, dtype=np.float32)
        col[:] = value
        out[name] = col

    row_features(put, part, ts)

    # Dense timestamp ranks of the partition: only their order matters to `Keyed`.
    uniq_ts, ts_rank = np.unique(ts, return_inverse=True)
    ts_rank = ts_rank.astype(np.int64)
    n_ts = max(int(uniq_ts.size), 1)

    # Population priors from the global table: the counts of every strictly earlier row, all users.
    table_ts = table["ts_listen"].to_numpy(np.int64)
    at = np.searchsorted(table_ts, ts)
    if n and (at.max() >= table_ts.size or not np.array_equal(table_ts[at], ts)):
        raise RuntimeError("the prior table lacks timestamps of this partition (built from other rows?)")
    g = np.empty((n, 4), dtype=np.float32, order="F")
    for j, c in enumerate(_COUNTS):
        g[:, j] = table[c].to_numpy(np.int64)[at]
    prior = smooth(g[:, 1], g[:, 0], BASE_PRIOR, smoothing)
    flow_prior = smooth(g[:, 3], g[:, 2], prior, smoothing)
    del g

    items = {name: dense_codes(part[f"{name}_id"].to_numpy()) for name in ("genre", "artist", "media")}
    user_features(put, part, ts, ts_rank, n_ts, vals, prior, flow_prior, smoothing, items)
    del flow_prior, items

    base = part.reset_index(drop=True)
    result = base.assign(
        **{PRIOR: prior.astype(np.float32, copy=False)}, **{f: out[f] for f in _USER_FEATURES}
    )
    return result


# ---------------------------------------------------------------------------------------------------------
# Stage 4: item statistics, on whole items


def _item_block(part: pd.DataFrame, name: str, smoothing: float) -> pd.DataFrame:
    """Target encoding (and plays) of item key `name` on a partition holding whole keys."""
    n = len(part)
    ts = part["ts_listen"].to_numpy(np.int64)
    label = part[LABEL].to_numpy(np.float64, na_value=np.nan)
    labelled = ~np.isnan(label)
    vals = np.empty((n, 3), dtype=np.int8, order="F")
    vals[:, 0] = 1
    vals[:, 1] = labelled
    vals[:, 2] = labelled & (label == 1)
    uniq_ts, ts_rank = np.unique(ts, return_inverse=True)
    codes, n_codes = dense_codes(part[ITEM_KEYS[name]].to_numpy())
    s = Keyed(codes, n_codes, ts_rank.astype(np.int64), max(int(uniq_ts.size), 1)).before(vals)
    prior = part[PRIOR].to_numpy(np.float32)
    cols: dict[str, np.ndarray] = {
        ROW: part[ROW].to_numpy(np.int64),
        "user_id": part["user_id"].to_numpy(),
        f"te_{name}": np.asarray(smooth(s[:, 2], s[:, 1], prior, smoothing), dtype=np.float32),
    }
    if name in _PLAYS:
        cols[f"{name}_plays"] = np.ascontiguousarray(s[:, 0])
    return pd.DataFrame(cols)


def _item_stats(users: DaskFrame, name: str, smoothing: float) -> DaskFrame:
    """The item statistics of key `name`, back in the partitions of `users` (same users, any order)."""
    key = ITEM_KEYS[name]
    narrow = users[[ROW, "user_id", key, "ts_listen", LABEL, PRIOR]]
    stats = narrow.shuffle(on=key, npartitions=users.npartitions).map_partitions(
        _item_block, name, smoothing, meta=_item_meta(name)
    )
    return stats.shuffle(on="user_id", npartitions=users.npartitions)


def _assemble(block: pd.DataFrame, *items: pd.DataFrame) -> pd.DataFrame:
    """The user block with the item columns joined on `_row` (each row found exactly once, or an error)."""
    rows = pd.Index(block[ROW].to_numpy(np.int64))
    cols: dict[str, np.ndarray] = {}
    for item in items:
        at = pd.Index(item[ROW].to_numpy(np.int64)).get_indexer(rows)
        if len(item) != len(block) or (at < 0).any():
            raise RuntimeError("item statistics are not aligned with the user partitions (hash mismatch)")
        for c in item.columns:
            if c not in (ROW, "user_id"):
                cols[c] = item[c].to_numpy(np.float32)[at]
    out = block.drop(columns=[PRIOR]).assign(**cols)
    return out[list(frame_meta().columns)]


# ---------------------------------------------------------------------------------------------------------
# Entry points


def feature_frame(rows: DaskFrame, *, smoothing: float = 10.0) -> DaskFrame:
    """Features of `rows` (partitions of whole users, with `_row`, `_role`, `_y` and LABEL as float, NaN
    where hidden): `frame_meta()` columns, partitioned by user. Nothing is computed yet."""
    table = prior_table(rows)
    block = rows.map_partitions(_user_block, table, smoothing, meta=_user_block_meta())
    items = [_item_stats(block, name, smoothing) for name in ITEM_KEYS]
    dd = dask_dataframe()
    return dd.map_partitions(_assemble, block, *items, meta=frame_meta(), align_dataframes=False)


def cluster_features(users: DaskFrame, *, smoothing: float = 10.0) -> DaskFrame:
    """`build_features` of every row (partitions from `by_user`): the feature frame with role 0 everywhere."""
    meta = _raw_part_meta()
    return feature_frame(users.map_partitions(_all_rows, meta=meta), smoothing=smoothing)


def fold_frame(
    users: DaskFrame, round_: int, *, smoothing: float = 10.0, contexts: Collection[int] | None = None
) -> DaskFrame:
    """`fold_matrices` of holdout round `round_` (partitions from `by_user`): history rows (role 0) and
    the round's targets (role 1, label hidden, truth in `_y`) with their features."""
    ctx = tuple(contexts) if contexts is not None else None
    rows = users.map_partitions(_round_rows, round_, ctx, meta=_raw_part_meta())
    return feature_frame(rows, smoothing=smoothing)

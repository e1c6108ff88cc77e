"""Leak-free features for the Flow-track question, vectorised with numpy sorts and cumulative sums.

Every statistic of a row comes only from rows with a STRICTLY EARLIER `ts_listen`: the same user's rows for user
statistics, everyone's rows for item statistics (target encodings, popularity). Rows with the same timestamp as
the row never count, and rows whose `is_listened` is NaN (held-out targets, test rows) or missing never
contribute to a label-based statistic (they still count as plays). Cold start falls back to population priors,
which are themselves computed from earlier rows, so no feature is ever NaN.

How: for a key (user, user x genre, media, ...) sort rows by (key, timestamp); a cumulative sum minus the row's
own value is the sum over the rows before it; taking, for each (key, timestamp) group, that exclusive sum at the
group's first row excludes ties.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from flowtui.core.data.schema import LABEL, SECONDS_PER_DAY, SESSION_GAP
from flowtui.core.run_config import FeatureSettings

__all__ = [
    "BASE_PRIOR",
    "FEATURE_NAMES",
    "FeatureSettings",
    "Keyed",
    "build_features",
    "dense_codes",
    "fold_matrices",
    "label_values",
    "row_features",
    "smooth",
    "target_matrix",
    "training_matrix",
    "user_features",
]

#: Feature columns produced by `build_features`, in order.
FEATURE_NAMES: tuple[str, ...] = (
    "hour",
    "weekday",
    "days_since_release",
    "release_year",
    "media_duration",
    "platform_name",
    "platform_family",
    "context_type",
    "listen_type",
    "user_age",
    "user_gender",
    "session_first",
    "session_position",
    "user_count",
    "user_rate",
    "user_flow_count",
    "user_flow_rate",
    "user_genre_count",
    "user_genre_share",
    "user_genre_rate",
    "user_artist_count",
    "user_artist_share",
    "user_artist_rate",
    "user_media_count",
    "user_media_share",
    "user_media_rate",
    "te_media",
    "te_artist",
    "te_album",
    "te_genre",
    "te_context",
    "media_plays",
    "artist_plays",
)

_RAW = (
    "media_duration",
    "platform_name",
    "platform_family",
    "context_type",
    "listen_type",
    "user_age",
    "user_gender",
)
#: Prior listen rate before any labelled row is seen (it weighs `smoothing` pseudo-rows).
BASE_PRIOR = 0.5


class Keyed:
    """Exclusive (strictly earlier timestamp) running sums of values per key (the cluster's features use it
    on partitions of whole keys).

    `key` holds non-negative int codes below `n_keys`; `ts_rank` dense timestamp ranks below `n_ts`.
    """

    def __init__(
        self, key: np.ndarray, n_keys: int, ts_rank: np.ndarray, n_ts: int, order: np.ndarray | None = None
    ) -> None:
        n = key.size
        comp = key.astype(np.int64) * np.int64(n_ts) + ts_rank
        # The order inside a (key, ts) group does not matter, so an unstable sort is fine.
        self.order = np.argsort(comp) if order is None else order
        comp_s = comp[self.order]
        del comp
        key_s = key[self.order]
        new_group = np.empty(n, dtype=bool)
        new_key = np.empty(n, dtype=bool)
        if n:
            new_group[0] = new_key[0] = True
            np.not_equal(comp_s[1:], comp_s[:-1], out=new_group[1:])
            np.not_equal(key_s[1:], key_s[:-1], out=new_key[1:])
        del comp_s, key_s
        idx = np.arange(n, dtype=np.int64)
        self.group_id = np.cumsum(new_group) - 1
        self.group_start = np.flatnonzero(new_group)
        self.key_start_row = np.maximum.accumulate(np.where(new_key, idx, 0)) if n else idx
        self.key_start = self.key_start_row[self.group_start]

    def before(self, values: np.ndarray) -> np.ndarray:
        """Per row (input order) and column of 0/1 `values` (n, k), the sum over its key's earlier-timestamp rows.

        Returns float32 (n, k) in Fortran order. Works column by column: numpy gathers and scatters 1-D
        arrays far faster than rows of a 2-D one.
        """
        out = np.empty(values.shape, dtype=np.float32, order="F")
        for j in range(values.shape[1]):
            v = np.take(values[:, j], self.order)
            excl = np.cumsum(v, dtype=np.int32)
            excl -= v
            per_group = excl[self.group_start] - excl[self.key_start]
            out[self.order, j] = np.take(per_group, self.group_id)
        return out


def dense_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense int64 codes of `values` and their number."""
    codes, uniq = pd.factorize(values)
    return codes.astype(np.int64), max(len(uniq), 1)


def _pair(a: np.ndarray, n_a: int, b: np.ndarray, n_b: int, n_ts: int) -> tuple[np.ndarray, int]:
    """Int codes of the pair (a, b) small enough to combine with timestamp ranks in an int64."""
    if n_a * n_b * n_ts < 2**62:
        return a * np.int64(n_b) + b, n_a * n_b
    return dense_codes(a * np.int64(n_b) + b)


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), vectorised."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return np.asarray(era * 146097 + doe - 719468)


def smooth(s: np.ndarray, c: np.ndarray, prior: np.ndarray | float, m: float) -> np.ndarray:
    """The rate `s / c` smoothed toward `prior` with the weight of `m` pseudo-rows."""
    return (s + m * prior) / (c + m)


def build_features(frame: pd.DataFrame, *, smoothing: float = 10.0) -> pd.DataFrame:
    """One float32 row of `FEATURE_NAMES` per row of `frame` (same index), from strictly earlier rows only."""
    n = len(frame)
    ts = frame["ts_listen"].to_numpy(np.int64)
    vals = label_values(frame)
    X = np.empty((n, len(FEATURE_NAMES)), dtype=np.float32, order="F")
    col = {f: j for j, f in enumerate(FEATURE_NAMES)}

    def put(name: str, value: np.ndarray) -> None:
        X[:, col[name]] = value

    row_features(put, frame, ts)

    # Dense timestamp ranks from one sort by time, reused for the population priors.
    ts_order = np.argsort(ts, kind="stable")
    ts_s = ts[ts_order]
    new_ts = np.empty(n, dtype=bool)
    if n:
        new_ts[0] = True
        np.not_equal(ts_s[1:], ts_s[:-1], out=new_ts[1:])
    ts_rank = np.empty(n, dtype=np.int64)
    ts_rank[ts_order] = np.cumsum(new_ts) - 1
    n_ts = max(int(new_ts.sum()), 1)
    del ts_s, new_ts

    # Population priors from strictly earlier rows: overall and on Flow.
    g = Keyed(np.zeros(n, dtype=np.int64), 1, ts_rank, n_ts, order=ts_order).before(vals[:, [1, 2, 4, 5]])
    prior = smooth(g[:, 1], g[:, 0], BASE_PRIOR, smoothing)
    flow_prior = smooth(g[:, 3], g[:, 2], prior, smoothing)
    del g, ts_order

    items = {
        "genre": dense_codes(frame["genre_id"].to_numpy()),
        "artist": dense_codes(frame["artist_id"].to_numpy()),
        "media": dense_codes(frame["media_id"].to_numpy()),
        "album": dense_codes(frame["album_id"].to_numpy()),
        "context": dense_codes(frame["context_type"].to_numpy()),
    }
    user_features(put, frame, ts, ts_rank, n_ts, vals, prior, flow_prior, smoothing, items)
    del flow_prior

    # Item target encodings and popularity.
    for name in ("media", "artist", "album", "genre", "context"):
        s = Keyed(*items[name], ts_rank, n_ts).before(vals[:, :3])
        put(f"te_{name}", smooth(s[:, 2], s[:, 1], prior, smoothing))
        if name in ("media", "artist"):
            put(f"{name}_plays", s[:, 0])
        del s

    return pd.DataFrame(X, index=frame.index, columns=list(FEATURE_NAMES), copy=False)


def label_values(frame: pd.DataFrame) -> np.ndarray:
    """Stacked 0/1 values summed per key: play, labelled, listened, and the same on Flow rows only."""
    n = len(frame)
    if LABEL in frame.columns:
        label = frame[LABEL].to_numpy(np.float64, na_value=np.nan)
    else:
        label = np.full(n, np.nan)
    labelled = ~np.isnan(label)
    flow = frame["listen_type"].to_numpy() == 1
    vals = np.empty((n, 6), dtype=np.int8, order="F")
    vals[:, 0] = 1
    vals[:, 1] = labelled
    vals[:, 2] = labelled & (label == 1)
    vals[:, 3:6] = vals[:, 0:3] * flow[:, None]
    return vals


def row_features(put: Callable[[str, np.ndarray], None], frame: pd.DataFrame, ts: np.ndarray) -> None:
    """The row-wise features (time, release and the raw columns), each passed to `put(name, values)`."""
    day = np.floor_divide(ts, SECONDS_PER_DAY)
    put("hour", np.floor_divide(ts, 3600) % 24)
    put("weekday", (day + 3) % 7)  # 1970-01-01 was a Thursday; Monday = 0
    rd = frame["release_date"].to_numpy(np.int64)
    ry = rd // 10000
    rel_day = _days_from_civil(ry, np.clip((rd // 100) % 100, 1, 12), np.clip(rd % 100, 1, 31))
    put("days_since_release", day - rel_day)
    put("release_year", ry)
    del day, rd, ry, rel_day
    for c in _RAW:
        put(c, frame[c].to_numpy())


def user_features(
    put: Callable[[str, np.ndarray], None],
    frame: pd.DataFrame,
    ts: np.ndarray,
    ts_rank: np.ndarray,
    n_ts: int,
    vals: np.ndarray,
    prior: np.ndarray,
    flow_prior: np.ndarray,
    smoothing: float,
    items: Mapping[str, tuple[np.ndarray, int]],
) -> None:
    """The per-user features (rates, session position) and user x item ones (genre, artist, media codes in
    `items`, from `dense_codes`) of `frame`, each passed to `put(name, values)`. `frame` must hold every row
    of its users; `prior` and `flow_prior` are the population priors of its rows, `vals` their
    `label_values`, `ts_rank` dense ranks of `ts` below `n_ts`."""
    user, n_users = dense_codes(frame["user_id"].to_numpy())
    uk = Keyed(user, n_users, ts_rank, n_ts)
    u = uk.before(vals)
    user_count = u[:, 0]
    user_rate = smooth(u[:, 2], u[:, 1], prior, smoothing)
    put("user_count", user_count)
    put("user_rate", user_rate)
    put("user_flow_count", u[:, 3])
    put("user_flow_rate", smooth(u[:, 5], u[:, 4], flow_prior, smoothing))
    del u
    position = _session_position(uk, ts)
    put("session_position", position)
    put("session_first", position == 0)
    del uk, position

    # User x item: plays, share of the user's plays, listen rate smoothed toward the user's rate.
    for name in ("genre", "artist", "media"):
        s = Keyed(*_pair(user, n_users, *items[name], n_ts), ts_rank, n_ts).before(vals[:, :3])
        put(f"user_{name}_count", s[:, 0])
        put(f"user_{name}_share", s[:, 0] / np.maximum(user_count, 1.0))
        put(f"user_{name}_rate", smooth(s[:, 2], s[:, 1], user_rate, smoothing))
        del s


def _session_position(uk: Keyed, ts: np.ndarray) -> np.ndarray:
    """Position of each row in its user's session: the session's rows with an earlier timestamp.

    A session starts at a user's first row or after a gap longer than `SESSION_GAP` seconds.
    """
    n = ts.size
    t_s = ts[uk.order]
    idx = np.arange(n, dtype=np.int64)
    start = np.zeros(n, dtype=bool)
    if n:
        start[uk.key_start_row == idx] = True
        start[1:] |= (t_s[1:] - t_s[:-1]) > SESSION_GAP
    sess_start = np.maximum.accumulate(np.where(start, idx, 0)) if n else idx
    group_first = uk.group_start[uk.group_id]
    pos = np.empty(n, dtype=np.int64)
    pos[uk.order] = group_first - sess_start
    return pos


def _training_part(
    history: pd.DataFrame, X: pd.DataFrame, flow_only: bool
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """The labelled (and, with `flow_only`, Flow) rows of `history` and their rows of `X`, fresh index."""
    keep = history[LABEL].notna().to_numpy() if LABEL in history.columns else np.zeros(len(history), bool)
    if flow_only:
        keep = keep & (history["listen_type"].to_numpy() == 1)
    rows = history[keep].reset_index(drop=True)
    return X[keep].reset_index(drop=True), rows[LABEL].to_numpy().astype(np.int8), rows


def _with_hidden_targets(history: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """History rows then target rows with their labels hidden (NaN), the columns of `history`, fresh index."""
    hidden = targets.drop(columns=[c for c in (LABEL, "sample_id") if c in targets.columns])
    hidden = hidden.assign(**{LABEL: np.nan})
    hist = history.drop(columns=[c for c in history.columns if c not in hidden.columns])
    return pd.concat([hist, hidden[list(hist.columns)]], ignore_index=True)


def training_matrix(
    history: pd.DataFrame, *, smoothing: float = 10.0, flow_only: bool = False
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Features `X`, labels `y` (int8) and raw `rows` of the labelled history rows, all with a fresh index.

    Features come from strictly earlier history rows. With `flow_only`, only Flow rows are training examples
    (their features still use every earlier row).
    """
    return _training_part(history, build_features(history, smoothing=smoothing), flow_only)


def target_matrix(
    history: pd.DataFrame, targets: pd.DataFrame, *, smoothing: float = 10.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of `targets` (holdout targets or test rows) from `history`, the targets' labels hidden.

    Returns `(X, rows)`: `rows` are the targets' raw rows (sample_id or is_listened kept when present), both
    with a fresh index and in the targets' order.
    """
    both = _with_hidden_targets(history, targets)
    X = build_features(both, smoothing=smoothing).iloc[len(history) :].reset_index(drop=True)
    return X, targets.reset_index(drop=True)


def fold_matrices(
    history: pd.DataFrame, targets: pd.DataFrame, *, smoothing: float = 10.0, flow_only: bool = False
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """`training_matrix(history)` and `target_matrix(history, targets)` from ONE feature pass (half the time).

    Returns `(X, y, rows, X_targets, rows_targets)`. The only difference from the two separate calls: the
    (unlabelled) targets also count as plays in the popularity counts of later history rows. Still leak-free.
    """
    both = _with_hidden_targets(history, targets)
    X = build_features(both, smoothing=smoothing)
    n = len(history)
    Xh, y, rows = _training_part(history, X.iloc[:n], flow_only)
    return Xh, y, rows, X.iloc[n:].reset_index(drop=True), targets.reset_index(drop=True)

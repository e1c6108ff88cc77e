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

import numpy as np
import pandas as pd

from flowtui.core.schema import LABEL, SECONDS_PER_DAY, SESSION_GAP

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
_BASE_PRIOR = 0.5


class _Keyed:
    """Exclusive (strictly earlier timestamp) running sums of values per key."""

    def __init__(self, key: np.ndarray, ts_rank: np.ndarray, n_ts: int) -> None:
        n = key.size
        comp = key.astype(np.int64) * np.int64(n_ts) + ts_rank
        self.order = np.argsort(comp)  # order inside a (key, ts) group does not matter
        comp_s = comp[self.order]
        key_s = key[self.order]
        new_group = np.empty(n, dtype=bool)
        new_key = np.empty(n, dtype=bool)
        if n:
            new_group[0] = new_key[0] = True
            new_group[1:] = comp_s[1:] != comp_s[:-1]
            new_key[1:] = key_s[1:] != key_s[:-1]
        idx = np.arange(n, dtype=np.int64)
        self.group_id = np.cumsum(new_group) - 1
        self.group_start = np.flatnonzero(new_group)
        self.key_start_row = np.maximum.accumulate(np.where(new_key, idx, 0)) if n else idx
        self.key_start = self.key_start_row[self.group_start]

    def before(self, values: np.ndarray) -> np.ndarray:
        """For each row (input order), the sum of `values` over rows of its key with an earlier timestamp."""
        v = values[self.order]
        cs = np.cumsum(v, dtype=np.float64)
        excl = cs - v
        per_group = excl[self.group_start] - excl[self.key_start]
        out = np.empty(values.size, dtype=np.float64)
        out[self.order] = per_group[self.group_id]
        return out


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), vectorised."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _smooth(s: np.ndarray, c: np.ndarray, prior: np.ndarray, m: float) -> np.ndarray:
    return (s + m * prior) / (c + m)


def _pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense int64 codes of the pair (a, b)."""
    b_codes, b_uniq = pd.factorize(b)
    codes, _ = pd.factorize(a.astype(np.int64) * np.int64(max(len(b_uniq), 1)) + b_codes)
    return codes.astype(np.int64)


def build_features(frame: pd.DataFrame, *, smoothing: float = 10.0) -> pd.DataFrame:
    """One float32 row of `FEATURE_NAMES` per row of `frame` (same index), from strictly earlier rows only."""
    n = len(frame)
    ts = frame["ts_listen"].to_numpy(np.int64)
    if LABEL in frame.columns:
        label = frame[LABEL].to_numpy(np.float64, na_value=np.nan)
    else:
        label = np.full(n, np.nan)
    labelled = ~np.isnan(label)
    lab = labelled.astype(np.float64)
    y = np.where(labelled, label, 0.0)
    flow = (frame["listen_type"].to_numpy() == 1).astype(np.float64)
    ones = np.ones(n, dtype=np.float64)
    out: dict[str, np.ndarray] = {}

    # Time and release.
    hours = np.floor_divide(ts, 3600)
    out["hour"] = hours % 24
    day = np.floor_divide(ts, SECONDS_PER_DAY)
    out["weekday"] = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    rd = frame["release_date"].to_numpy(np.int64)
    ry = rd // 10000
    rm = np.clip((rd // 100) % 100, 1, 12)
    rdd = np.clip(rd % 100, 1, 31)
    out["days_since_release"] = day - _days_from_civil(ry, rm, rdd)
    out["release_year"] = ry
    for c in _RAW:
        out[c] = frame[c].to_numpy()

    ts_codes, ts_uniq = pd.factorize(ts, sort=True)
    ts_rank = ts_codes.astype(np.int64)
    n_ts = max(len(ts_uniq), 1)

    # Population priors from strictly earlier rows: overall and on Flow.
    glob = _Keyed(np.zeros(n, dtype=np.int64), ts_rank, n_ts)
    prior = _smooth(glob.before(y), glob.before(lab), np.full(n, _BASE_PRIOR), smoothing)
    flow_prior = _smooth(glob.before(y * flow), glob.before(lab * flow), prior, smoothing)

    # User statistics and session position.
    user = frame["user_id"].to_numpy(np.int64)
    uk = _Keyed(user, ts_rank, n_ts)
    user_count = uk.before(ones)
    out["user_count"] = user_count
    user_rate = _smooth(uk.before(y), uk.before(lab), prior, smoothing)
    out["user_rate"] = user_rate
    out["user_flow_count"] = uk.before(flow)
    out["user_flow_rate"] = _smooth(uk.before(y * flow), uk.before(lab * flow), flow_prior, smoothing)
    out["session_position"], out["session_first"] = _session(uk, ts)

    # User x item: plays, share of the user's plays, listen rate smoothed toward the user's rate.
    for name, col in (("genre", "genre_id"), ("artist", "artist_id"), ("media", "media_id")):
        k = _Keyed(_pair(user, frame[col].to_numpy()), ts_rank, n_ts)
        cnt = k.before(ones)
        out[f"user_{name}_count"] = cnt
        out[f"user_{name}_share"] = cnt / np.maximum(user_count, 1.0)
        out[f"user_{name}_rate"] = _smooth(k.before(y), k.before(lab), user_rate, smoothing)

    # Item target encodings and popularity.
    for name, col in (
        ("media", "media_id"),
        ("artist", "artist_id"),
        ("album", "album_id"),
        ("genre", "genre_id"),
        ("context", "context_type"),
    ):
        k = _Keyed(pd.factorize(frame[col].to_numpy())[0].astype(np.int64), ts_rank, n_ts)
        out[f"te_{name}"] = _smooth(k.before(y), k.before(lab), prior, smoothing)
        if name in ("media", "artist"):
            out[f"{name}_plays"] = k.before(ones)

    return pd.DataFrame(
        {f: np.asarray(out[f], dtype=np.float32) for f in FEATURE_NAMES}, index=frame.index, copy=False
    )


def _session(uk: _Keyed, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each row in its user's session (rows of the session with an earlier timestamp), and first flag.

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
    pos_s = (group_first - sess_start).astype(np.float64)
    pos = np.empty(n, dtype=np.float64)
    pos[uk.order] = pos_s
    return pos, (pos == 0).astype(np.float64)


def training_matrix(
    history: pd.DataFrame, *, smoothing: float = 10.0, flow_only: bool = False
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Features `X`, labels `y` (int8) and raw `rows` of the labelled history rows, all with a fresh index.

    Features come from strictly earlier history rows. With `flow_only`, only Flow rows are training examples
    (their features still use every earlier row).
    """
    X = build_features(history, smoothing=smoothing)
    keep = history[LABEL].notna().to_numpy() if LABEL in history.columns else np.zeros(len(history), bool)
    if flow_only:
        keep = keep & (history["listen_type"].to_numpy() == 1)
    rows = history[keep].reset_index(drop=True)
    return X[keep].reset_index(drop=True), rows[LABEL].to_numpy().astype(np.int8), rows


def target_matrix(
    history: pd.DataFrame, targets: pd.DataFrame, *, smoothing: float = 10.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of `targets` (holdout targets or test rows) from `history`, the targets' labels hidden.

    Returns `(X, rows)`: `rows` are the targets' raw rows (sample_id or is_listened kept when present), both
    with a fresh index and in the targets' order.
    """
    hidden = targets.drop(columns=[c for c in (LABEL, "sample_id") if c in targets.columns])
    hidden = hidden.assign(**{LABEL: np.nan})
    hist = history.drop(columns=[c for c in history.columns if c not in hidden.columns])
    both = pd.concat([hist, hidden[list(hist.columns)]], ignore_index=True)
    X = build_features(both, smoothing=smoothing).iloc[len(hist) :].reset_index(drop=True)
    return X, targets.reset_index(drop=True)

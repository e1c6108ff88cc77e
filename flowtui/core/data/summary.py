"""Headline figures and small distributions of a Dataset, for `flowtui data info` and the app's charts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from flowtui.core.data.io import Dataset
from flowtui.core.data.schema import LABEL

#: The keys of `summarize()`, which are also those of `flowtui data info --json`.
SUMMARY_KEYS: tuple[str, ...] = (
    "rows",
    "users",
    "items",
    "artists",
    "genres",
    "listen_rate",
    "flow_share",
    "flow_listen_rate",
    "ts_min",
    "ts_max",
    "warnings",
)


def format_ts(ts: int | None) -> str:
    """A Unix time for display, "1478000000 (2016-11-01 11:33 UTC)"; "-" for None. Never raises: a time
    outside the years 1..9999 (INT64_MAX, year 10000...) is shown as such."""
    if ts is None:
        return "-"
    try:
        when = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return f"{ts} ({'year 10000 or later' if ts > 0 else 'before year 1'})"
    return f"{ts} ({when} UTC)"


def _n_unique(x: np.ndarray) -> int:
    # Marking seen ids in a boolean table is cheaper than hashing 7.5M values when ids are small.
    if len(x) == 0:
        return 0
    lo, hi = int(x.min()), int(x.max())
    if lo >= 0 and hi < 20_000_000:
        seen = np.zeros(hi + 1, dtype=bool)
        seen[x] = True
        return int(np.count_nonzero(seen))
    return int(pd.unique(x).size)


def _rate(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if len(mask) else None


def summarize(ds: Dataset) -> dict[str, Any]:
    """rows, users, items (media), artists, genres, listen_rate, flow_share, flow_listen_rate, ts_min, ts_max
    and warnings ({code: count}). Rates are None on a test file (no labels); plain Python numbers only.
    """
    f = ds.frame
    flow = f["listen_type"].to_numpy() == 1
    labelled = LABEL in f.columns and ds.kind == "train"
    listened = f[LABEL].to_numpy() == 1 if labelled else None
    ts = f["ts_listen"].to_numpy()
    return {
        "rows": len(f),
        "users": _n_unique(f["user_id"].to_numpy()),
        "items": _n_unique(f["media_id"].to_numpy()),
        "artists": _n_unique(f["artist_id"].to_numpy()),
        "genres": _n_unique(f["genre_id"].to_numpy()),
        "listen_rate": _rate(listened) if listened is not None else None,
        "flow_share": _rate(flow),
        "flow_listen_rate": _rate(listened[flow]) if listened is not None and flow.any() else None,
        "ts_min": int(ts.min()) if len(ts) else None,
        "ts_max": int(ts.max()) if len(ts) else None,
        "warnings": ds.warning_counts(),
    }


def distributions(ds: Dataset, top_contexts: int = 10) -> dict[str, pd.Series]:
    """Small series for charts.

    `listen_rate_by_hour` (UTC hour 0-23), `listen_rate_by_platform_family`, `listen_rate_by_context`
    (the `top_contexts` most frequent context types, most frequent first): listen rates on a train file,
    row shares on a test file. `rows_by_hour`, `rows_by_platform_family`, `rows_by_context`: row counts.
    `rows_per_user`: number of users by rows-per-user bin (index: bin label such as "1", "2-3", "4-7").
    """
    f = ds.frame
    labelled = LABEL in f.columns and ds.kind == "train"
    y = f[LABEL].to_numpy() if labelled else None
    hour = (f["ts_listen"].to_numpy() // 3600) % 24
    out: dict[str, pd.Series] = {}
    for name, key in (
        ("hour", hour),
        ("platform_family", f["platform_family"].to_numpy()),
        ("context", f["context_type"].to_numpy()),
    ):
        counts, listened = _count(key, y)
        if name == "hour":
            counts = counts.reindex(range(24), fill_value=0)
        elif name == "context":
            counts = counts.sort_values(ascending=False, kind="stable").head(top_contexts)
        out[f"rows_by_{name}"] = counts.rename("rows")
        if listened is not None:
            rate = (listened.reindex(counts.index) / counts.where(counts > 0)).rename("listen_rate")
        else:
            rate = (counts / max(len(key), 1)).rename("share")
        out[f"listen_rate_by_{name}"] = rate
    out["rows_per_user"] = _rows_per_user(f["user_id"].to_numpy())
    return out


def _count(key: np.ndarray, y: np.ndarray | None) -> tuple[pd.Series, pd.Series | None]:
    """Rows per key value and listened rows per key value (bincount when keys are small, else groupby)."""
    if len(key) and key.min() >= 0 and key.max() < 1_000_000:
        counts = np.bincount(key)
        present = np.flatnonzero(counts)
        c = pd.Series(counts[present], index=present)
        if y is None:
            return c, None
        return c, pd.Series(np.bincount(key, weights=y)[present], index=present)
    g = pd.Series(y if y is not None else np.zeros(len(key)), dtype=float).groupby(key)
    c = g.size()
    return c, (g.sum() if y is not None else None)


def _rows_per_user(users: np.ndarray) -> pd.Series:
    """Users by rows-per-user in power-of-two bins: 1, 2-3, 4-7, ..."""
    counts = _count(users, None)[0].to_numpy()
    if len(counts) == 0:
        return pd.Series(dtype=np.int64, name="users")
    bins = np.floor(np.log2(counts)).astype(np.int64)
    per_bin = np.bincount(bins)
    labels = [str(1 << b) if b == 0 else f"{1 << b}-{(1 << (b + 1)) - 1}" for b in range(len(per_bin))]
    return pd.Series(per_bin, index=pd.Index(labels, name="rows"), name="users")

"""Held-out evaluation of recommendations: RBM, DBN and the two baselines on the same split.

Per user, a fraction of their rated (user, item) entries is held out (at random, or their latest ones).
Models learn the remaining entries, then:
- `mae`: mean |P(listened) - label| on held-out entries (the classic RBM "test loss");
- `auc`: ROC AUC of P(listened) on held-out listened vs skipped entries;
- `precision_at_k`, `recall_at_k`, `ndcg_at_k`: held-out LISTENED items ranked among every item the user has
  no training entry for (held-out skipped items stay candidates, never relevant).
Baselines: `popularity` (number of training entries of the item; no probability, so `mae` is None) and
`item_mean` (the item's smoothed listen rate).
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from flowtui.core import events as ev
from flowtui.core import metrics
from flowtui.core.recs.interactions import InteractionMatrix

MODELS = ("rbm", "dbn", "popularity", "item_mean")
ITEM_MEAN_SMOOTHING = 5.0
Holdout = Literal["random", "latest"]
#: How rbm/dbn order a top-k list: "expected" listens = P(played) * P(listened | played) from the exposure
#: and listen networks, "played" = P(played) alone, "probability" = P(listened | played) alone.
RankBy = Literal["expected", "played", "probability"]


def split_entries(
    matrix: InteractionMatrix, fraction: float = 0.2, how: Holdout = "random", seed: int = 0
) -> np.ndarray:
    """Boolean mask over `matrix.labels.data`: the held-out entries.

    "random": each entry with probability `fraction`; "latest": each user's latest `fraction` of entries
    (by the entry's last ts_listen, at least one when the user has two or more). A user keeps at least one
    training entry either way."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    rows = matrix.entry_rows()
    n_row = np.diff(matrix.labels.indptr)
    n = len(rows)
    if how == "random":
        r = np.random.default_rng(seed).random(n)
        # the entry with the largest draw of each user is never held out
        order = np.lexsort((r, rows))
        last_of_user = np.zeros(n, bool)
        ends = matrix.labels.indptr[1:][n_row > 0] - 1
        last_of_user[order[ends]] = True
        return (r < fraction) & ~last_of_user
    if how == "latest":
        jitter = np.random.default_rng(seed).random(n)  # ties in time broken at random
        order = np.lexsort((jitter, matrix.last_ts, rows))
        pos = np.empty(n, np.int64)
        pos[order] = np.arange(n) - np.repeat(matrix.labels.indptr[:-1], n_row)
        n_held = np.where(n_row >= 2, np.maximum(1, np.floor(n_row * fraction)), 0).astype(np.int64)
        return pos >= (n_row - n_held)[rows]
    raise ValueError(f"unknown holdout {how!r}; use 'random' or 'latest'")


def _item_baselines(train: InteractionMatrix) -> tuple[np.ndarray, np.ndarray]:
    n, s = train.item_stats()
    glob = float(train.labels.data.mean()) if train.nnz else 0.5
    mean = (s + ITEM_MEAN_SMOOTHING * glob) / (n + ITEM_MEAN_SMOOTHING)
    return n, mean


def evaluate_recs(
    frame: pd.DataFrame,
    model: str = "rbm",
    k: int = 10,
    params: dict[str, Any] | None = None,
    *,
    fraction: float = 0.2,
    how: Holdout = "random",
    seed: int = 0,
    preset: str = "full",
    rank_by: RankBy = "expected",
    on_event: ev.EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Held-out metrics of one model: keys `model, mae, auc, precision_at_k, recall_at_k, ndcg_at_k, k`
    (plus `n_users`, `n_items`, `n_heldout`). `params` override the registered rbm/dbn parameters.

    `mae` and `auc` use the model's P(listened); the top-k lists rank by `rank_by` (see
    `expected_listen_prior`)."""
    if model not in MODELS:
        raise ValueError(f"unknown recommendation model {model!r}; known: {', '.join(MODELS)}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    from flowtui.core import registry
    from flowtui.core.recs import rbm_models

    # popularity and item_mean take no parameters; the matrix is built as the rbm's would be
    p: dict[str, Any] = dict(registry.get_spec("dbn" if model == "dbn" else "rbm").params(params, preset))
    ev.emit(on_event, ev.Progress("evaluate-recs", 0, 3, "interaction matrix"))
    full = InteractionMatrix.from_frame(
        frame, "media", max_items=p["max_items"], min_count=p["min_count"], label=p["label"]
    )
    held = split_entries(full, fraction, how, seed)
    if not held.any():
        raise ValueError("no entry to hold out: every user has a single rated item")
    train = full.select_entries(~held)
    test = full.select_entries(held)
    ev.check_cancel(cancel)
    ev.emit(on_event, ev.Progress("evaluate-recs", 1, 3, f"training {model}"))

    pop, item_mean = _item_baselines(train)
    net = expo = None
    if model in ("rbm", "dbn"):
        net = rbm_models.build_network(model, p)
        net.fit(train, on_event=on_event, cancel=cancel)
        if rank_by != "probability":
            if not p.get("exposure_weight"):
                raise ValueError(f"rank_by={rank_by!r} needs an exposure network (exposure_weight > 0)")
            expo = rbm_models.fit_exposure(model, p, train, on_event, cancel)
    played = train.as_played(float(p.get("exposure_weight") or 0.0))

    base = pop if model == "popularity" else item_mean
    # baselines rank ties by item order, so their lists are reproducible
    base_rank = np.empty(full.shape[1], np.float64)
    base_rank[np.lexsort((np.arange(full.shape[1]), -base))] = np.arange(full.shape[1], 0, -1)
    users = np.flatnonzero(np.diff(test.labels.indptr) > 0)
    ev.emit(on_event, ev.Progress("evaluate-recs", 2, 3, "scoring held-out entries"))
    held_p, held_y, tops = [], [], []
    bs = 512
    for start in range(0, len(users), bs):
        ev.check_cancel(cancel)
        idx = users[start : start + bs]
        t = test.labels[idx]
        r = np.repeat(np.arange(len(idx)), np.diff(t.indptr))
        if net is not None:
            scores = _net_scores(net, train, idx)
            held_p.append(scores[r, t.indices])
            if expo is not None:
                pe = _net_scores(expo, played, idx)
                scores = pe if rank_by == "played" else scores * pe
        else:
            held_p.append(base[t.indices])
            scores = np.broadcast_to(base_rank, (len(idx), full.shape[1])).copy()
        held_y.append(t.data)
        seen = train.mask[idx]
        sr = np.repeat(np.arange(len(idx)), np.diff(seen.indptr))
        scores[sr, seen.indices] = -np.inf
        tops.append(metrics.top_k(scores, k))
    y = np.concatenate(held_y)
    pr = np.concatenate(held_p).astype(np.float64)
    top = np.concatenate(tops)
    rel = _listened(test.labels[users])
    ev.emit(on_event, ev.Progress("evaluate-recs", 3, 3, "done"))
    return {
        "model": model,
        "mae": None if model == "popularity" else metrics.mae(y, pr),
        "auc": _nan_none(metrics.auc(y >= 0.5, pr)),  # soft labels (label="mean") count as listened at 0.5
        "precision_at_k": _nan_none(metrics.precision_at_k(top, rel, k)),
        "recall_at_k": _nan_none(metrics.recall_at_k(top, rel, k)),
        "ndcg_at_k": _nan_none(metrics.ndcg_at_k(top, rel, k)),
        "k": k,
        "n_users": len(users),
        "n_items": int(full.shape[1]),
        "n_heldout": len(y),
    }


def _listened(rel: sp.csr_matrix) -> sp.csr_matrix:
    """The held-out entries labelled listened (>= 0.5), as a 0/1 matrix (explicit zeros are dropped)."""
    out = rel.copy()
    out.data = (out.data >= 0.5).astype(np.float64)
    out.eliminate_zeros()
    return out


def _nan_none(x: float) -> float | None:
    return None if x != x else float(x)


def _net_scores(net: Any, train: InteractionMatrix, idx: np.ndarray) -> np.ndarray:
    """Visible probabilities of the users `idx` under the training matrix, as float32 numpy."""
    sub_l, sub_m = train.labels[idx], train.mask[idx]
    parts = [p.cpu().numpy() for _, p in net.iter_visible(sub_l, sub_m, batch_size=len(idx))]
    return np.concatenate(parts).astype(np.float32)


def compare_recs(
    frame: pd.DataFrame,
    models: tuple[str, ...] = MODELS,
    k: int = 10,
    params: dict[str, Any] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """`evaluate_recs` for several models on the same split (same seed), one dict each."""
    return [evaluate_recs(frame, m, k, params if m in ("rbm", "dbn") else None, **kwargs) for m in models]


def planted_frame(
    n_users: int = 300,
    n_groups: int = 3,
    n_media: int = 60,
    rate: float = 0.3,
    p_in: float = 0.9,
    p_out: float = 0.1,
    seed: int = 0,
) -> pd.DataFrame:
    """A tiny DSG17-like frame with planted tastes: users of group g listen to media of group g with
    probability `p_in`, to other media with `p_out`; each user rates a `rate` share of the media.

    Media m belongs to group m % n_groups, artist m // 4 and genre (m % n_groups) + 1, so each artist and genre
    lies inside one group. For tests and benchmarks."""
    rng = np.random.default_rng(seed)
    ug = rng.integers(0, n_groups, n_users)
    mg = np.arange(n_media) % n_groups
    seen = rng.random((n_users, n_media)) < rate
    u, m = np.nonzero(seen)
    p = np.where(ug[u] == mg[m], p_in, p_out)
    y = (rng.random(len(u)) < p).astype(np.int8)
    n = len(u)
    # artists: 4 media each, all of one group (media m, m + n_groups, ... share a group)
    artist = (m // (4 * n_groups)) * n_groups + mg[m]
    return pd.DataFrame(
        {
            "genre_id": (mg[m] + 1).astype(np.int32),
            "ts_listen": (1_480_000_000 + rng.integers(0, 30 * 86_400, n)).astype(np.int64),
            "media_id": (m + 1000).astype(np.int32),
            "album_id": (artist * 10).astype(np.int32),
            "context_type": np.zeros(n, np.int16),
            "release_date": np.full(n, 20150101, np.int32),
            "platform_name": np.zeros(n, np.int8),
            "platform_family": np.zeros(n, np.int8),
            "media_duration": np.full(n, 220, np.int32),
            "listen_type": (rng.random(n) < 0.3).astype(np.int8),
            "user_gender": (u % 2).astype(np.int8),
            "user_id": u.astype(np.int32),
            "artist_id": (artist + 500).astype(np.int32),
            "user_age": (18 + u % 13).astype(np.int8),
            "is_listened": y,
        }
    )

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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from flowtui.core import events as ev
from flowtui.core import metrics
from flowtui.core.recs.interactions import InteractionMatrix

if TYPE_CHECKING:
    from flowtui.core.recs.network import Network
    from flowtui.core.recs.rbm_params import DBNParams, RBMParams

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
        held: np.ndarray = pos >= (n_row - n_held)[rows]
        return held
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
    cfg = _net_params(model, params, preset)
    ev.emit(on_event, ev.Progress("evaluate-recs", 0, 3, "interaction matrix"))
    full = InteractionMatrix.from_frame(
        frame, "media", max_items=cfg.max_items, min_count=cfg.min_count, label=cfg.label
    )
    held = split_entries(full, fraction, how, seed)
    if not held.any():
        raise ValueError("no entry to hold out: every user has a single rated item")
    train = full.select_entries(~held)
    test = full.select_entries(held)
    ev.check_cancel(cancel)
    ev.emit(on_event, ev.Progress("evaluate-recs", 1, 3, f"training {model}"))

    pop, item_mean = _item_baselines(train)
    if model in ("rbm", "dbn"):
        scorer = _network_scorer(cfg, train, rank_by, on_event, cancel)
    else:
        scorer = _baseline_scorer(pop if model == "popularity" else item_mean)
    users = np.flatnonzero(np.diff(test.labels.indptr) > 0)
    ev.emit(on_event, ev.Progress("evaluate-recs", 2, 3, "scoring held-out entries"))
    y, pr, top = _score_users(scorer, train, test, users, k, cancel)
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


def _net_params(model: str, params: dict[str, Any] | None, preset: str) -> RBMParams | DBNParams:
    """The registered dbn's parameters for "dbn", the rbm's otherwise (popularity and item_mean take none;
    their matrix is built as the rbm's would be), with `params` and the preset applied."""
    from flowtui.core import registry

    spec = registry.get_spec("dbn" if model == "dbn" else "rbm")
    cfg: RBMParams | DBNParams = spec.schema.build(spec.params(params, preset), spec.name)
    return cfg


#: Scores of a batch of users (matrix rows): (P(listened) of every item, the score that ranks them).
Scorer = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _network_scorer(
    cfg: RBMParams | DBNParams,
    train: InteractionMatrix,
    rank_by: RankBy,
    on_event: ev.EventCallback | None,
    cancel: threading.Event | None,
) -> Scorer:
    """Fit the listen network (and the exposure network unless `rank_by` is "probability") on `train`."""
    from flowtui.core.recs import rbm_models

    net = rbm_models.build_network(cfg)
    net.fit(train, on_event=on_event, cancel=cancel)
    expo = None
    if rank_by != "probability":
        if not cfg.exposure_weight:
            raise ValueError(f"rank_by={rank_by!r} needs an exposure network (exposure_weight > 0)")
        expo = rbm_models.fit_exposure(cfg, train, on_event, cancel)
    played = train.as_played(float(cfg.exposure_weight or 0.0))

    def score(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = _net_scores(net, train, idx)
        if expo is None:
            return scores, scores
        pe = _net_scores(expo, played, idx)
        return scores, pe if rank_by == "played" else scores * pe

    return score


def _baseline_scorer(base: np.ndarray) -> Scorer:
    """The item's `base` value for every user; ties ranked by item order, so the lists are reproducible."""
    n_items = len(base)
    base_rank = np.empty(n_items, np.float64)
    base_rank[np.lexsort((np.arange(n_items), -base))] = np.arange(n_items, 0, -1)

    def score(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shape = (len(idx), n_items)
        return np.broadcast_to(base, shape), np.broadcast_to(base_rank, shape).copy()

    return score


def _score_users(
    scorer: Scorer,
    train: InteractionMatrix,
    test: InteractionMatrix,
    users: np.ndarray,
    k: int,
    cancel: threading.Event | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(held-out labels, their P(listened), each user's top-k among the items without a training entry)."""
    held_p, held_y, tops = [], [], []
    bs = 512
    for start in range(0, len(users), bs):
        ev.check_cancel(cancel)
        idx = users[start : start + bs]
        t = test.labels[idx]
        r = np.repeat(np.arange(len(idx)), np.diff(t.indptr))
        listen, ranking = scorer(idx)
        held_p.append(listen[r, t.indices])
        held_y.append(t.data)
        seen = train.mask[idx]
        sr = np.repeat(np.arange(len(idx)), np.diff(seen.indptr))
        ranking[sr, seen.indices] = -np.inf
        tops.append(metrics.top_k(ranking, k))
    y = np.concatenate(held_y)
    pr = np.concatenate(held_p).astype(np.float64)
    return y, pr, np.concatenate(tops)


def _listened(rel: sp.csr_matrix) -> sp.csr_matrix:
    """The held-out entries labelled listened (>= 0.5), as a 0/1 matrix (explicit zeros are dropped)."""
    out = rel.copy()
    out.data = (out.data >= 0.5).astype(np.float64)
    out.eliminate_zeros()
    return out


def _nan_none(x: float) -> float | None:
    return None if x != x else float(x)


def _net_scores(net: Network, train: InteractionMatrix, idx: np.ndarray) -> np.ndarray:
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

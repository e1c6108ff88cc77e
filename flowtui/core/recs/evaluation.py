"""Held-out evaluation of recommenders: a leaderboard of every registered recommender on the same split.

Protocol. The frame becomes one user x media matrix (`recommender_matrix`: listen/skip labels, or plays
when the log has no skip). For each seed, a `fraction` of each user's entries is held out (`split_entries`:
at random, or each user's latest; a user keeps at least one training entry). Every recommender learns the
remaining entries (the same split for all), then ranks, for each user with a held-out entry, every item
they have no training entry for:
- `precision_at_k`, `recall_at_k`, `ndcg_at_k`: the relevant items are the held-out LISTENED entries on
  listen/skip data (held-out skips stay candidates, never relevant) and every held-out entry on plays;
- `auc`: ROC AUC of held-out listened vs skipped entries (labels only), scored by the model's
  P(listened | played) when it has one (rbm, dbn, item_mean), else by its ranking score;
- `mae`: mean |P(listened | played) - label| on held-out entries (labels, and models with a probability);
- `coverage`: share of the items that appear in at least one user's top k;
- `fit_seconds`: training time.
Each metric is reported as the mean and sample standard deviation (ddof=1) over the seeds (`seeds`, from
`seed` on), so a difference can be told from the split's noise. As every model meets the same splits,
each row also has its paired difference to the best row's NDCG@k, seed by seed (`ndcg_at_k_vs_best`, with
its standard deviation `ndcg_at_k_vs_best_std`): a gap of less than about two of those standard deviations
is not told from noise. `validation=True` carves a second held-out set from the
TRAINING entries of each split and scores on it: hyper-parameters are tuned there, never on the test
entries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from flowtui.core import events as ev
from flowtui.core import metrics
from flowtui.core.recs.interactions import MAX_ITEMS, InteractionMatrix, recommender_matrix
from flowtui.core.recs.recommender import SCORE_CELLS, RecommenderBase, top_n

if TYPE_CHECKING:
    from flowtui.core.registry import RecommenderSpec

Holdout = Literal["random", "latest"]
#: The metrics of a leaderboard row, in display order.
METRICS = ("precision_at_k", "recall_at_k", "ndcg_at_k", "auc", "mae", "coverage", "fit_seconds")
#: The validation split of seed s is drawn with seed s + this (never the test split's draw).
VALIDATION_SEED_OFFSET = 1000


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


def holdout(
    matrix: InteractionMatrix,
    fraction: float = 0.2,
    how: Holdout = "random",
    seed: int = 0,
    *,
    validation: bool = False,
) -> tuple[InteractionMatrix, InteractionMatrix]:
    """(train, test) entries of `matrix` (same users and items). With `validation`, the test entries are
    put aside and a second split of the remaining (training) entries gives (train, validation)."""
    held = split_entries(matrix, fraction, how, seed)
    train, test = matrix.select_entries(~held), matrix.select_entries(held)
    if validation:
        val = split_entries(train, fraction, how, seed + VALIDATION_SEED_OFFSET)
        train, test = train.select_entries(~val), train.select_entries(val)
    if test.nnz == 0:
        raise ValueError("no entry to hold out: every user has a single entry")
    return train, test


def relevant(test: InteractionMatrix) -> sp.csr_matrix:
    """The held-out entries that count as hits: the listened ones (any, on implicit data), 0/1 CSR."""
    out = sp.csr_matrix(test.labels, dtype=np.float64, copy=True)
    out.data = np.ones_like(out.data) if test.is_implicit else (out.data >= 0.5).astype(np.float64)
    out.eliminate_zeros()
    return out


def evaluate_model(
    model: RecommenderBase,
    train: InteractionMatrix,
    test: InteractionMatrix,
    k: int = 10,
    *,
    on_event: ev.EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, float | None]:
    """Fit `model` on `train` and score it on the held-out `test` entries: the METRICS (None where a metric
    does not apply), plus `n_users` and `n_heldout`."""
    t0 = time.perf_counter()
    model.fit(train, on_event=on_event, cancel=cancel)
    fit_seconds = time.perf_counter() - t0
    users = np.flatnonzero(np.diff(test.labels.indptr) > 0)
    labelled = not test.is_implicit
    bs = max(1, min(1024, SCORE_CELLS // max(train.shape[1], 1)))
    tops, held_y, held_s, held_p = [], [], [], []
    for start in range(0, len(users), bs):
        ev.check_cancel(cancel)
        idx = users[start : start + bs]
        scores = model.score(train, idx)
        t = test.labels[idx]
        r = np.repeat(np.arange(len(idx)), np.diff(t.indptr))
        if labelled:
            held_y.append(t.data)
            held_s.append(scores[r, t.indices])
            proba = model.listen_proba(train, idx) if model.has_listen_proba else None
            if proba is not None:
                held_p.append(proba[r, t.indices])
        tops.append(top_n(scores, k, exclude=train.mask[idx])[0])
    top = np.concatenate(tops) if tops else np.zeros((0, k), np.int64)
    rel = relevant(test)[users]
    out: dict[str, float | None] = {
        "precision_at_k": _none(metrics.precision_at_k(top, rel, k)),
        "recall_at_k": _none(metrics.recall_at_k(top, rel, k)),
        "ndcg_at_k": _none(metrics.ndcg_at_k(top, rel, k)),
        "auc": None,
        "mae": None,
        "coverage": float(len(np.unique(top[top >= 0]))) / max(train.shape[1], 1),
        "fit_seconds": fit_seconds,
        "n_users": float(len(users)),
        "n_heldout": float(test.nnz),
    }
    if labelled and held_y:
        y = np.concatenate(held_y)
        listened = y >= 0.5  # soft labels (label="mean") count as listened from 0.5
        if held_p:
            p = np.concatenate(held_p).astype(np.float64)
            out["auc"] = _none(metrics.auc(listened, p))
            out["mae"] = _none(metrics.mae(y, p))
        else:
            out["auc"] = _none(metrics.auc(listened, np.concatenate(held_s).astype(np.float64)))
    return out


def _none(x: float) -> float | None:
    return None if x != x else float(x)


@dataclass
class Leaderboard:
    """Every recommender's metrics over the seeds: rows sorted by mean NDCG@k, best first."""

    setup: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # model -> why it was left out

    def to_dict(self) -> dict[str, Any]:
        return {"setup": self.setup, "leaderboard": self.rows, "skipped": self.skipped}


def _aggregate(name: str, runs: list[dict[str, float | None]]) -> dict[str, Any]:
    row: dict[str, Any] = {"model": name}
    for key in METRICS:
        vals = [v for r in runs if (v := r[key]) is not None]
        row[key] = float(np.mean(vals)) if vals else None
        row[f"{key}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else (0.0 if vals else None)
    row["per_seed"] = [{key: r[key] for key in (*METRICS, "n_users")} for r in runs]
    return row


def _checked_specs(
    models: Sequence[str] | None,
    *,
    k: int,
    seeds: int,
    fraction: float,
    preset: str,
    params: Mapping[str, Mapping[str, object]] | None,
) -> dict[str, RecommenderSpec]:
    """The specs of the chosen recommenders once every setting is checked: ValueError (ParamError for a
    bad parameter) before any data is touched."""
    from flowtui.core import registry

    names = list(dict.fromkeys(models or registry.recommender_names()))
    known = registry.recommender_names()
    bad = [m for m in names if m not in known]
    if bad:
        raise ValueError(f"unknown recommender {', '.join(bad)}; known: {', '.join(known)}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    extra = set(params or {}) - set(names)
    if extra:
        raise ValueError(f"parameters given for {', '.join(sorted(extra))}, which is not evaluated")
    specs = {n: registry.get_recommender(n) for n in names}
    for n, spec in specs.items():
        spec.params((params or {}).get(n), preset)
    return specs


def leaderboard(
    data: pd.DataFrame | InteractionMatrix,
    models: Sequence[str] | None = None,
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
    max_items: int | None = MAX_ITEMS,
    on_event: ev.EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> Leaderboard:
    """Every recommender in `models` (default: every registered one) on the same splits, `seeds` of them
    (seed, seed + 1, ...); `params` holds each model's overrides. Bad settings raise ValueError (ParamError
    for a bad parameter) before any fit. A model that needs labels is skipped on implicit data."""
    specs = _checked_specs(models, k=k, seeds=seeds, fraction=fraction, preset=preset, params=params)
    names = list(specs)
    matrix = (
        data
        if isinstance(data, InteractionMatrix)
        else recommender_matrix(data, implicit=implicit, max_items=max_items)
    )
    setup = {"k": k, "seeds": list(range(seed, seed + seeds)), "fraction": fraction, "holdout": how}
    board = Leaderboard(setup={**setup, "validation": validation, "preset": preset, **_shape(matrix)})
    board.skipped = {
        n: "needs listen/skip labels; this data holds plays only"
        for n in names
        if matrix.is_implicit and getattr(specs[n].factory, "needs_labels", False)
    }
    runnable = [n for n in names if n not in board.skipped]
    runs: dict[str, list[dict[str, float | None]]] = {n: [] for n in runnable}
    total = seeds * len(runnable)
    done = 0
    for s in range(seed, seed + seeds):
        train, test = holdout(matrix, fraction, how, s, validation=validation)
        for n in runnable:
            ev.emit(on_event, ev.Progress("evaluate-recs", done, total, f"{n}, seed {s}"))
            model = specs[n].build((params or {}).get(n), preset)
            runs[n].append(evaluate_model(model, train, test, k, on_event=on_event, cancel=cancel))
            done += 1
        board.setup.setdefault("n_heldout", []).append(test.nnz)
    ev.emit(on_event, ev.Progress("evaluate-recs", total, total, "done"))
    board.rows = sorted(
        (_aggregate(n, runs[n]) for n in runnable),
        key=lambda r: -(r["ndcg_at_k"] if r["ndcg_at_k"] is not None else -1.0),
    )
    _paired_to_best(board.rows)
    return board


def _shape(matrix: InteractionMatrix) -> dict[str, Any]:
    """What a leaderboard's setup tells of its matrix: the kind of feedback and the sizes."""
    return {
        "implicit": matrix.is_implicit,
        "n_users": int(matrix.shape[0]),
        "n_items": int(matrix.shape[1]),
        "n_entries": matrix.nnz,
    }


def _paired_to_best(rows: list[dict[str, Any]]) -> None:
    """Add each row's per-seed NDCG@k difference to the first (best) row: mean and sample std."""
    if not rows:
        return
    best = [r["ndcg_at_k"] for r in rows[0]["per_seed"]]
    for row in rows:
        d = [
            a - b
            for a, b in zip((r["ndcg_at_k"] for r in row["per_seed"]), best, strict=True)
            if a is not None and b is not None
        ]
        row["ndcg_at_k_vs_best"] = float(np.mean(d)) if d else None
        row["ndcg_at_k_vs_best_std"] = float(np.std(d, ddof=1)) if len(d) > 1 else (0.0 if d else None)


def evaluate_recs(
    frame: pd.DataFrame,
    model: str = "rbm",
    k: int = 10,
    params: Mapping[str, object] | None = None,
    *,
    fraction: float = 0.2,
    how: Holdout = "random",
    seed: int = 0,
    preset: str = "full",
    implicit: bool | None = None,
    on_event: ev.EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """One recommender on one split: `model`, `k` and the METRICS (plus n_users, n_items, n_heldout)."""
    board = leaderboard(
        frame,
        [model],
        k=k,
        seeds=1,
        seed=seed,
        fraction=fraction,
        how=how,
        preset=preset,
        params={model: params} if params else None,
        implicit=implicit,
        on_event=on_event,
        cancel=cancel,
    )
    if board.skipped:
        raise ValueError(f"{model}: {board.skipped[model]}")
    row = board.rows[0]
    return {
        "model": model,
        "k": k,
        **{key: row[key] for key in METRICS},
        "n_users": int(row["per_seed"][0]["n_users"]),
        "n_items": board.setup["n_items"],
        "n_heldout": board.setup["n_heldout"][0],
    }


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

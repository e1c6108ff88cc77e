"""Metrics on numpy arrays: classification scores for the Flow question and ranking scores for recommendations.

Ranking metrics take `top_items`, an int array (n_users, >= k) of distinct item indices ranked best first (pad with -1
when a user has fewer candidates; `top_k` builds it from a score matrix), and `relevant`, the held-out relevant
items as a (n_users, n_items) scipy sparse matrix or dense array (non-zero = relevant). They average over users
with at least one relevant item and return NaN when there is none. Relevance is binary.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score


def _yp(y: ArrayLike, p: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    ya = np.asarray(y, dtype=np.float64).ravel()
    pa = np.asarray(p, dtype=np.float64).ravel()
    if ya.shape != pa.shape:
        raise ValueError(f"y and p differ in length: {ya.size} != {pa.size}")
    return ya, pa


def auc(y: ArrayLike, p: ArrayLike) -> float:
    """ROC AUC of scores `p` for binary labels `y`; NaN when `y` holds one class only (or is empty)."""
    ya, pa = _yp(y, p)
    if np.unique(ya).size < 2:
        return float("nan")
    return float(roc_auc_score(ya, pa))


def logloss(y: ArrayLike, p: ArrayLike, eps: float = 1e-15) -> float:
    """Mean binary log loss, probabilities clipped to [eps, 1 - eps]; NaN when empty."""
    ya, pa = _yp(y, p)
    if ya.size == 0:
        return float("nan")
    pa = np.clip(pa, eps, 1 - eps)
    return float(-np.mean(ya * np.log(pa) + (1 - ya) * np.log1p(-pa)))


def accuracy(y: ArrayLike, p: ArrayLike, threshold: float = 0.5) -> float:
    """Share of rows where `p >= threshold` equals the label; NaN when empty."""
    ya, pa = _yp(y, p)
    if ya.size == 0:
        return float("nan")
    return float(np.mean((pa >= threshold) == (ya == 1)))


def mae(y: ArrayLike, p: ArrayLike) -> float:
    """Mean absolute error; NaN when empty."""
    ya, pa = _yp(y, p)
    if ya.size == 0:
        return float("nan")
    return float(np.mean(np.abs(ya - pa)))


def roc_curve_points(y: ArrayLike, p: ArrayLike, n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve sampled at `n` evenly spaced false-positive rates from 0 to 1: `(fpr, tpr)`.

    `tpr[i]` is the best true-positive rate reachable at a false-positive rate of at most `fpr[i]`. Both arrays
    are empty when the curve is undefined (one class only).
    """
    ya, pa = _yp(y, p)
    pos = ya == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return np.empty(0), np.empty(0)
    order = np.argsort(-pa, kind="stable")
    ps, pos_s = pa[order], pos[order]
    # One curve point per distinct threshold (after its last row), plus the origin.
    last = np.r_[ps[1:] != ps[:-1], True]
    tp = np.r_[0, np.cumsum(pos_s)[last]]
    fp = np.r_[0, np.cumsum(~pos_s)[last]]
    fpr, tpr = fp / n_neg, tp / n_pos
    grid = np.linspace(0.0, 1.0, n)
    idx = np.searchsorted(fpr, grid, side="right") - 1
    return grid, tpr[idx]


def top_k(scores: np.ndarray, k: int, exclude: ArrayLike | sp.spmatrix | None = None) -> np.ndarray:
    """Indices of the `k` highest scores per row of a (n_users, n_items) matrix, best first.

    `exclude` (same shape, sparse or dense, non-zero = excluded, e.g. items already heard) is never
    recommended; a row with fewer than `k` allowed items is padded with -1.
    """
    s = np.array(scores, dtype=np.float64, copy=True)
    if s.ndim != 2:
        raise ValueError("scores must be a (n_users, n_items) matrix")
    if exclude is not None:
        mask = sp.csr_matrix(exclude).toarray() if sp.issparse(exclude) else np.asarray(exclude)
        s[mask.astype(bool)] = -np.inf
    k = min(k, s.shape[1])
    part = np.argpartition(-s, k - 1, axis=1)[:, :k] if k > 0 else np.empty((s.shape[0], 0), np.int64)
    rows = np.arange(s.shape[0])[:, None]
    ranked = part[rows, np.argsort(-s[rows, part], axis=1, kind="stable")]
    ranked[np.isneginf(s[rows, ranked])] = -1
    return ranked.astype(np.int64)


def _hits(top_items: ArrayLike, relevant: ArrayLike | sp.spmatrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_users, k) 0/1 hits matrix and the number of relevant items per user."""
    top = np.asarray(top_items, dtype=np.int64)
    if top.ndim != 2 or top.shape[1] < k:
        raise ValueError(f"top_items must be (n_users, >= {k}), got shape {top.shape}")
    top = top[:, :k]
    rel = sp.csr_matrix(relevant, dtype=np.float64, copy=True)
    if rel.shape[0] != top.shape[0]:
        raise ValueError(f"top_items has {top.shape[0]} users, relevant {rel.shape[0]}")
    rel.data = (rel.data != 0).astype(np.float64)
    rel.eliminate_zeros()
    valid = top >= 0
    rows = np.repeat(np.arange(top.shape[0]), k)
    hits = np.asarray(rel[rows, np.where(valid, top, 0).ravel()]).reshape(top.shape) * valid
    return hits, np.asarray(rel.sum(axis=1)).ravel()


def precision_at_k(top_items: ArrayLike, relevant: ArrayLike | sp.spmatrix, k: int = 10) -> float:
    """Mean over users (with a relevant item) of hits in the top k divided by k."""
    hits, n_rel = _hits(top_items, relevant, k)
    users = n_rel > 0
    return float(hits[users].sum(axis=1).mean() / k) if users.any() else float("nan")


def recall_at_k(top_items: ArrayLike, relevant: ArrayLike | sp.spmatrix, k: int = 10) -> float:
    """Mean over users (with a relevant item) of hits in the top k divided by their number of relevant items."""
    hits, n_rel = _hits(top_items, relevant, k)
    users = n_rel > 0
    return float((hits[users].sum(axis=1) / n_rel[users]).mean()) if users.any() else float("nan")


def ndcg_at_k(top_items: ArrayLike, relevant: ArrayLike | sp.spmatrix, k: int = 10) -> float:
    """Mean binary NDCG@k: DCG = sum of 1/log2(rank + 1) over hits, divided by the DCG of a perfect list."""
    hits, n_rel = _hits(top_items, relevant, k)
    users = n_rel > 0
    if not users.any():
        return float("nan")
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits[users] @ disc
    ideal = np.cumsum(disc)[np.minimum(n_rel[users], k).astype(np.int64) - 1]
    return float(np.mean(dcg / ideal))

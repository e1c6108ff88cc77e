"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): a closed-form item-item model.

On the played matrix X (users x items; with play counts, each entry f(count) of `transform`),
B = I - P diag(1 / diag(P)) with P = (X'X + l2 I)^-1, i.e. B_ij = -P_ij / P_jj and a zero diagonal; a
user's scores are their played row times B. One dense Cholesky factorisation and inversion of an items x
items matrix: its time grows with the cube and its memory (and the saved B) with the square of the item count, so only the `max_items` most played items
are modelled (10,000: about 400 MB as float32 and tens of seconds on 2 cores). Other items rank below
every modelled one, by popularity, so filters can still reach them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

from flowtui.core import events as ev
from flowtui.core.params import param
from flowtui.core.recs import state_checks
from flowtui.core.recs.interactions import TRANSFORMS, InteractionMatrix, bm25_item_norm, count_transform
from flowtui.core.recs.recommender import PlayedParams, RecommenderBase, played_rows
from flowtui.core.registry import RecommenderSpec, register

#: Rows of P copied at a time when mirroring its lower triangle (bounds the temporary memory).
_BLOCK = 1024


@dataclass(frozen=True)
class EASEParams(PlayedParams):
    # 500: the best mean share of the best validation NDCG@10 over synthetic data, MovieLens 100K implicit
    # and listen/skip (bench/rec_tune.py, validation carved from training entries; docs/RECS.md)
    l2: float = param(
        500.0,
        "L2 regularisation added to the diagonal of X'X (lambda)",
        low=0.0,
        low_open=True,
        high=1e9,
        search=("log", 1.0, 20_000.0),
    )
    max_items: int = param(
        10_000,
        "items modelled, the most played (memory grows with its square, time with its cube)",
        low=1,
        high=60_000,
    )
    num_threads: int = param(
        0,
        "BLAS threads of the inversion (0: the BLAS default, every core; 1 on a busy shared machine)",
        low=0,
        high=1024,
    )
    transform: str = param(
        "binary",
        "play count weighting of an entry, f(count): binary (1), log1p (log(1 + count)) or bm25 (idf and"
        " length norm); binary when the data has no plays column",
        choices=TRANSFORMS,
    )


class EASE(RecommenderBase):
    """Closed-form item-item weights B over the `max_items` most played items."""

    name = "ease"
    params_cls = EASEParams
    params: EASEParams
    B_: np.ndarray  # (n_kept, n_kept) float32, zero diagonal
    kept_: np.ndarray  # item columns modelled, sorted
    popularity_: np.ndarray  # plays of every item (ranks the items not modelled)
    bm25_norm_: np.ndarray | None = None  # transform=bm25: each item's BM25 length norm in training

    step_name = "fit step"  # 1: the Gram matrix, 2: its inverse (a closed form has no epochs)

    def _n_epochs(self, matrix: InteractionMatrix) -> int:
        return 2

    def _fit(
        self, matrix: InteractionMatrix, on_event: ev.EventCallback | None, cancel: threading.Event | None
    ) -> None:
        transform, note = count_transform(matrix, self.params.transform, self.name)
        if note:
            self.notes.append(note)
        X = matrix.played(self.params.skip_weight, transform)
        self.bm25_norm_ = bm25_item_norm(matrix) if self.params.transform == "bm25" else None
        pop = np.bincount(X.indices, weights=X.data, minlength=matrix.shape[1]).astype(np.float32)
        kept = np.arange(matrix.shape[1])
        if matrix.shape[1] > self.params.max_items:
            kept = np.sort(np.lexsort((kept, -pop))[: self.params.max_items])
            self.notes.append(
                f"ease models the {len(kept):,} most played of {matrix.shape[1]:,} items (max_items); "
                "the others rank below them by popularity"
            )
        Xk = X.tocsc()[:, kept]
        G = np.asarray((Xk.T @ Xk).toarray(), dtype=np.float32)
        del Xk
        G[np.diag_indices_from(G)] += np.float32(self.params.l2)
        self._after_epoch(on_event, 1, 2)
        ev.check_cancel(cancel)
        with threadpool_limits(self.params.num_threads or None, "blas"):
            self.B_ = _ease_weights(G)
        self.kept_ = kept.astype(np.int64)
        self.popularity_ = pop
        self._after_epoch(on_event, 2, 2)

    def _score(self, history: InteractionMatrix, rows: np.ndarray) -> np.ndarray:
        n_items = len(self.item_ids_)
        columns = np.full(n_items, -1, np.int64)
        columns[self.kept_] = np.arange(len(self.kept_))
        Xh = played_rows(history, rows, self.params.skip_weight, columns)
        Xh = history.weigh_rows(Xh, rows, self.params.transform, columns, self.bm25_norm_)
        s = np.asarray(Xh @ self.B_, np.float32)
        if len(self.kept_) == n_items:
            return s
        # items not modelled: below the row's lowest modelled score, in order of popularity
        out = np.empty((len(rows), n_items), np.float32)
        low = s.min(axis=1, initial=0.0) - 2.0
        rank = self.popularity_ / (self.popularity_.max() + 1.0)
        out[:] = low[:, None] + rank[None, :]
        out[:, self.kept_] = s
        return out

    def _state(self) -> dict[str, np.ndarray]:
        bm25 = {} if self.bm25_norm_ is None else {"bm25_norm": self.bm25_norm_}
        return {"B": self.B_, "kept": self.kept_, "popularity": self.popularity_, **bm25}

    def _restore(self, arrays: dict[str, np.ndarray], folder: Path) -> None:
        check = state_checks
        n_items = len(arrays["item_ids"])
        kept = check.indices("kept", check.array(arrays, "kept", ndim=1, kind="iu"), n_items)
        if len(kept) > 1 and not (np.diff(kept.astype(np.int64)) > 0).all():
            raise ValueError("state.npz 'kept' items are not distinct and sorted")
        B = check.array(arrays, "B", ndim=2, kind="f")
        self.B_ = check.finite("B", check.shape("B", B, (len(kept), len(kept)))).astype(np.float32)
        self.kept_ = kept.astype(np.int64)
        self.popularity_ = check.item_vector(arrays, "popularity")
        if self.params.transform == "bm25":
            self.bm25_norm_ = check.item_vector(arrays, "bm25_norm")


def _ease_weights(G: np.ndarray) -> np.ndarray:
    """B = I - P diag(1/diag(P)), P = G^-1 for a symmetric positive definite, C-ordered G (overwritten):
    a Cholesky factorisation and inversion (LAPACK potrf + potri, 3x faster than a general inverse), in
    place. LAPACK reads G.T (Fortran order, no copy; the same matrix) and fills G's lower triangle."""
    c, info = lapack.spotrf(G.T, lower=0, overwrite_a=1, clean=0)
    if info != 0:
        raise ValueError(f"ease: X'X + l2 I is not positive definite (LAPACK info {info}); raise l2")
    _, info = lapack.spotri(c, lower=0, overwrite_c=1)
    if info != 0:
        raise ValueError(f"ease: inversion failed (LAPACK info {info}); raise l2")
    n = G.shape[0]
    for start in range(0, n, _BLOCK):  # mirror the lower triangle, a block of rows at a time
        stop = min(start + _BLOCK, n)
        G[start:stop, stop:] = G[stop:, start:stop].T
        blk = G[start:stop, start:stop]
        G[start:stop, start:stop] = np.tril(blk) + np.tril(blk, -1).T
    d = np.diag(G).copy()
    G /= -d[None, :]
    G[np.diag_indices_from(G)] = 0.0
    return G


register(
    RecommenderSpec(
        name="ease",
        description="EASE: closed-form item-item weights (Steck 2019) over the most played items",
        params_cls=EASEParams,
        factory=EASE,
        loader=EASE.load,
        quick={"max_items": 3000},
    )
)

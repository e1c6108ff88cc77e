"""The one recommender interface: every recommender (rbm, dbn, ease, als, item_knn, popularity...) is one.

A recommender is a scikit-learn-style estimator over an `InteractionMatrix` (users x items: 1 listened,
0 skipped, unseen masked; or implicit plays):

    model = registry.get_recommender("ease").build({"l2": 200.0})
    model.fit(matrix, on_event=print, cancel=None)       # BeforeFit / AfterEpoch / AfterFit; Cancelled
    scores = model.score(matrix, rows)                   # (len(rows), n_items) expected-listen scores
    items, vals = model.recommend(matrix, rows, n=10, allowed=mask)   # top-N, heard items excluded
    vec = model.fold_in(liked_columns)                   # a new user's stated tastes -> a score vector
    model.save(folder); type(model).load(folder, params) # arrays (.npz, no pickle), JSON, torch weights

`score` reads a user's history from the matrix it is given (its item vocabulary must be the model's,
`item_ids_`): a model keeps no per-user state, so the users it was fitted on, users added since and a
new user's stated tastes are all scored the same way. Higher is better; only the order within a row is
meaningful, except for models with `has_listen_proba`, whose `listen_proba` is P(listened | played).

Filters are a boolean `allowed` mask over items applied BEFORE ranking (`top_n`), so a genre or artist
filter finds every matching item, not only those in some longer list. `recs/store.py` writes and reads
model folders (`save_recommender`, `load_recommender`). Subclasses implement `_fit`, `_score`, `_state`
and `_restore`; adding a recommender is one module with its params dataclass, its class and one
`registry.register(RecommenderSpec(...))` call, plus its module's name in `registry._MODULES["recommender"]`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from flowtui.core import events as ev
from flowtui.core.params import param
from flowtui.core.recs import state_checks
from flowtui.core.recs.interactions import InteractionMatrix

if TYPE_CHECKING:
    from flowtui.core.modelfiles.data_match import DataDescription

__all__ = ["SCORE_CELLS", "PlayedParams", "RecommenderBase", "played_rows", "top_n"]

STATE_FILE = "state.npz"
STATE_JSON = "state.json"
#: Cells (users x items) of one dense block of scores: 16M float32 = 64 MB.
SCORE_CELLS = 1 << 24


@dataclass(frozen=True)
class PlayedParams:
    """What every implicit-feedback peer shares: how a skip counts in the played matrix."""

    skip_weight: float = param(
        1.0,
        "weight of a skipped entry as a play (0: skips dropped, 1: every play counts alike)",
        low=0.0,
        high=1.0,
    )


class RecommenderBase(ABC):
    """Fit on an InteractionMatrix, score users over all items, top-N with exclusions and filters,
    fold in a new user's tastes, save and load. Fitted state ends in `_` (scikit-learn's rules)."""

    name: ClassVar[str] = "recommender"
    params_cls: ClassVar[type]
    #: `listen_proba` gives P(listened | played): MAE and AUC use it (else AUC uses `score`).
    has_listen_proba: ClassVar[bool] = False
    #: Meaningful on listen/skip labels only (refuses implicit data).
    needs_labels: ClassVar[bool] = False
    #: Why an item ranks high, said plainly, when nothing the user did or chose explains it (None: the
    #: recommendation lists say "ranked high by NAME").
    plain_reason: ClassVar[str | None] = None
    # what one AfterEpoch step is called in progress lines: a closed-form model has fit steps, not epochs
    step_name: ClassVar[str] = "epoch"

    item_ids_: np.ndarray  # the item vocabulary, sorted (columns of every score row)
    implicit_: bool  # fitted on implicit data (plays, no listen/skip labels)
    n_users_: int
    fit_seconds_: float

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.params_cls()
        if not isinstance(self.params, self.params_cls):
            raise TypeError(f"{self.name} takes {self.params_cls.__name__}, got {type(params).__name__}")
        self.notes: list[str] = []
        self._t0 = 0.0
        #: What the model was trained on, when it was opened from a folder that records it (see
        #: `recommend.check_model_data`): the data's description and its content fingerprint.
        self.trained_on: DataDescription | None = None
        self.trained_fingerprint = ""

    # -- fitting ---------------------------------------------------------------------------------
    def fit(
        self,
        matrix: InteractionMatrix,
        *,
        on_event: ev.EventCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> Self:
        """Learn `matrix`; emits BeforeFit, AfterEpoch (where the model has steps) and AfterFit, and raises
        events.Cancelled when `cancel` is set (the model is then left unfitted)."""
        ev.check_cancel(cancel)
        if matrix.nnz == 0 or matrix.shape[1] == 0:
            raise ValueError(f"{self.name}: no interactions to learn from")
        if self.needs_labels and matrix.is_implicit:
            raise ValueError(f"{self.name} needs listen/skip labels; this data holds plays only")
        for attr in ("item_ids_", "implicit_", "n_users_", "fit_seconds_"):
            self.__dict__.pop(attr, None)
        self.notes = []
        self._t0 = time.perf_counter()
        ev.emit(on_event, ev.BeforeFit(self.name, self._n_epochs(matrix)))
        try:
            ev.check_cancel(cancel)
            self._fit(matrix, on_event, cancel)
            ev.check_cancel(cancel)
        except ev.Cancelled:
            ev.emit(on_event, ev.AfterFit(self.name, time.perf_counter() - self._t0, cancelled=True))
            raise
        self.item_ids_ = np.asarray(matrix.item_ids, np.int64).copy()
        self.implicit_ = matrix.is_implicit
        self.n_users_ = int(matrix.shape[0])
        self.fit_seconds_ = time.perf_counter() - self._t0
        ev.emit(on_event, ev.AfterFit(self.name, self.fit_seconds_))
        return self

    def _n_epochs(self, matrix: InteractionMatrix) -> int | None:
        """Steps announced by BeforeFit (None: unknown)."""
        return None

    def _after_epoch(
        self, on_event: ev.EventCallback | None, epoch: int, n_epochs: int, loss: float | None = None
    ) -> None:
        ev.emit(
            on_event,
            ev.AfterEpoch(self.name, epoch, n_epochs, loss, None, time.perf_counter() - self._t0),
        )

    @abstractmethod
    def _fit(
        self, matrix: InteractionMatrix, on_event: ev.EventCallback | None, cancel: threading.Event | None
    ) -> None:
        """Learn `matrix` (check `cancel` between steps)."""

    # -- scoring ---------------------------------------------------------------------------------
    def check_fitted(self) -> None:
        """Raise NotFittedError when `fit` (or `load`) has not run."""
        if not hasattr(self, "item_ids_"):
            raise NotFittedError(f"{self.name} is not fitted yet; call fit first")

    def _check_history(self, history: InteractionMatrix) -> None:
        if len(history.item_ids) != len(self.item_ids_) or not np.array_equal(
            history.item_ids, self.item_ids_
        ):
            raise ValueError(
                f"{self.name}: the history has {len(history.item_ids):,} items, the model was fitted on "
                f"{len(self.item_ids_):,}; build it with items=model.item_ids_"
            )

    def score(self, history: InteractionMatrix, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Expected-listen score of every item for the users at `rows` of `history` (all rows when None),
        given their entries there: float32 (len(rows), n_items), higher is better."""
        self.check_fitted()
        self._check_history(history)
        idx = _rows(history, rows)
        out = np.asarray(self._score(history, idx), np.float32)
        if out.shape != (len(idx), len(self.item_ids_)):
            raise AssertionError(f"{self.name}._score returned shape {out.shape}")
        return out

    @abstractmethod
    def _score(self, history: InteractionMatrix, rows: np.ndarray) -> np.ndarray:
        """Scores (len(rows), n_items) of the users at `rows` of `history` (checked: same items)."""

    def listen_proba(
        self, history: InteractionMatrix, rows: Sequence[int] | np.ndarray | None = None
    ) -> np.ndarray | None:
        """P(listened | played) of every item for those users, or None when the model has no such estimate."""
        return None

    def recommend(
        self,
        history: InteractionMatrix,
        rows: Sequence[int] | np.ndarray | None = None,
        n: int = 10,
        *,
        exclude_seen: bool = True,
        allowed: np.ndarray | None = None,
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(item columns, scores), each (len(rows), n), best first: the top-`n` items of each user among
        `allowed` (a boolean mask over items, applied before ranking), leaving out the items the user has
        an entry for in `history` when `exclude_seen`. A short row is padded with column -1."""
        idx = _rows(history, rows)
        n_items = len(history.item_ids)
        k = max(0, min(n, n_items))
        bs = max(1, min(batch_size or 1024, SCORE_CELLS // max(n_items, 1)))
        items = np.full((len(idx), k), -1, np.int64)
        vals = np.zeros((len(idx), k), np.float32)
        for start in range(0, len(idx), bs):
            part = idx[start : start + bs]
            scores = self.score(history, part)
            exclude = history.mask[part] if exclude_seen else None
            items[start : start + bs], vals[start : start + bs] = top_n(
                scores, k, exclude=exclude, allowed=allowed
            )
        return items, vals

    def fold_in(
        self, liked: Sequence[int] | np.ndarray, disliked: Sequence[int] | np.ndarray = ()
    ) -> np.ndarray:
        """The score vector (n_items,) of a new user whose only history is `liked` item columns (listened)
        and `disliked` ones (skipped; ignored by a model fitted on implicit data): cold start."""
        self.check_fitted()
        liked = np.asarray(liked, np.int64)
        disliked = np.zeros(0, np.int64) if self.implicit_ else np.asarray(disliked, np.int64)
        cols = np.concatenate([liked, disliked])
        labels = np.r_[np.ones(len(liked)), np.zeros(len(disliked))]
        history = InteractionMatrix.from_entries(
            self.item_ids_,
            np.zeros(len(cols), np.int64),
            cols,
            labels,
            user_ids=np.array([-1], np.int64),
            implicit_weight=0.1 if self.implicit_ else None,
        )
        vec: np.ndarray = self.score(history, [0])[0]
        return vec

    # -- persistence -----------------------------------------------------------------------------
    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """The fitted arrays that `_restore` needs (saved in state.npz)."""

    @abstractmethod
    def _restore(self, arrays: dict[str, np.ndarray], folder: Path) -> None:
        """Set the fitted state from `_state()`'s arrays (and any other file `save` wrote in `folder`)."""

    def save(self, folder: str | Path) -> None:
        """Write the fitted model into the existing `folder`: state.npz (arrays), state.json."""
        self.check_fitted()
        folder = Path(folder)
        arrays = {"item_ids": self.item_ids_, **self._state()}
        with (folder / STATE_FILE).open("wb") as fh:
            np.savez(fh, allow_pickle=False, **arrays)
        doc = {
            "model": self.name,
            "implicit": self.implicit_,
            "n_users": self.n_users_,
            "fit_seconds": self.fit_seconds_,
            "notes": self.notes,
        }
        (folder / STATE_JSON).write_text(json.dumps(doc, indent=2))

    @classmethod
    def load(cls, folder: str | Path, params: Any = None) -> Self:
        """The fitted model saved in `folder` by `save` (no code is executed from the files)."""
        folder = Path(folder)
        model = cls(params)
        with np.load(folder / STATE_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        doc = state_checks.state_doc(json.loads((folder / STATE_JSON).read_text()), cls.name)
        ids = state_checks.item_ids(arrays)
        model._restore(arrays, folder)
        model.item_ids_ = ids
        model.implicit_ = bool(doc.get("implicit", False))
        model.n_users_ = int(doc.get("n_users", 0))
        model.fit_seconds_ = float(doc.get("fit_seconds", 0.0))
        model.notes = [str(n) for n in doc.get("notes", [])]
        return model


_BLAS: Any = None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Hold BLAS to one thread: for one user's scores, BLAS threads cost more than they give (on a busy
    2-core machine a 1 x 64 by 64 x 50,000 product takes 9 ms on two threads, 1.3 ms on one). The
    threadpoolctl controller is made once: `threadpool_limits()` itself costs 2.5 ms a call."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    with _BLAS.limit(limits=1, user_api="blas"):
        yield


def played_rows(
    history: InteractionMatrix, rows: np.ndarray, skip_weight: float, columns: np.ndarray | None = None
) -> sp.csr_matrix:
    """The played matrix (see `InteractionMatrix.played`) of the users at `rows` only, float32 CSR; with
    `columns` (an (n_items,) map from item column to a new column, -1 = drop) restricted and renumbered."""
    sub = history.labels[rows]
    if history.is_implicit:
        data = np.ones(sub.nnz, np.float32)
    else:
        y = sub.data.astype(np.float32)
        data = y + np.float32(skip_weight) * (1.0 - y)
    indices, indptr, width = sub.indices, sub.indptr, sub.shape[1]
    if columns is not None:
        new = columns[indices]
        keep = new >= 0
        counts = np.bincount(np.repeat(np.arange(len(rows)), np.diff(indptr))[keep], minlength=len(rows))
        indptr = np.r_[0, np.cumsum(counts)]
        indices, data, width = new[keep], data[keep], int((columns >= 0).sum())
    out = sp.csr_matrix(
        (data, indices.astype(np.int32), np.array(indptr, copy=True)), shape=(len(rows), width)
    )
    if not skip_weight:
        out.eliminate_zeros()
    return out


def _rows(history: InteractionMatrix, rows: Sequence[int] | np.ndarray | None) -> np.ndarray:
    if rows is None:
        return np.arange(history.shape[0], dtype=np.int64)
    idx = np.atleast_1d(np.asarray(rows, np.int64))
    if len(idx) and (idx.min() < 0 or idx.max() >= history.shape[0]):
        raise IndexError(f"user rows must lie in 0..{history.shape[0] - 1}")
    return idx


def top_n(
    scores: np.ndarray,
    n: int,
    *,
    exclude: sp.spmatrix | np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(item columns, scores) of the `n` best items of each row of `scores` (n_users, n_items), best first.

    `exclude` (same shape, sparse or dense, non-zero or stored = excluded: items already heard) and
    items where `allowed` (a boolean (n_items,) or (n_users, n_items) mask) is False are never returned;
    a row with fewer candidates is padded with column -1 (score 0). Ties are broken by the lower column,
    so lists are reproducible."""
    s = np.array(scores, dtype=np.float32, copy=True, ndmin=2)
    n_rows, n_items = s.shape
    s[np.isnan(s)] = -np.inf
    if exclude is not None:
        if sp.issparse(exclude):
            ex = sp.csr_matrix(exclude)
            s[np.repeat(np.arange(n_rows), np.diff(ex.indptr)), ex.indices] = -np.inf
        else:
            s[np.asarray(exclude, bool)] = -np.inf
    if allowed is not None:
        s[np.broadcast_to(~np.asarray(allowed, bool), s.shape)] = -np.inf
    k = max(0, min(int(n), n_items))
    if k == 0 or n_rows == 0:
        return np.full((n_rows, k), -1, np.int64), np.zeros((n_rows, k), np.float32)
    part = (
        np.argpartition(-s, k - 1, axis=1)[:, :k] if k < n_items else np.tile(np.arange(n_items), (n_rows, 1))
    )
    r = np.arange(n_rows)[:, None]
    kth = s[r, part].min(axis=1)
    # rows whose k-th value ties with items left outside the partition: take the lowest columns among the tie
    amb = np.flatnonzero((s >= kth[:, None]).sum(axis=1) > k)
    if len(amb):
        sa, ka = s[amb], kth[amb]
        above = sa > ka[:, None]
        tie = sa == ka[:, None]
        room = k - above.sum(axis=1)
        sel = above | (tie & (np.cumsum(tie, axis=1) <= room[:, None]))
        part[amb] = np.nonzero(sel)[1].reshape(len(amb), k)
    vals = s[r, part]
    order = np.lexsort((part, -vals), axis=1) if n_rows else part
    part = part[r, order]
    vals = vals[r, order]
    bad = ~np.isfinite(vals)
    part[bad] = -1
    vals[bad] = 0.0
    return part.astype(np.int64), vals.astype(np.float32)

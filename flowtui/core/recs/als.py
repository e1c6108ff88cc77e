"""Implicit-feedback ALS (Hu, Koren and Volinsky 2008) from the `implicit` library.

The played matrix (a skip weighted `skip_weight`; with play counts, each entry f(count) of `transform`)
times `alpha` is the confidence of each play, 1 + alpha f(count) in implicit's convention; unseen entries
are negatives of confidence 1. `implicit.cpu.als.AlternatingLeastSquares` alternates exact
least-squares solves (conjugate gradient) for user and item factors, `iterations` times; each iteration
emits AfterEpoch and checks the cancel event (through implicit's fit callback). A user's scores come from
their factors recomputed from their history (implicit's `recalculate_user`, an exact solve), so known
users, users added since and a new user's stated tastes are scored alike and only item factors are saved.
BLAS is held to one thread while implicit runs its own threads (implicit's advice).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flowtui.core import events as ev
from flowtui.core.params import param
from flowtui.core.recs import state_checks
from flowtui.core.recs.interactions import InteractionMatrix, count_transform
from flowtui.core.recs.recommender import PlayedParams, RecommenderBase, one_blas_thread, played_rows
from flowtui.core.registry import RecommenderSpec, register

#: The count transforms of ALS (bm25's idf and length norm are not a confidence).
ALS_TRANSFORMS = ("binary", "log1p")
#: Users solved on one thread (see `ALS.user_factors`).
SMALL_BATCH = 64


@dataclass(frozen=True)
class ALSParams(PlayedParams):
    # factors, regularization, alpha: the best mean share of the best validation NDCG@10 over synthetic
    # data, MovieLens 100K implicit and listen/skip (bench/rec_tune.py; docs/RECS.md). The library's own
    # defaults (100, 0.01, 1) and the former ones (64, 0.1, 10) overfit: they ranked below popularity on
    # the bundled sample.
    factors: int = param(128, "latent factors", low=1, high=4096, search=("log", 16, 512))
    regularization: float = param(
        50.0, "L2 regularisation of the factors", low=0.0, high=1e6, search=("log", 0.01, 1000.0)
    )
    alpha: float = param(
        5.0,
        "confidence of a play (the played matrix is multiplied by it)",
        low=0.0,
        low_open=True,
        high=1e6,
        search=("log", 0.1, 100.0),
    )
    iterations: int = param(15, "ALS sweeps (users then items)", low=1, high=1000, search=("linear", 5, 30))
    random_state: int | None = param(
        0, "seed of the initial factors (null: a fresh seed)", low=0, high=2**32 - 1
    )
    num_threads: int = param(0, "threads of implicit's solvers (0: every core)", low=0, high=1024)
    transform: str = param(
        "binary",
        "play count weighting, confidence 1 + alpha f(count): binary (f = 1) or log1p (log(1 + count));"
        " binary when the data has no plays column",
        choices=ALS_TRANSFORMS,
    )


def _new_als(p: ALSParams) -> Any:
    """An unfitted implicit ALS (imported here: importing this module stays cheap)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # implicit warns at construction when BLAS is multi-threaded
        return AlternatingLeastSquares(
            factors=p.factors,
            regularization=p.regularization,
            alpha=p.alpha,
            iterations=p.iterations,
            random_state=p.random_state,
            num_threads=p.num_threads,
            calculate_training_loss=False,
        )


class ALS(RecommenderBase):
    """implicit's ALS over the played matrix; users folded in from their history at scoring time."""

    name = "als"
    params_cls = ALSParams
    params: ALSParams
    item_factors_: np.ndarray  # (n_items, factors) float32

    def _n_epochs(self, matrix: InteractionMatrix) -> int:
        return self.params.iterations

    def _fit(
        self, matrix: InteractionMatrix, on_event: ev.EventCallback | None, cancel: threading.Event | None
    ) -> None:
        from threadpoolctl import threadpool_limits

        transform, note = count_transform(matrix, self.params.transform, self.name)
        if note:
            self.notes.append(note)
        X = matrix.played(self.params.skip_weight, transform).astype(np.float32)
        als = _new_als(self.params)
        n = self.params.iterations

        def callback(iteration: int, elapsed: float, loss: float | None) -> None:
            self._after_epoch(on_event, iteration + 1, n, loss)
            ev.check_cancel(cancel)  # raised inside implicit's loop: it stops there

        with threadpool_limits(1, "blas"):
            als.fit(X, show_progress=False, callback=callback)
        self.item_factors_ = np.ascontiguousarray(als.item_factors, np.float32)
        self._als = als

    def _solver(self) -> Any:
        als = getattr(self, "_als", None)
        if als is None:
            als = _new_als(self.params)
            als.item_factors = self.item_factors_
            als.user_factors = np.zeros((1, self.item_factors_.shape[1]), np.float32)
            self._als = als
        return als

    def user_factors(self, history: InteractionMatrix, rows: np.ndarray) -> np.ndarray:
        """The factors of the users at `rows` of `history`, solved from their plays there (exact least
        squares). A few users are solved on one thread: starting implicit's thread pool costs more than the
        solve (36 ms against 0.1 ms for one user on a busy 2-core machine)."""
        from threadpoolctl import threadpool_limits

        rows = np.asarray(rows, np.int64)
        X = history.weigh_rows(
            played_rows(history, rows, self.params.skip_weight), rows, self.params.transform
        )
        solver = self._solver()
        if len(rows) <= SMALL_BATCH:
            solver.num_threads = 1
            uf = solver.recalculate_user(np.arange(len(rows)), X)
        else:
            solver.num_threads = self.params.num_threads
            with threadpool_limits(1, "blas"):
                uf = solver.recalculate_user(np.arange(len(rows)), X)
        out: np.ndarray = np.asarray(uf, np.float32).reshape(len(rows), -1)
        return out

    def _score(self, history: InteractionMatrix, rows: np.ndarray) -> np.ndarray:
        uf = self.user_factors(history, rows)
        if len(rows) > SMALL_BATCH:
            scores: np.ndarray = uf @ self.item_factors_.T
            return scores
        with one_blas_thread():
            small: np.ndarray = uf @ self.item_factors_.T
        return small

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors_}

    def _restore(self, arrays: dict[str, np.ndarray], folder: Path) -> None:
        factors = state_checks.array(arrays, "item_factors", ndim=2, kind="f")
        expected = (len(arrays["item_ids"]), self.params.factors)
        factors = state_checks.finite("item_factors", state_checks.shape("item_factors", factors, expected))
        self.item_factors_ = np.ascontiguousarray(factors, np.float32)


register(
    RecommenderSpec(
        name="als",
        description="implicit-feedback ALS (Hu et al. 2008) from the implicit library",
        params_cls=ALSParams,
        factory=ALS,
        loader=ALS.load,
        quick={"iterations": 5, "factors": 32},
    )
)

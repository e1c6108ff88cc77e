"""The hybrid Flow model: LightGBM with a collaborative score as one more feature.

`hybrid` is LightGBM (`classifiers.LightGBMModel`) whose feature matrix gains `rbm_score`, the listen
probability the `rbm` model (`flowtui.core.flow.rbm_classifier`) gives each row's (user, media) pair. The score
is computed leak-free: each training row's score comes from an RBM fitted on the other folds of rows, later
rows' score from an RBM fitted on all rows. Its parameters are LightGBM's, `rbm_folds`, and the RBM's as
`rbm_*` keys. Nothing here imports torch or lightgbm at module import.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from flowtui.core import events as ev
from flowtui.core.events import EventCallback
from flowtui.core.flow.classifiers import LightGBMModel, LightGBMParams
from flowtui.core.flow.rbm_classifier import RBMModel
from flowtui.core.params import param
from flowtui.core.recs.rbm_params import RBMParams
from flowtui.core.recs.rbm_source import device_preflight
from flowtui.core.registry import ModelSpec, register

SCORE_FEATURE = "rbm_score"


@dataclass(frozen=True)
class HybridParams(LightGBMParams):
    rbm_folds: int = param(3, "folds of the out-of-fold RBM scores", low=2, high=20)
    # the hybrid needs listen probabilities only: no exposure network
    rbm: RBMParams = RBMParams(exposure_weight=0.0)  # noqa: RUF009 (frozen: safe to share)


class HybridModel(LightGBMModel):
    """LightGBM plus the RBM's score as a feature, out-of-fold for training rows (leak-free)."""

    name = "hybrid"
    params_cls: ClassVar[type] = HybridParams
    params: HybridParams

    def _rbm_params(self) -> RBMParams:
        return self.params.rbm

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        rows: pd.DataFrame,
        *,
        on_event: EventCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> HybridModel:
        """Out-of-fold RBM scores for the training rows, an RBM on all rows for later rows, then LightGBM."""
        y = np.asarray(y)
        n_folds = self.params.rbm_folds
        rng = np.random.default_rng(self.random_state)
        fold = rng.integers(0, n_folds, len(rows))
        score = np.zeros(len(rows), np.float64)
        t0 = time.perf_counter()
        for f in range(n_folds):
            ev.check_cancel(cancel)
            ev.emit(on_event, ev.Progress("hybrid: out-of-fold RBM scores", f, n_folds))
            inside = fold != f
            rbm = RBMModel(self._rbm_params()).fit(None, y[inside], rows[inside], cancel=cancel)
            score[~inside] = rbm.predict_proba(None, rows[~inside])
        ev.emit(on_event, ev.Progress("hybrid: out-of-fold RBM scores", n_folds, n_folds))
        self.rbm_ = RBMModel(self._rbm_params()).fit(None, y, rows, cancel=cancel)
        ev.emit(on_event, ev.Log(f"hybrid: {n_folds + 1} RBMs fitted in {time.perf_counter() - t0:.1f}s"))
        super().fit(
            X.assign(**{SCORE_FEATURE: score.astype(np.float32)}), y, rows, on_event=on_event, cancel=cancel
        )
        self.notes.append(f"{SCORE_FEATURE}: out-of-fold ({n_folds} folds) RBM scores for training rows")
        return self

    def predict_proba(self, X: pd.DataFrame, rows: pd.DataFrame | None = None) -> np.ndarray:
        """LightGBM's probability with the full-data RBM's score of each row added."""
        if rows is None:
            raise ValueError("hybrid needs the raw rows (user_id, media_id) to score")
        if not hasattr(self, "rbm_"):
            raise NotFittedError("hybrid is not fitted yet; call fit first")
        s = self.rbm_.predict_proba(None, rows).astype(np.float32)
        return super().predict_proba(X.assign(**{SCORE_FEATURE: s}), rows)

    def _save_files(self, folder: Path) -> None:
        super()._save_files(folder)
        sub = Path(folder) / "rbm"
        sub.mkdir()
        self.rbm_.save(sub)

    def _load_files(self, folder: Path, state: dict[str, Any]) -> None:
        super()._load_files(folder, state)
        self.rbm_ = RBMModel.load(Path(folder) / "rbm", self._rbm_params())


register(
    ModelSpec(
        name="hybrid",
        description="LightGBM with the out-of-fold RBM score as an extra feature",
        params_cls=HybridParams,
        factory=HybridModel,
        loader=HybridModel.load,
        preflight=device_preflight,
        quick={
            "n_estimators": 100,
            "learning_rate": 0.1,
            "min_child_samples": 10,
            "early_stopping_rounds": 20,
            "rbm_folds": 2,
            "rbm_n_iter": 5,
            "rbm_n_components": 64,
        },
        family="hybrid",
    )
)

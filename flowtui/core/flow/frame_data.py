"""A run's rows in a pandas frame on this machine: the `RunData` (flow/run_data.py) of `run(frame, ...)`.

The holdout folds come from `split.holdout`, each round's matrices from one feature pass
(`features.fold_matrices`), the final fit's from `features.training_matrix`; `top_k` keeps the features a
random forest ranks highest. Models are built from the registry and fitted on those matrices.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from flowtui.core import events as ev
from flowtui.core import registry
from flowtui.core.data.schema import LABEL
from flowtui.core.events import EventCallback
from flowtui.core.flow import features, split
from flowtui.core.flow.features import FeatureSettings
from flowtui.core.flow.store import TrainedModel, library_versions
from flowtui.core.modelfiles import fingerprint
from flowtui.core.modelfiles.data_match import describe_data
from flowtui.core.registry import FlowModel

__all__ = ["FrameData", "fit_final", "model_columns", "select_features"]


def select_features(
    X: pd.DataFrame,
    y: np.ndarray,
    k: int,
    *,
    random_state: int | None = 0,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[str]:
    """The `k` features a random forest ranks highest (fitted on at most 200k rows)."""
    if k < 1:
        raise ValueError(f"top_k must be at least 1, got {k}")
    if k >= X.shape[1]:
        return [str(c) for c in X.columns]
    forest = registry.get_spec("random_forest").build(
        {
            "n_estimators": 50,
            "max_depth": 10,
            "min_samples_leaf": 50,
            "max_rows": 200_000,
            "random_state": random_state,
        }
    )
    forest.fit(X, y, X.iloc[:0], on_event=on_event, cancel=cancel)
    ranked = forest.feature_importances()
    assert ranked is not None
    keep = [str(c) for c in ranked.index[:k]]
    ev.emit(on_event, ev.Log(f"top {k} features by random-forest importance: {', '.join(keep)}"))
    return keep


def model_columns(name: str, X: pd.DataFrame, selected: list[str] | None) -> pd.DataFrame:
    """The columns of `X` model `name` sees: the selected features, except for baselines (their own column)."""
    if selected is None or registry.get_spec(name).baseline:
        return X
    return X[selected]


@dataclass(frozen=True)
class _FoldData:
    """One holdout round's matrices on this machine (a `HoldoutRound`; pickled whole to a task executor)."""

    X: pd.DataFrame
    y: np.ndarray
    rows: pd.DataFrame
    Xt: pd.DataFrame
    rows_t: pd.DataFrame
    labels: np.ndarray
    selected: list[str] | None

    def fit(
        self,
        name: str,
        params: Mapping[str, object] | None,
        *,
        on_event: EventCallback | None,
        cancel: threading.Event | None,
    ) -> FlowModel:
        model = registry.get_spec(name).build(params)
        model.fit(
            model_columns(name, self.X, self.selected), self.y, self.rows, on_event=on_event, cancel=cancel
        )
        return model

    def score(self, name: str, model: FlowModel) -> np.ndarray:
        Xt = model_columns(name, self.Xt, self.selected)
        return np.asarray(model.predict_proba(Xt, self.rows_t), dtype=np.float64)


@dataclass(frozen=True)
class _AllRows:
    """Every training row of a frame with its features (the `FinalRows` of `FrameData`)."""

    matrices: tuple[pd.DataFrame, np.ndarray, pd.DataFrame]
    selected: list[str] | None
    settings: FeatureSettings
    frame: pd.DataFrame

    def fit_final(
        self,
        name: str,
        params: Mapping[str, object],
        *,
        holdout: Mapping[str, Any] | None,
        on_event: EventCallback | None,
        cancel: threading.Event | None,
        own_cancel: threading.Event | None,
    ) -> TrainedModel:
        return fit_final(
            name,
            params,
            self.matrices,
            self.selected,
            self.settings,
            holdout=holdout,
            fingerprint_of=self.frame,
            on_event=on_event,
            cancel=cancel,
            own_cancel=own_cancel,
        )


class FrameData:
    """A run's rows in a pandas frame on this machine: the `RunData` of `run(frame, ...)`.

    Its holdout folds (`split.holdout`) are computed once and kept for the rounds that read them."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._folds: list[split.Fold] = []
        self._contexts: tuple[int, ...] | None = None

    @property
    def source(self) -> str | None:
        source = self.frame.attrs.get("source")
        return None if source is None else str(source)

    def _folds_of(self, rounds: int, contexts: Sequence[int] | None) -> list[split.Fold]:
        key = tuple(contexts) if contexts is not None else None
        if key != self._contexts or len(self._folds) < rounds:
            self._folds = split.holdout(self.frame, rounds=rounds, contexts=contexts)
            self._contexts = key
        return self._folds

    def holdout_rounds(self, rounds: int, contexts: Sequence[int] | None) -> int:
        return len(self._folds_of(rounds, contexts))

    def holdout_round(
        self,
        r: int,
        contexts: Sequence[int] | None,
        settings: FeatureSettings,
        *,
        on_event: EventCallback | None,
        cancel: threading.Event | None,
    ) -> _FoldData:
        fold = self._folds_of(r + 1, contexts)[r]
        X, y, rows, Xt, rows_t = features.fold_matrices(
            fold.history, fold.targets, smoothing=settings.smoothing, flow_only=settings.flow_only
        )
        labels = rows_t[LABEL].to_numpy().astype(np.int8)
        selected = None
        if settings.top_k is not None:
            selected = select_features(X, y, settings.top_k, on_event=on_event, cancel=cancel)
        return _FoldData(X, y, rows, Xt, rows_t, labels, selected)

    def final_rows(
        self, settings: FeatureSettings, *, on_event: EventCallback | None, cancel: threading.Event | None
    ) -> _AllRows:
        matrices = features.training_matrix(
            self.frame, smoothing=settings.smoothing, flow_only=settings.flow_only
        )
        selected = None
        if settings.top_k is not None:
            selected = select_features(
                matrices[0], matrices[1], settings.top_k, on_event=on_event, cancel=cancel
            )
        return _AllRows(matrices, selected, settings, self.frame)


def fit_final(
    name: str,
    params: Mapping[str, object],
    matrices: tuple[pd.DataFrame, np.ndarray, pd.DataFrame],
    selected: list[str] | None,
    settings: FeatureSettings,
    *,
    holdout: Mapping[str, Any] | None = None,
    fingerprint_of: pd.DataFrame,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
    own_cancel: threading.Event | None = None,
) -> TrainedModel:
    """`name` fitted on every training row (`matrices` = the training matrix of all rows), ready to save.

    `own_cancel` is the model's own cancel flag: setting it raises `events.ModelCancelled`."""
    spec = registry.get_spec(name)
    X, y, rows = matrices
    Xm = model_columns(name, X, selected)
    model = spec.build(params)
    try:
        model.fit(
            Xm,
            y,
            rows,
            on_event=on_event,
            cancel=ev.model_cancel(cancel, {name: own_cancel} if own_cancel else None, name),
        )
    except ev.Cancelled as exc:
        ev.reraise_for_model(exc, cancel)
    return TrainedModel(
        name=name,
        model=model,
        features=[str(c) for c in Xm.columns],
        params=dict(spec.params(params)),
        smoothing=settings.smoothing,
        flow_only=settings.flow_only,
        holdout=dict(holdout or {}),
        fingerprint=(fp := fingerprint(fingerprint_of)),
        data=describe_data(fingerprint_of, fp),
        notes=list(model.notes),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        libraries=library_versions(),
    )

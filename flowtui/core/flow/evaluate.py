"""The pieces of a run: the honest holdout leaderboard, the final fit on all rows, and prediction.

Every model is scored the way the DSG17 test scores it: fitted on the training rows of each holdout fold's
history (features from strictly earlier rows) and scored on each user's held-out last Flow row. Metrics are
pooled over the rounds. The same feature matrices feed every model of a run. `core/run.py` puts the
pieces together; the front ends call it, not these. The loop of `holdout_leaderboard` reads its rows
through a `RunData` (flow/run_data.py): `FrameData` here, a cluster's partitions in core/cluster.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from flowtui.core import events as ev
from flowtui.core import registry
from flowtui.core.data.schema import LABEL
from flowtui.core.errors import DataError, ParamError
from flowtui.core.events import EventCallback
from flowtui.core.executor import Executor, InlineExecutor
from flowtui.core.flow import features, split
from flowtui.core.flow.features import FeatureSettings
from flowtui.core.flow.leaderboard import LEAK_AUC, RECORD_KEYS, Fit, Leaderboard, LeaderboardRow, Tally
from flowtui.core.flow.run_data import HoldoutRound, RunData
from flowtui.core.flow.store import TrainedModel, fingerprint, library_versions
from flowtui.core.modelfiles.data_match import describe_data
from flowtui.core.registry import FlowModel

__all__ = [
    "LEAK_AUC",
    "RECORD_KEYS",
    "FeatureSettings",
    "FrameData",
    "Leaderboard",
    "LeaderboardRow",
    "TrainedModel",
    "fit_and_score",
    "fit_final",
    "holdout_leaderboard",
    "model_columns",
    "predict",
    "select_features",
]


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


def fit_and_score(
    task: tuple[int, str],
    *,
    data: HoldoutRound,
    round_: int,
    n_steps: int,
    params: Mapping[str, Mapping[str, object]],
    on_event: EventCallback | None,
    cancel: threading.Event | None,
    model_cancel: Mapping[str, threading.Event] | None = None,
) -> Fit:
    """One model of one holdout round (`task`: its progress step and name), fitted on the round's history
    and scored on its targets. A cancel by the model's own flag raises `events.ModelCancelled`."""
    step, name = task
    ev.emit(on_event, ev.Progress("evaluate", step, n_steps, f"{name}, round {round_ + 1}"))
    t0 = time.perf_counter()
    try:
        model = data.fit(
            name, params.get(name), on_event=on_event, cancel=ev.model_cancel(cancel, model_cancel, name)
        )
    except ev.Cancelled as exc:
        ev.reraise_for_model(exc, cancel)
    t1 = time.perf_counter()
    p = data.score(name, model)
    t2 = time.perf_counter()
    if p.shape != (len(data.labels),) or not np.isfinite(p).all():
        raise ValueError(f"predict_proba returned {p.shape} values with non-finite entries")
    return Fit(model, p, t1 - t0, t2 - t1)


def _count_rounds(data: RunData, rounds: int, contexts: Sequence[int] | None) -> int:
    """The holdout rounds to run: DataError without any target, ParamError when fewer than `rounds`."""
    n_rounds = data.holdout_rounds(rounds, contexts)
    where = f" in contexts {sorted(contexts)}" if contexts else ""
    source = data.source
    if n_rounds == 0:
        raise DataError(
            source, f"no user has a Flow row (listen_type 1){where} after earlier rows: nothing to hold out"
        )
    if n_rounds < rounds:  # each round needs one more Flow row per user: refuse rounds with no targets
        raise ParamError(
            f"rounds must be at most {n_rounds} for {source or 'this data'}, got {rounds}: no user has "
            f"more than {n_rounds} Flow row{'s' if n_rounds > 1 else ''}{where} after earlier rows to hold out"
        )
    return n_rounds


def holdout_leaderboard(
    frame: pd.DataFrame | RunData,
    names: Sequence[str],
    params: Mapping[str, Mapping[str, object]],
    settings: FeatureSettings,
    *,
    rounds: int = 1,
    target_contexts: Sequence[int] | None = None,
    executor: Executor | None = None,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
    model_cancel: Mapping[str, threading.Event] | None = None,
) -> Leaderboard:
    """The holdout leaderboard of `names`, whose `params` (flat, per model) are already resolved.

    `frame`: the rows, a pandas frame or any `RunData` (a cluster's). A model that raises gets a failed
    row; `events.Cancelled` propagates; a model whose own flag in `model_cancel` is set gets a failed row
    "cancelled". DataError when no user has a Flow row to hold out; ParamError when `rounds` asks for more
    rounds than any user has Flow rows to hold out. The fits of one round run on `executor` (inline by
    default)."""
    data = FrameData(frame) if isinstance(frame, pd.DataFrame) else frame
    n_rounds = _count_rounds(data, rounds, target_contexts)
    run_on = executor or InlineExecutor()
    n_steps = n_rounds * (len(names) + 1)
    tally = Tally(list(names))
    selected: list[str] | None = None
    for r in range(n_rounds):
        ev.check_cancel(cancel)
        step = r * (len(names) + 1)
        ev.emit(on_event, ev.Progress("evaluate", step, n_steps, f"features, round {r + 1}"))
        fold = data.holdout_round(r, target_contexts, settings, on_event=on_event, cancel=cancel)
        tally.ys.append(fold.labels)
        selected = fold.selected
        task = functools.partial(
            fit_and_score,
            data=fold,
            round_=r,
            n_steps=n_steps,
            params=params,
            on_event=on_event,
            cancel=cancel,
            model_cancel=model_cancel,
        )
        todo = [(step + 1 + i, n) for i, n in enumerate(names) if n not in tally.errors]
        _tally_outcomes(tally, todo, run_on.map(task, todo), first_round=r == 0, on_event=on_event)
        del fold, task  # a cluster's round holds its rows in the workers' memory until released
    ev.emit(on_event, ev.Progress("evaluate", n_steps, n_steps, "done"))
    board = tally.leaderboard(rounds=n_rounds, selected=selected)
    if board.leak_warning:
        ev.emit(on_event, ev.Log(board.leak_warning, level="warning"))
    return board


def _tally_outcomes(
    tally: Tally,
    todo: Sequence[tuple[int, str]],
    outcomes: Sequence[Fit | Exception],
    *,
    first_round: bool,
    on_event: EventCallback | None,
) -> None:
    """One round's fits into the tally: a model that failed (or was cancelled) gets its error."""
    for (_, name), outcome in zip(todo, outcomes, strict=True):
        if isinstance(outcome, ev.ModelCancelled):
            tally.errors[name] = "cancelled by the user"
            ev.emit(on_event, ev.Log(f"{name} cancelled", level="warning"))
        elif isinstance(outcome, Exception):
            tally.errors[name] = f"{type(outcome).__name__}: {' '.join(str(outcome).split())}"
            ev.emit(on_event, ev.Log(f"{name} failed: {tally.errors[name]}", level="warning"))
        else:
            tally.add(name, outcome, first_round=first_round)


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


def predict(
    trained: TrainedModel,
    train_frame: pd.DataFrame,
    test_frame: pd.DataFrame,
    *,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> pd.DataFrame:
    """A submission: `sample_id, is_listened`, one probability per test row, in the test file's order.

    Test features come from the whole train history (every test row is later than its user's train rows).
    """
    if "sample_id" not in test_frame.columns:
        raise DataError(None, "test data lacks a sample_id column")
    ev.check_cancel(cancel)
    ev.emit(on_event, ev.Progress("predict", 0, 1, "test features"))
    X, rows = features.target_matrix(train_frame, test_frame, smoothing=trained.smoothing)
    ev.check_cancel(cancel)
    p = np.asarray(trained.model.predict_proba(X[trained.features], rows), dtype=np.float64)
    if p.shape != (len(test_frame),) or not np.isfinite(p).all():
        raise ValueError(f"{trained.name} returned {p.shape} predictions for {len(test_frame)} test rows")
    ev.emit(on_event, ev.Progress("predict", 1, 1, "done"))
    return pd.DataFrame({"sample_id": test_frame["sample_id"].to_numpy(), "is_listened": p})

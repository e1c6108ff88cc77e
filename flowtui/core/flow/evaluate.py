"""The pieces of a run: the honest holdout leaderboard, the final fit on all rows, and prediction.

Every model is scored the way the DSG17 test scores it: fitted on the training rows of each holdout fold's
history (features from strictly earlier rows) and scored on each user's held-out last Flow row. Metrics are
pooled over the rounds. The same feature matrices feed every model of a run. `core/run.py` puts the
pieces together; the front ends call it, not these.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from flowtui.core import events as ev
from flowtui.core import metrics, registry
from flowtui.core.data.schema import LABEL, DataError
from flowtui.core.events import EventCallback
from flowtui.core.executor import Executor, InlineExecutor
from flowtui.core.flow import features, split
from flowtui.core.flow.features import FeatureSettings
from flowtui.core.flow.store import TrainedModel, fingerprint, library_versions
from flowtui.core.registry import FlowModel

__all__ = [
    "LEAK_AUC",
    "FeatureSettings",
    "Leaderboard",
    "LeaderboardRow",
    "TrainedModel",
    "fit_final",
    "holdout_leaderboard",
    "predict",
    "select_features",
]

#: A holdout AUC above this is almost certainly a leak (honest DSG17 holdouts score 0.62-0.72).
LEAK_AUC = 0.8
RECORD_KEYS = ("model", "auc", "logloss", "accuracy", "fit_seconds", "predict_seconds")


@dataclass
class LeaderboardRow:
    """Scores of one model, pooled over the holdout rounds (None where the model failed)."""

    model: str
    auc: float | None
    logloss: float | None
    accuracy: float | None
    fit_seconds: float
    predict_seconds: float
    notes: list[str] = field(default_factory=list)
    baseline: bool = False
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def record(self) -> dict[str, Any]:
        """The row as a JSON-ready dict with exactly the keys of `RECORD_KEYS`."""
        return {k: getattr(self, k) for k in RECORD_KEYS}


@dataclass
class Leaderboard:
    """A holdout leaderboard: rows sorted by AUC (failed models last) and what the charts need."""

    rows: list[LeaderboardRow]
    #: Per model, the pooled holdout labels and predicted probabilities (for ROC curves).
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    #: Per model, feature importances of its round-0 fit where the model has them.
    importances: dict[str, pd.Series] = field(default_factory=dict)
    leak_warning: str | None = None
    n_targets: int = 0
    rounds: int = 0
    #: The features kept by `top_k` selection (None when all features were used).
    selected_features: list[str] | None = None

    def to_records(self) -> list[dict[str, Any]]:
        """The rows as dicts with keys `model, auc, logloss, accuracy, fit_seconds, predict_seconds`."""
        return [r.record() for r in self.rows]

    def row(self, name: str) -> LeaderboardRow:
        """The row of model `name`."""
        for r in self.rows:
            if r.model == name:
                return r
        raise KeyError(name)


def _scores(y: np.ndarray, p: np.ndarray) -> tuple[float | None, float | None, float | None]:
    if len(y) == 0:
        return None, None, None
    auc = float(metrics.auc(y, p)) if len(np.unique(y)) == 2 else None
    return auc, float(metrics.logloss(y, p)), float(metrics.accuracy(y, p))


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


@dataclass
class _Fit:
    model: FlowModel
    p: np.ndarray
    fit_seconds: float
    predict_seconds: float


def model_columns(name: str, X: pd.DataFrame, selected: list[str] | None) -> pd.DataFrame:
    """The columns of `X` model `name` sees: the selected features, except for baselines (their own column)."""
    if selected is None or registry.get_spec(name).baseline:
        return X
    return X[selected]


@dataclass(frozen=True)
class _FoldData:
    X: pd.DataFrame
    y: np.ndarray
    rows: pd.DataFrame
    Xt: pd.DataFrame
    rows_t: pd.DataFrame
    yt: np.ndarray
    selected: list[str] | None
    round: int
    n_steps: int


def _fit_and_score(
    task: tuple[int, str],
    *,
    params: Mapping[str, Mapping[str, object]],
    data: _FoldData,
    on_event: EventCallback | None,
    cancel: threading.Event | None,
) -> _Fit:
    """One model of one holdout round: fitted on the fold's history, scored on its targets."""
    step, name = task
    ev.emit(on_event, ev.Progress("evaluate", step, data.n_steps, f"{name}, round {data.round + 1}"))
    model = registry.get_spec(name).build(params.get(name))
    t0 = time.perf_counter()
    model.fit(model_columns(name, data.X, data.selected), data.y, data.rows, on_event=on_event, cancel=cancel)
    t1 = time.perf_counter()
    Xt = model_columns(name, data.Xt, data.selected)
    p = np.asarray(model.predict_proba(Xt, data.rows_t), dtype=np.float64)
    t2 = time.perf_counter()
    if p.shape != (len(data.yt),) or not np.isfinite(p).all():
        raise ValueError(f"predict_proba returned {p.shape} values with non-finite entries")
    return _Fit(model, p, t1 - t0, t2 - t1)


def holdout_leaderboard(
    frame: pd.DataFrame,
    names: Sequence[str],
    params: Mapping[str, Mapping[str, object]],
    settings: FeatureSettings,
    *,
    rounds: int = 1,
    target_contexts: Sequence[int] | None = None,
    executor: Executor | None = None,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> Leaderboard:
    """The holdout leaderboard of `names`, whose `params` (flat, per model) are already resolved.

    A model that raises gets a failed row; `events.Cancelled` propagates. DataError when no user has a
    Flow row to hold out. The fits of one round run on `executor` (inline by default)."""
    folds = split.holdout(frame, rounds=rounds, contexts=target_contexts)
    if not folds:
        where = f" in contexts {sorted(target_contexts)}" if target_contexts else ""
        raise DataError(
            None, f"no user has a Flow row (listen_type 1){where} after earlier rows: nothing to hold out"
        )
    specs = {n: registry.get_spec(n) for n in names}
    run_on = executor or InlineExecutor()
    n_steps = len(folds) * (len(names) + 1)
    ys: list[np.ndarray] = []
    ps: dict[str, list[np.ndarray]] = {n: [] for n in names}
    fit_s = dict.fromkeys(names, 0.0)
    pred_s = dict.fromkeys(names, 0.0)
    errors: dict[str, str] = {}
    notes: dict[str, list[str]] = {n: [] for n in names}
    importances: dict[str, pd.Series] = {}
    selected: list[str] | None = None
    step = 0
    for fold in folds:
        ev.check_cancel(cancel)
        ev.emit(on_event, ev.Progress("evaluate", step, n_steps, f"features, round {fold.round + 1}"))
        X, y, rows, Xt, rows_t = features.fold_matrices(
            fold.history, fold.targets, smoothing=settings.smoothing, flow_only=settings.flow_only
        )
        yt = rows_t[LABEL].to_numpy().astype(np.int8)
        ys.append(yt)
        step += 1
        if settings.top_k is not None:
            selected = select_features(X, y, settings.top_k, on_event=on_event, cancel=cancel)

        data = _FoldData(X, y, rows, Xt, rows_t, yt, selected, fold.round, n_steps)
        task = functools.partial(_fit_and_score, params=params, data=data, on_event=on_event, cancel=cancel)
        todo = [(step + i, n) for i, n in enumerate(names) if n not in errors]
        step += len(names)
        for (_, name), outcome in zip(todo, run_on.map(task, todo), strict=True):
            if isinstance(outcome, Exception):
                errors[name] = f"{type(outcome).__name__}: {' '.join(str(outcome).split())}"
                ev.emit(on_event, ev.Log(f"{name} failed: {errors[name]}", level="warning"))
                continue
            fit_s[name] += outcome.fit_seconds
            pred_s[name] += outcome.predict_seconds
            ps[name].append(outcome.p)
            notes[name].extend(n for n in outcome.model.notes if n not in notes[name])
            if fold.round == folds[0].round:
                imp = outcome.model.feature_importances()
                if imp is not None:
                    importances[name] = imp
    ev.emit(on_event, ev.Progress("evaluate", n_steps, n_steps, "done"))
    y_all = np.concatenate(ys)
    board_rows: list[LeaderboardRow] = []
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in names:
        base = specs[name].baseline
        if name in errors:
            board_rows.append(
                LeaderboardRow(
                    name,
                    None,
                    None,
                    None,
                    fit_s[name],
                    pred_s[name],
                    [f"failed: {errors[name]}"],
                    base,
                    errors[name],
                )
            )
            continue
        p_all = np.concatenate(ps[name])
        predictions[name] = (y_all, p_all)
        auc, ll, acc = _scores(y_all, p_all)
        board_rows.append(LeaderboardRow(name, auc, ll, acc, fit_s[name], pred_s[name], notes[name], base))
    board_rows.sort(key=lambda r: (r.auc is None, -(r.auc or 0.0)))
    leaks = [r for r in board_rows if r.auc is not None and r.auc > LEAK_AUC]
    leak = None
    if leaks:
        which = ", ".join(f"{r.model} {r.auc:.3f}" for r in leaks)
        leak = (
            f"holdout AUC above {LEAK_AUC} ({which}): probably a leak; honest DSG17 holdouts score 0.62-0.72"
        )
        ev.emit(on_event, ev.Log(leak, level="warning"))
    return Leaderboard(
        rows=board_rows,
        predictions=predictions,
        importances=importances,
        leak_warning=leak,
        n_targets=len(y_all),
        rounds=len(folds),
        selected_features=selected,
    )


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
) -> TrainedModel:
    """`name` fitted on every training row (`matrices` = the training matrix of all rows), ready to save."""
    spec = registry.get_spec(name)
    X, y, rows = matrices
    Xm = model_columns(name, X, selected)
    model = spec.build(params)
    model.fit(Xm, y, rows, on_event=on_event, cancel=cancel)
    return TrainedModel(
        name=name,
        model=model,
        features=[str(c) for c in Xm.columns],
        params=dict(spec.params(params)),
        smoothing=settings.smoothing,
        flow_only=settings.flow_only,
        holdout=dict(holdout or {}),
        fingerprint=fingerprint(fingerprint_of),
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

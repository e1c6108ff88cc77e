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
from flowtui.core.data.schema import LABEL
from flowtui.core.errors import DataError, ParamError
from flowtui.core.events import EventCallback
from flowtui.core.executor import Executor, InlineExecutor
from flowtui.core.flow import features, split
from flowtui.core.flow.features import FeatureSettings
from flowtui.core.flow.store import TrainedModel, library_versions
from flowtui.core.modelfiles import fingerprint
from flowtui.core.modelfiles.data_match import describe_data
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
    model_cancel: Mapping[str, threading.Event] | None = None,
) -> _Fit:
    """One model of one holdout round: fitted on the fold's history, scored on its targets."""
    step, name = task
    ev.emit(on_event, ev.Progress("evaluate", step, data.n_steps, f"{name}, round {data.round + 1}"))
    model = registry.get_spec(name).build(params.get(name))
    t0 = time.perf_counter()
    X = model_columns(name, data.X, data.selected)
    try:
        model.fit(X, data.y, data.rows, on_event=on_event, cancel=ev.model_cancel(cancel, model_cancel, name))
    except ev.Cancelled as exc:
        ev.reraise_for_model(exc, cancel)
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
    model_cancel: Mapping[str, threading.Event] | None = None,
) -> Leaderboard:
    """The holdout leaderboard of `names`, whose `params` (flat, per model) are already resolved.

    A model that raises gets a failed row; `events.Cancelled` propagates; a model whose own flag in
    `model_cancel` is set gets a failed row "cancelled". DataError when no user has a Flow row to hold out;
    ParamError when `rounds` asks for more rounds than any user has Flow rows to hold out.
    The fits of one round run on `executor` (inline by default)."""
    folds = split.holdout(frame, rounds=rounds, contexts=target_contexts)
    where = f" in contexts {sorted(target_contexts)}" if target_contexts else ""
    source = frame.attrs.get("source")
    if not folds:
        raise DataError(
            source, f"no user has a Flow row (listen_type 1){where} after earlier rows: nothing to hold out"
        )
    if len(folds) < rounds:  # each round needs one more Flow row per user: refuse rounds with no targets
        raise ParamError(
            f"rounds must be at most {len(folds)} for {source or 'this data'}, got {rounds}: no user has "
            f"more than {len(folds)} Flow row{'s' if len(folds) > 1 else ''}{where} after earlier rows to hold out"
        )
    run_on = executor or InlineExecutor()
    n_steps = len(folds) * (len(names) + 1)
    tally = _Tally(list(names))
    selected: list[str] | None = None
    step = 0
    for fold in folds:
        ev.check_cancel(cancel)
        ev.emit(on_event, ev.Progress("evaluate", step, n_steps, f"features, round {fold.round + 1}"))
        X, y, rows, Xt, rows_t = features.fold_matrices(
            fold.history, fold.targets, smoothing=settings.smoothing, flow_only=settings.flow_only
        )
        yt = rows_t[LABEL].to_numpy().astype(np.int8)
        tally.ys.append(yt)
        step += 1
        if settings.top_k is not None:
            selected = select_features(X, y, settings.top_k, on_event=on_event, cancel=cancel)
        data = _FoldData(X, y, rows, Xt, rows_t, yt, selected, fold.round, n_steps)
        task = functools.partial(
            _fit_and_score,
            params=params,
            data=data,
            on_event=on_event,
            cancel=cancel,
            model_cancel=model_cancel,
        )
        todo = [(step + i, n) for i, n in enumerate(names) if n not in tally.errors]
        step += len(names)
        for (_, name), outcome in zip(todo, run_on.map(task, todo), strict=True):
            if isinstance(outcome, ev.ModelCancelled):
                tally.errors[name] = "cancelled by the user"
                ev.emit(on_event, ev.Log(f"{name} cancelled", level="warning"))
            elif isinstance(outcome, Exception):
                tally.errors[name] = f"{type(outcome).__name__}: {' '.join(str(outcome).split())}"
                ev.emit(on_event, ev.Log(f"{name} failed: {tally.errors[name]}", level="warning"))
            else:
                tally.add(name, outcome, first_round=fold.round == folds[0].round)
    ev.emit(on_event, ev.Progress("evaluate", n_steps, n_steps, "done"))
    board = tally.leaderboard(rounds=len(folds), selected=selected)
    if board.leak_warning:
        ev.emit(on_event, ev.Log(board.leak_warning, level="warning"))
    return board


@dataclass
class _Tally:
    """What the rounds of a holdout collect per model, turned into a `Leaderboard` at the end."""

    names: list[str]
    ys: list[np.ndarray] = field(default_factory=list)
    ps: dict[str, list[np.ndarray]] = field(default_factory=dict)
    fit_s: dict[str, float] = field(default_factory=dict)
    pred_s: dict[str, float] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    importances: dict[str, pd.Series] = field(default_factory=dict)

    def add(self, name: str, fit: _Fit, *, first_round: bool) -> None:
        """Record one model's fit of one round."""
        self.fit_s[name] = self.fit_s.get(name, 0.0) + fit.fit_seconds
        self.pred_s[name] = self.pred_s.get(name, 0.0) + fit.predict_seconds
        self.ps.setdefault(name, []).append(fit.p)
        notes = self.notes.setdefault(name, [])
        notes.extend(n for n in fit.model.notes if n not in notes)
        if first_round:
            imp = fit.model.feature_importances()
            if imp is not None:
                self.importances[name] = imp

    def leaderboard(self, *, rounds: int, selected: list[str] | None) -> Leaderboard:
        """The pooled scores, sorted by AUC (failed models last), with the leak warning."""
        y_all = np.concatenate(self.ys)
        rows: list[LeaderboardRow] = []
        predictions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in self.names:
            base = registry.get_spec(name).baseline
            fit_s, pred_s = self.fit_s.get(name, 0.0), self.pred_s.get(name, 0.0)
            error = self.errors.get(name)
            if error is not None:
                rows.append(
                    LeaderboardRow(name, None, None, None, fit_s, pred_s, [f"failed: {error}"], base, error)
                )
                continue
            p_all = np.concatenate(self.ps[name])
            predictions[name] = (y_all, p_all)
            auc, ll, acc = _scores(y_all, p_all)
            rows.append(LeaderboardRow(name, auc, ll, acc, fit_s, pred_s, self.notes.get(name, []), base))
        rows.sort(key=lambda r: (r.auc is None, -(r.auc or 0.0)))
        leaks = [r for r in rows if r.auc is not None and r.auc > LEAK_AUC]
        leak = None
        if leaks:
            which = ", ".join(f"{r.model} {r.auc:.3f}" for r in leaks)
            leak = f"holdout AUC above {LEAK_AUC} ({which}): probably a leak; honest DSG17 holdouts score 0.62-0.72"
        return Leaderboard(
            rows=rows,
            predictions=predictions,
            importances=self.importances,
            leak_warning=leak,
            n_targets=len(y_all),
            rounds=rounds,
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

"""The pieces of a run: the honest holdout leaderboard, the final fit on all rows, and prediction.

Every model is scored the way the DSG17 test scores it: fitted on the training rows of each holdout fold's
history (features from strictly earlier rows) and scored on each user's held-out last Flow row. Metrics are
pooled over the rounds. The same feature matrices feed every model of a run. `core/run.py` puts the
pieces together; the front ends call it, not these. The loop of `holdout_leaderboard` reads its rows
through a `RunData` (flow/run_data.py): a pandas frame's `FrameData` (flow/frame_data.py, where the
single machine's feature selection and final fit live too) or a cluster's partitions (core/cluster).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from flowtui.core import events as ev
from flowtui.core.errors import DataError, ParamError
from flowtui.core.events import EventCallback
from flowtui.core.executor import Executor, InlineExecutor
from flowtui.core.flow import features
from flowtui.core.flow.features import FeatureSettings
from flowtui.core.flow.frame_data import FrameData, fit_final, model_columns, select_features
from flowtui.core.flow.leaderboard import LEAK_AUC, RECORD_KEYS, Fit, Leaderboard, LeaderboardRow, Tally
from flowtui.core.flow.run_data import HoldoutRound, RunData
from flowtui.core.flow.store import TrainedModel

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

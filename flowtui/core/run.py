"""One run of the Flow question: holdout leaderboard -> final fits on all rows -> saved model folders.

The CLI's `evaluate` and `train` and the app's Training screen all call `run(frame, RunConfig(...))`;
nothing else orchestrates models. The `RunConfig` (run_config.py) is checked whole before any work starts.
The fits run on an `Executor` (inline by default) and the rows are read through a `RunData`
(flow/run_data.py): a pandas frame here, partitions of a Dask cluster for `cluster.run.cluster_run`,
which calls this same `run`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from flowtui.core import events as ev
from flowtui.core.errors import DataError
from flowtui.core.events import EventCallback
from flowtui.core.executor import Executor, InlineExecutor
from flowtui.core.flow.evaluate import FrameData, Leaderboard, holdout_leaderboard
from flowtui.core.flow.run_data import RunData
from flowtui.core.flow.store import TrainedModel, save_model
from flowtui.core.run_config import RunConfig

__all__ = ["RunConfig", "RunResult", "run"]


@dataclass
class RunResult:
    """What a run produced: the leaderboard (None without a holdout), trained and saved models, failures."""

    leaderboard: Leaderboard | None
    trained: dict[str, TrainedModel] = field(default_factory=dict)
    saved: dict[str, Path] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # model -> reason


def _is_set(flag: threading.Event | None) -> bool:
    return flag is not None and flag.is_set()


def _holdout_scores(board: Leaderboard, name: str) -> dict[str, Any]:
    row = board.row(name)
    scores: dict[str, Any] = {
        "auc": row.auc,
        "logloss": row.logloss,
        "accuracy": row.accuracy,
        "n": board.n_targets,
        "rounds": board.rounds,
    }
    if board.leak_warning:
        scores["leak_warning"] = board.leak_warning
    return scores


def _holdout_then_final(
    config: RunConfig,
    leaderboard: Callable[[], Leaderboard],
    final_fits: Callable[[RunResult], None],
    on_event: EventCallback | None,
    on_leaderboard: Callable[[Leaderboard], None] | None,
) -> RunResult:
    """The stages of a run, on one machine or a cluster: the holdout `leaderboard()` (when asked; its
    failed models get no final fit), then `final_fits(result)` when the run saves models.

    Without a Flow row to hold out, an evaluate-only run raises DataError and a training run goes on
    without holdout scores."""
    result = RunResult(leaderboard=None)
    if config.holdout:
        ev.emit(on_event, ev.Stage("holdout"))
        try:
            board = leaderboard()
        except DataError as exc:
            if config.models_dir is None:
                raise
            ev.emit(on_event, ev.Log(f"no holdout scores: {exc.message}", level="warning"))
        else:
            result.leaderboard = board
            result.failed = {r.model: r.error for r in board.rows if r.error is not None}
            if on_leaderboard is not None:
                on_leaderboard(board)
    if config.models_dir is not None:
        final_fits(result)
    return result


def run(
    frame: pd.DataFrame | RunData,
    config: RunConfig,
    *,
    executor: Executor | None = None,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
    model_cancel: Mapping[str, threading.Event] | None = None,
    on_leaderboard: Callable[[Leaderboard], None] | None = None,
) -> RunResult:
    """Holdout leaderboard, then (with `models_dir`) each chosen model fitted on all rows and saved.

    `frame`: the train rows (a pandas frame, or a `RunData` such as a cluster's partitions). Emits `Stage`
    and `Saved` besides the models' own events; `on_leaderboard` receives the leaderboard as soon as it is
    ready. A model that fails gets a failed row and no final fit; setting a model's own flag in
    `model_cancel` stops that model only (recorded as failed: "cancelled by the user"); `events.Cancelled`
    propagates (models saved before the cancel stay, nothing half-written does). Without a Flow row to hold
    out, an evaluate-only run raises DataError and a training run goes on without holdout scores.
    """
    config.validate()
    params = config.resolved_params()
    executor = executor or InlineExecutor()
    data = FrameData(frame) if isinstance(frame, pd.DataFrame) else frame

    def leaderboard() -> Leaderboard:
        return holdout_leaderboard(
            data,
            config.on_leaderboard(),
            params,
            config.features,
            rounds=config.rounds,
            target_contexts=config.target_contexts,
            executor=executor,
            on_event=on_event,
            cancel=cancel,
            model_cancel=model_cancel,
        )

    def final_fits(result: RunResult) -> None:
        _final_fits(data, config, params, result, executor, on_event, cancel, model_cancel or {})

    result = _holdout_then_final(config, leaderboard, final_fits, on_event, on_leaderboard)
    ev.emit(on_event, ev.Stage("done"))
    return result


def _final_fits(
    data: RunData,
    config: RunConfig,
    params: Mapping[str, Mapping[str, object]],
    result: RunResult,
    executor: Executor,
    on_event: EventCallback | None,
    cancel: threading.Event | None,
    model_cancel: Mapping[str, threading.Event],
) -> None:
    """Fit each chosen model that did not fail on every training row and save it (one feature pass)."""
    assert config.models_dir is not None
    todo = [n for n in config.chosen() if n not in result.failed and not _is_set(model_cancel.get(n))]
    if not todo:
        return
    ev.check_cancel(cancel)
    ev.emit(on_event, ev.Stage("final"))
    ev.emit(on_event, ev.Progress("train", 0, len(todo), "features of all rows"))
    rows = data.final_rows(config.features, on_event=on_event, cancel=cancel)
    models_dir = config.models_dir
    board = result.leaderboard

    def fit_and_save(name: str) -> tuple[TrainedModel, Path]:
        holdout = _holdout_scores(board, name) if board is not None else None
        trained = rows.fit_final(
            name,
            params[name],
            holdout=holdout,
            on_event=on_event,
            cancel=cancel,
            own_cancel=model_cancel.get(name),
        )
        ev.check_cancel(cancel)
        folder = save_model(trained, models_dir / name)
        ev.emit(on_event, ev.Saved(name, str(folder)))
        return trained, folder

    for i, (name, outcome) in enumerate(zip(todo, executor.map(fit_and_save, todo), strict=True)):
        ev.emit(on_event, ev.Progress("train", i + 1, len(todo), f"{name}: done"))
        if isinstance(outcome, ev.ModelCancelled):
            result.failed[name] = "cancelled by the user"
            continue
        if isinstance(outcome, Exception):
            result.failed[name] = f"{type(outcome).__name__}: {' '.join(str(outcome).split())}"
            ev.emit(on_event, ev.Log(f"{name} failed: {result.failed[name]}", level="warning"))
            continue
        result.trained[name], result.saved[name] = outcome

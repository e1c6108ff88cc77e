"""Screen 3: train the ticked models in a worker; a bar per model, a live chart, a log, cancel."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Label, RichLog
from textual.worker import Worker, WorkerState
from textual_plotext import PlotextPlot

from flowtui.core import events as ev
from flowtui.tui.messages import EngineEvent, LeaderboardReady, TrainingFinished
from flowtui.tui.screens.base import FlowScreen
from flowtui.tui.widgets.model_progress import ModelProgress

if TYPE_CHECKING:
    import pandas as pd

    from flowtui.core.flow.evaluate import Leaderboard
    from flowtui.core.run_config import RunConfig

HOLDOUT = "holdout"


class TrainingScreen(FlowScreen):
    """Live training of the ticked models."""

    HELP = "t trains the ticked models (holdout leaderboard, then a final fit saved to the models folder)."
    BINDINGS = [  # noqa: RUF012
        Binding("t", "train", "Train"),
        Binding("c,escape", "cancel", "Cancel", key_display="c"),
        Binding("l", "clear_log", "Clear log"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()
        self._training = False
        self._curves: dict[str, tuple[list[float], list[float]]] = {}
        self._curve_kind: dict[str, str] = {}
        self._chart_dirty = False
        self._rows: dict[str, ModelProgress] = {}
        self._phase = HOLDOUT

    def compose_body(self) -> ComposeResult:
        yield Label("Nothing trained yet: t trains the models ticked on screen 2.", id="train-status")
        yield VerticalScroll(id="progress-rows")
        with Horizontal(id="train-body"):
            yield PlotextPlot(id="train-chart")
            yield RichLog(id="train-log", wrap=True, markup=True, max_lines=2000)

    def on_mount(self) -> None:
        self.query_one("#progress-rows").border_title = "Models"
        self.query_one("#train-log").border_title = "Log"
        self.draw_chart()
        # Redraw the chart at most a few times a second, and only when it is on screen:
        # a fast model emits hundreds of epochs, and plotting each one would starve the event loop.
        self.set_interval(0.5, self._maybe_draw_chart)

    def _maybe_draw_chart(self) -> None:
        if self._chart_dirty and self.is_current:
            self._chart_dirty = False
            self.draw_chart()

    def on_screen_resume(self) -> None:
        if self.state.train_requested:
            self.state.train_requested = False
            self.action_train()

    @property
    def running(self) -> bool:
        """Is a training run in progress?"""
        return self._training

    def _log(self, text: str) -> None:
        self.query_one("#train-log", RichLog).write(text)

    def action_clear_log(self) -> None:
        """Empty the log pane."""
        self.query_one("#train-log", RichLog).clear()

    def action_train(self) -> None:
        """Train the ticked models: holdout leaderboard first, then final fits saved to the models folder."""
        state = self.state
        if self._training:
            self.notify("a run is already going; c cancels it", severity="warning")
            return
        if state.train is None:
            self.notify("load a data set first (screen 1)", severity="warning")
            return
        if not state.selected:
            self.notify("tick at least one model (screen 2)", severity="warning")
            return
        from flowtui.core.run_config import describe_options

        names = list(state.selected)
        config = dataclasses.replace(
            state.run_options,
            models=tuple(names),
            params={n: dict(state.params[n]) for n in names if n in state.params},
            preset=state.preset,
            models_dir=state.models_dir,
        )
        try:
            config.validate()
        except ValueError as exc:
            self.notify(str(exc), title="cannot train", severity="error")
            return
        self._training = True
        self._cancel = threading.Event()
        self.prepare_rows(config.on_leaderboard())
        self.query_one("#train-status", Label).update(
            f"training {', '.join(names)} ({state.preset} preset) · c cancels"
        )
        self._log(
            f"[b]run[/b]: {', '.join(names)} · {describe_options(config)} · models folder {state.models_dir}"
        )
        self._phase = HOLDOUT
        self._train(state.train.frame, config, self._cancel)

    def prepare_rows(self, names: list[str]) -> None:
        """Start a fresh display: one waiting progress row per model, an empty chart."""
        self._curves.clear()
        self._curve_kind.clear()
        # Rows are found through this dict, not by id: the old rows' removal completes later.
        self._rows = {n: ModelProgress(n, clock=self.state.clock) for n in names}
        rows = self.query_one("#progress-rows", VerticalScroll)
        rows.remove_children()
        rows.mount_all(list(self._rows.values()))
        self.draw_chart()

    def action_cancel(self) -> None:
        """Cancel the run: the current model stops, nothing half-saved is kept."""
        if self._training and not self._cancel.is_set():
            self._cancel.set()
            self.query_one("#train-status", Label).update("cancelling…")
            self._log("[yellow]cancel requested[/yellow]")

    @work(thread=True, exclusive=True, exit_on_error=False, group="training")
    def _train(self, frame: pd.DataFrame, config: RunConfig, cancel: threading.Event) -> None:
        """One core run (holdout leaderboard, final fits, saving); its events become messages."""
        from flowtui.core.run import run

        saved: dict[str, Path] = {}
        board: Leaderboard | None = None

        def on_event(e: ev.Event) -> None:
            if isinstance(e, ev.Saved):
                saved[e.model] = Path(e.path)
            self.post_message(EngineEvent(e))

        def on_board(leaderboard: Leaderboard) -> None:
            nonlocal board
            board = leaderboard
            self.post_message(LeaderboardReady(leaderboard))

        try:
            result = run(frame, config, on_event=on_event, cancel=cancel, on_leaderboard=on_board)
        except ev.Cancelled:
            self.post_message(TrainingFinished(board, saved, [n for n in config.chosen() if n not in saved]))
            return
        self.post_message(TrainingFinished(result.leaderboard, result.saved, [], result.failed))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The app's handler shows the error; here the run is only marked as over.
        if event.worker.group == "training" and event.state == WorkerState.ERROR:
            self._training = False
            for row in self._rows.values():
                if not row.has_class("-done") and not row.has_class("-cancelled"):
                    row.finish("failed", "failed")
            self.query_one("#train-status", Label).update(f"failed: {event.worker.error}")
            self._log(f"[red]failed: {event.worker.error!r}[/red]")

    def _row(self, model: str) -> ModelProgress | None:
        """The progress row of `model`, added when a model not announced reports."""
        row = self._rows.get(model)
        if row is None and model:
            row = self._rows[model] = ModelProgress(model, clock=self.state.clock)
            self.query_one("#progress-rows", VerticalScroll).mount(row)
        return row

    def on_engine_event(self, message: EngineEvent) -> None:
        e = message.event
        if isinstance(e, ev.Stage):
            self._phase = e.stage
            return
        if isinstance(e, ev.Saved):
            self._log(f"saved {e.model} to {e.path}")
            return
        phase = self._phase
        if isinstance(e, ev.BeforeFit):
            row = self._row(e.model)
            if row is not None:
                row.start(phase, e.n_epochs)
            self._log(f"{e.model}: {phase} fit starts")
        elif isinstance(e, ev.AfterEpoch):
            row = self._row(e.model)
            if row is not None:
                row.advance_to(e.epoch, e.n_epochs)
                bits = [f"{e.epoch}/{e.n_epochs}"]
                if e.loss is not None:
                    bits.append(f"loss {e.loss:.4f}")
                if e.metric is not None:
                    bits.append(f"auc {e.metric:.3f}")
                row.set_status(" ".join(bits[1:]) or bits[0])
            value = e.metric if e.metric is not None else e.loss
            if value is not None:
                key = f"{e.model} {phase}"
                xs, ys = self._curves.setdefault(key, ([], []))
                xs.append(float(e.epoch))
                ys.append(float(value))
                self._curve_kind[key] = "auc" if e.metric is not None else "loss"
                self._chart_dirty = True
        elif isinstance(e, ev.AfterFit):
            row = self._row(e.model)
            if row is not None:
                if e.cancelled:
                    row.finish("cancelled", "cancelled")
                else:
                    row.finish(f"{phase} {e.seconds:.1f}s")
            self._log(f"{e.model}: {phase} fit {'cancelled' if e.cancelled else f'done in {e.seconds:.1f}s'}")
        elif isinstance(e, ev.Progress):
            row = self._rows.get(e.task)
            if row is not None:
                row.advance_to(e.done, e.total)
        elif isinstance(e, ev.Log):
            style = "yellow" if e.level == "warning" else "dim"
            self._log(f"[{style}]{e.message}[/{style}]")

    def draw_chart(self) -> None:
        """Plot the per-epoch curves received so far."""
        chart = self.query_one("#train-chart", PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        # AUC and loss live on different scales: plot the AUC curves when there are any, else the losses.
        kind = "auc" if "auc" in self._curve_kind.values() else "loss"
        plt.title(f"{'validation AUC' if kind == 'auc' else 'loss'} per epoch")
        plt.xlabel("epoch")
        for key, (xs, ys) in self._curves.items():
            if xs and self._curve_kind.get(key) == kind:
                plt.plot(xs, ys, label=key)
        chart.refresh()

    def on_leaderboard_ready(self, message: LeaderboardReady) -> None:
        self.state.leaderboard = message.leaderboard
        self._log("holdout leaderboard ready: 4 shows it")
        self._show_board_if_visible()

    def _show_board_if_visible(self) -> None:
        self.refresh_current_screen()

    def on_training_finished(self, message: TrainingFinished) -> None:
        state = self.state
        self._training = False
        if message.leaderboard is not None:
            state.leaderboard = message.leaderboard
        state.saved.update(message.saved)
        state.cancelled = message.cancelled
        for name in message.cancelled:
            row = self._row(name)
            if row is not None and not row.has_class("-cancelled"):
                row.finish("cancelled", "cancelled")
        for name in message.saved:
            row = self._row(name)
            if row is not None:
                row.finish("saved", "done")
        for name, why in message.failed.items():
            row = self._row(name)
            if row is not None:
                row.finish(f"failed: {why}", "failed")
            self._log(f"[red]{name} failed: {why}[/red]")
        status = self.query_one("#train-status", Label)
        if message.cancelled:
            status.update(f"cancelled: {', '.join(message.cancelled)} (nothing half-saved) · t trains again")
            self.notify("training cancelled", severity="warning")
        elif message.failed:
            status.update(
                f"done: {len(message.saved)} model(s) saved, {len(message.failed)} failed "
                f"({', '.join(message.failed)}) · 4 shows the leaderboard"
            )
            self.notify(f"{len(message.failed)} model(s) failed: see the log", severity="warning")
        else:
            status.update(f"done: {len(message.saved)} model(s) saved · 4 shows the leaderboard")
            self.notify("training finished: 4 shows the leaderboard")
        self._log(f"[b]run ended[/b]: saved {', '.join(message.saved) or 'nothing'}")
        self._show_board_if_visible()

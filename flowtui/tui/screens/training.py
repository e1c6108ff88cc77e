"""Screen 3: train the ticked models in a worker; a bar per model, a live chart, a log, cancel all or one."""

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
from flowtui.tui import helpers
from flowtui.tui.messages import EngineEvent, LeaderboardReady, TrainingFinished
from flowtui.tui.screens.base import FlowScreen
from flowtui.tui.state import RunHandle
from flowtui.tui.widgets.curves import draw_curves
from flowtui.tui.widgets.model_progress import ModelProgress

if TYPE_CHECKING:
    import pandas as pd

    from flowtui.core.flow.evaluate import Leaderboard
    from flowtui.core.run_config import RunConfig

HOLDOUT = "holdout"
#: The reason run() gives a model stopped by its own cancel flag.
CANCELLED_BY_USER = "cancelled by the user"


class TrainingScreen(FlowScreen):
    """Live training of the ticked models."""

    HELP = (
        "t trains the ticked models (holdout leaderboard, then a final fit saved to the models folder); "
        "↑/↓ pick a model row, x cancels that model, c the whole run; v picks the chart's curves."
    )
    BINDINGS = [  # noqa: RUF012
        Binding("t", "train", "Train"),
        Binding("c,escape", "cancel", "Cancel all", key_display="c"),
        Binding("x", "cancel_model", "Cancel model"),
        Binding("v", "next_curves", "Chart: model"),
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
        self._shown_activity = 0
        #: The model whose curves the chart shows (None: all of them, overlaid).
        self.curves_of: str | None = None

    def compose_body(self) -> ComposeResult:
        yield Label("Nothing trained yet: t trains the models ticked on screen 2.", id="train-status")
        yield VerticalScroll(id="progress-rows")
        with Horizontal(id="train-body"):
            yield PlotextPlot(id="train-chart")
            yield RichLog(id="train-log", wrap=True, markup=True, max_lines=2000)

    def on_mount(self) -> None:
        rows = self.query_one("#progress-rows")
        rows.border_title = "Models"
        rows.border_subtitle = "↑/↓ pick · x cancels one · c all"
        self.query_one("#train-log").border_title = "Log"
        self.draw_chart()
        self._show_activity()
        # Redraw the chart at most a few times a second, and only when it is on screen:
        # a fast model emits hundreds of epochs, and plotting each one would starve the event loop.
        self.set_interval(0.5, self._maybe_draw_chart)

    def _maybe_draw_chart(self) -> None:
        if self._chart_dirty and self.is_current:
            self._chart_dirty = False
            self.draw_chart()

    def on_screen_resume(self) -> None:
        self._show_activity()
        if self.state.train_requested:
            self.state.train_requested = False
            self.action_train()

    def refresh_from_state(self) -> None:
        self._show_activity()

    def _show_activity(self) -> None:
        """Copy into the log what other screens did since (files written...)."""
        lines = self.state.activity
        for line in lines[self._shown_activity :]:
            self._log(line)
        self._shown_activity = len(lines)

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
        if state.invalid_refusal():
            self.notify(state.invalid_refusal(), title="cannot train", severity="error")
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
        handle = RunHandle(config.on_leaderboard(), state.train.frame, config.chosen())
        state.run = self._handle = handle
        self._cancel = handle.cancel
        self.prepare_rows(handle.models)
        self.query_one("#train-status", Label).update(
            f"training {', '.join(names)} ({state.preset} preset) · x cancels the picked model, c all"
        )
        self._log(
            f"[b]run[/b]: {', '.join(names)} · {describe_options(config)} · models folder {state.models_dir}"
        )
        self._phase = HOLDOUT
        self.refresh_status()
        self._train(state.train.frame, config, handle, state.quitting)

    def prepare_rows(self, names: list[str]) -> None:
        """Start a fresh display: one waiting progress row per model (the first one picked), an empty chart."""
        self._curves.clear()
        self._curve_kind.clear()
        self.curves_of = None
        # Rows are found through this dict, not by id: the old rows' removal completes later.
        self._rows = {n: ModelProgress(n, clock=self.state.clock) for n in names}
        rows = self.query_one("#progress-rows", VerticalScroll)
        rows.remove_children()
        rows.mount_all(list(self._rows.values()))
        if self._rows:
            first = next(iter(self._rows.values()))
            self.call_after_refresh(first.focus)
        self.draw_chart()

    def action_cancel(self) -> None:
        """Cancel the run: the current model stops, nothing half-saved is kept."""
        if self._training and not self._cancel.is_set():
            self._cancel.set()
            self.query_one("#train-status", Label).update("cancelling…")
            self._log("[yellow]cancel requested[/yellow]")
            self.refresh_status()

    def action_cancel_model(self, name: str | None = None) -> None:
        """Cancel one model (the picked row's without a name); the others go on."""
        if name is None:
            focused = self.focused
            name = focused.model if isinstance(focused, ModelProgress) else None
        run = self.state.run
        if name is None or not self._training or run is None:
            self.notify("no model to cancel: pick a running model's row first", severity="warning")
            return
        if not run.cancel_model(name):
            self.notify(f"{name} is not running", severity="warning")
            return
        row = self._rows.get(name)
        if row is not None:
            row.set_status("cancelling…")
        self._log(f"[yellow]{name}: cancel requested (the other models go on)[/yellow]")
        self.refresh_status()

    @work(thread=True, exclusive=True, exit_on_error=False, group="training")
    def _train(
        self, frame: pd.DataFrame, config: RunConfig, handle: RunHandle, quitting: threading.Event
    ) -> None:
        """One core run (holdout leaderboard, final fits, saving); its events become messages. The run
        itself goes on in a daemon thread, so that quitting never waits for a fit without cancel checks."""
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

        def go() -> TrainingFinished:
            try:
                result = run(
                    frame,
                    config,
                    on_event=on_event,
                    cancel=handle.cancel,
                    model_cancel=handle.model_cancel,
                    on_leaderboard=on_board,
                )
            except ev.Cancelled:
                return TrainingFinished(board, saved, [n for n in config.chosen() if n not in saved])
            return TrainingFinished(result.leaderboard, result.saved, [], result.failed)

        try:
            finished = helpers.call_abandonable(go, quitting)
        except helpers.Abandoned:
            return
        self.post_message(finished)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The app's handler shows the error; here the run is only marked as over.
        if event.worker.group == "training" and event.state == WorkerState.ERROR:
            self._training = False
            self.state.run = None
            for row in self._rows.values():
                if not row.has_class("-done") and not row.has_class("-cancelled"):
                    row.finish("failed", "failed")
            self.query_one("#train-status", Label).update(f"failed: {event.worker.error}")
            self._log(f"[red]failed: {event.worker.error!r}[/red]")
            self.refresh_status()

    def _row(self, model: str) -> ModelProgress | None:
        """The progress row of `model`, added when a model not announced reports."""
        row = self._rows.get(model)
        if row is None and model:
            row = self._rows[model] = ModelProgress(model, clock=self.state.clock)
            self.query_one("#progress-rows", VerticalScroll).mount(row)
        return row

    def _part_of_a_model(self, e: ev.BeforeFit | ev.AfterEpoch | ev.AfterFit) -> bool:
        """An event of a part of a model ("rbm exposure": the rbm's second network) goes to that model's
        row status and the log, not to a row of its own; False for any other event."""
        parent, _, part = e.model.partition(" ")
        row = self._rows.get(parent)
        if not part or row is None or e.model in self._rows:
            return False
        if isinstance(e, ev.AfterEpoch):
            row.set_status(f"{part} {e.epoch}/{e.n_epochs}")
        elif isinstance(e, ev.BeforeFit):
            self._log(f"{e.model}: {self._phase} fit starts")
        else:
            self._log(
                f"{e.model}: {self._phase} fit {'cancelled' if e.cancelled else 'done'} in {e.seconds:.1f}s"
            )
        return True

    def on_engine_event(self, message: EngineEvent) -> None:
        e = message.event
        if isinstance(e, ev.Stage):
            self._phase = e.stage
            return
        if isinstance(e, ev.Saved):
            if self.state.run is not None:
                self.state.run.ended.add(e.model)
            self._log(f"saved {e.model} to {e.path}")
            return
        phase = self._phase
        if isinstance(e, ev.BeforeFit | ev.AfterEpoch | ev.AfterFit) and self._part_of_a_model(e):
            return
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
            run = self.state.run
            if run is not None and (e.cancelled or (phase == HOLDOUT and e.model not in run.chosen)):
                run.ended.add(e.model)  # a baseline that is not saved ends with its holdout fit
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

    # -- the chart ----------------------------------------------------------------------------------------

    def _curve_models(self) -> list[str]:
        """The models with curves, in the order of their rows."""
        have = {key.rsplit(" ", 1)[0] for key in self._curves}
        return [m for m in self._rows if m in have] + sorted(have - set(self._rows))

    def action_next_curves(self) -> None:
        """Show all models' curves, then one model's at a time, in turn."""
        models = self._curve_models()
        if not models:
            self.curves_of = None
            self.notify("no curves yet: models that train in epochs draw them", timeout=3)
        elif self.curves_of not in models:
            self.curves_of = models[0]
        else:
            i = models.index(self.curves_of) + 1
            self.curves_of = models[i] if i < len(models) else None
        self.draw_chart()

    def draw_chart(self) -> None:
        """Plot the per-epoch curves received so far (all models, or `curves_of`'s)."""
        chart = self.query_one("#train-chart", PlotextPlot)
        shown = {
            key: curve
            for key, curve in self._curves.items()
            if self.curves_of is None or key.rsplit(" ", 1)[0] == self.curves_of
        }
        draw_curves(chart.plt, shown, self._curve_kind, max(chart.size.width - 8, 20))
        chart.refresh()

    # -- the end of a run ---------------------------------------------------------------------------------

    def _same_data(self) -> bool:
        """Is the data loaded now the data of the run (a new load while training makes its results stale)?"""
        run, train = self.state.run, self.state.train
        return run is not None and train is not None and train.frame is run.frame

    def on_leaderboard_ready(self, message: LeaderboardReady) -> None:
        if not self._same_data():
            self._log("holdout leaderboard of the previous data: not shown (other data are loaded now)")
            return
        self.state.leaderboard = message.leaderboard
        self._log("holdout leaderboard ready: 4 shows it")
        self.refresh_current_screen()

    def on_training_finished(self, message: TrainingFinished) -> None:
        state = self.state
        same_data = self._same_data()
        self._training = False
        state.run = None
        by_user = [n for n, why in message.failed.items() if why == CANCELLED_BY_USER]
        if same_data:
            if message.leaderboard is not None:
                state.leaderboard = message.leaderboard
            state.saved.update(message.saved)
            state.cancelled = [*message.cancelled, *by_user]  # screen 4 marks them: not saved
        else:
            self._log(
                "[yellow]this run trained on the previous data; its models are saved with their data[/yellow]"
            )
        failed = {n: why for n, why in message.failed.items() if why != CANCELLED_BY_USER}
        for name in [*message.cancelled, *by_user]:
            row = self._row(name)
            if row is not None and not row.has_class("-cancelled"):
                row.finish("cancelled", "cancelled")
        for name in message.saved:
            row = self._row(name)
            if row is not None:
                row.finish("saved", "done")
        for name, why in failed.items():
            row = self._row(name)
            if row is not None:
                row.finish(f"failed: {why}", "failed")
            self._log(f"[red]{name} failed: {why}[/red]")
        for row in self._rows.values():  # nothing stays "waiting" or "running" once the run is over
            if not any(row.has_class(c) for c in ("-done", "-cancelled", "-failed")):
                row.finish("not trained", "cancelled" if message.cancelled else "done")
        status = self.query_one("#train-status", Label)
        if message.cancelled:
            status.update(f"cancelled: {', '.join(message.cancelled)} (nothing half-saved) · t trains again")
            self.notify("training cancelled", severity="warning")
        elif failed or by_user:
            bits = [f"{len(message.saved)} model(s) saved"]
            if by_user:
                bits.append(f"cancelled {', '.join(by_user)}")
            if failed:
                bits.append(f"failed {', '.join(failed)}")
            status.update(f"done: {', '.join(bits)} · 4 shows the leaderboard")
            if failed:
                self.notify(f"{len(failed)} model(s) failed: see the log", severity="warning")
            else:
                self.notify("training finished: 4 shows the leaderboard")
        else:
            status.update(f"done: {len(message.saved)} model(s) saved · 4 shows the leaderboard")
            self.notify("training finished: 4 shows the leaderboard")
        self._log(f"[b]run ended[/b]: saved {', '.join(message.saved) or 'nothing'}")
        self.refresh_status()
        self.refresh_current_screen()

"""Screen 7: the recommenders. Their leaderboard on the loaded data (the table of `flowtui evaluate-recs`:
P/R/NDCG@k, AUC and MAE on listen/skip data, coverage, fit time, mean ± std over seeds), training the ticked
ones (saved to MODELS/recs/NAME, as `flowtui train-recs --out MODELS/recs` would), and the saved recommender
folders with the data each was trained on; `u` makes the highlighted one recommend on screens 5 and 6.

Both jobs run in a worker with a progress bar; `c` cancels. The leaderboard belongs to the data it was
computed on: loading other data clears it (screen 1).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Label, ProgressBar, SelectionList, Static
from textual.widgets.selection_list import Selection

from flowtui.core import events as ev
from flowtui.core.errors import DataError
from flowtui.tui import helpers
from flowtui.tui.messages import (
    EngineEvent,
    RecBoardReady,
    RecNamesRead,
    RecTrained,
    RecTrainingEnded,
)
from flowtui.tui.screens.recs.board import BOARD_COLUMNS, DETAIL, SEEDS, K, board_setup, cell, num
from flowtui.tui.screens.recs.saved import SAVED_COLUMNS, SavedRecsPanel
from flowtui.tui.widgets import add_columns
from flowtui.tui.widgets.ticklist import TickList

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SEEDS", "K", "RecsScreen", "cell", "num"]


class RecsScreen(SavedRecsPanel):
    """The recommenders' leaderboard, their training, and the saved ones."""

    HELP = (
        "space ticks recommenders; e computes their leaderboard on the loaded data (as `flowtui "
        "evaluate-recs`), t trains them on all of it (saved to MODELS/recs); c cancels; u makes the "
        "highlighted saved one recommend on screens 5 and 6."
    )
    BINDINGS = [  # noqa: RUF012
        Binding("e", "evaluate", "Leaderboard"),
        Binding("t", "train", "Train"),
        Binding("c,escape", "cancel", "Cancel", key_display="c"),
        Binding("u", "use", "Use saved"),
        Binding("f5", "reload", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._names: list[str] = []
        self._cancel = threading.Event()
        self._busy = ""  # "leaderboard" or "training" while a job runs
        self._board: Any = None
        self._rows: list[dict[str, Any]] = []
        self._restore_key: object = None
        self._done = 0
        self._trained: list[str] = []  # saved by the training run in progress
        self._auto_pick = False  # choose the model for screens 5-6 when the run ends (none was chosen)

    def compose_body(self) -> ComposeResult:
        yield Static("", id="recs-info")
        yield DataTable(id="recs-board", cursor_type="row", zebra_stripes=True)
        yield Static("", id="recs-detail")
        with Horizontal(id="recs-progress"):
            yield Label("", id="recs-phase")
            yield ProgressBar(total=None, id="recs-bar", clock=self.state.clock, show_eta=False)
        with Horizontal(id="recs-bottom"):
            yield TickList[str](id="recs-list")
            yield DataTable(id="recs-saved", cursor_type="row")

    def on_mount(self) -> None:
        add_columns(self.query_one("#recs-board", DataTable), [(c[0], c[1]) for c in BOARD_COLUMNS])
        add_columns(self.query_one("#recs-saved", DataTable), SAVED_COLUMNS)
        self.query_one("#recs-board").border_title = "Recommendation leaderboard (e computes it)"
        self.query_one("#recs-list").border_title = "Recommenders (space ticks)"
        self.query_one("#recs-saved").border_title = "Saved recommenders (u uses one)"
        self.query_one("#recs-progress").display = False
        self.query_one("#recs-list").focus()
        self.hold_keys()  # the list fills from the registry (a worker): keys pressed meanwhile wait
        self._read_names()
        self._show_board()
        self.refresh_from_state()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.refresh_from_state()

    def refresh_from_state(self) -> None:
        state = self.state
        if state.rec_board is not self._board:
            self._show_board()
        else:
            self._show_info()  # the data may have been loaded since
        self.refresh_saved()
        if state.rec_board is None and state.train is not None and not self._busy:
            key = (str(state.models_dir), id(state.train.frame))
            if key != self._restore_key:
                self._restore_key = key
                self._restore_board(state.models_dir, state.train.frame)

    # -- the registered recommenders ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="recs-registry")
    def _read_names(self) -> None:
        from flowtui.core import registry

        names = registry.recommender_names()
        self.post_result(RecNamesRead([(n, registry.get_recommender(n).description) for n in names]))

    def on_rec_names_read(self, message: RecNamesRead) -> None:
        self._names = [n for n, _ in message.names]
        ticked = [n for n in self.state.rec_selected if n in self._names] or self._names
        listing = self.query_one("#recs-list", TickList)
        listing.clear_options()
        listing.add_options([Selection(f"{n:<10} {d}", n, n in ticked, id=n) for n, d in message.names])
        listing.highlight_first()
        self.state.rec_selected = ticked
        self.release_keys()

    @on(SelectionList.SelectedChanged, "#recs-list")
    def _ticked(self, event: SelectionList.SelectedChanged[str]) -> None:
        chosen = set(event.selection_list.selected)
        self.state.rec_selected = [n for n in self._names if n in chosen]

    def _chosen(self) -> list[str] | None:
        """The ticked recommenders, or None (with a notification) when the job cannot start."""
        state = self.state
        if state.train is None:
            self.notify("load a data set first (screen 1)", severity="warning")
            return None
        if self._busy:
            self.notify(f"{self._busy} is running; c cancels it", severity="warning")
            return None
        if not state.rec_selected:
            self.notify("tick at least one recommender (space)", severity="warning")
            return None
        return list(state.rec_selected)

    def _start(self, busy: str, label: str, total: int) -> threading.Event:
        self._busy = busy
        self._cancel = threading.Event()
        self._done = 0
        self.begin_work("recs", label, self._cancel)
        self.query_one("#recs-progress").display = True
        self.query_one("#recs-bar", ProgressBar).update(total=total, progress=0)
        self.query_one("#recs-phase", Label).update(label)
        return self._cancel

    def _stop(self) -> None:
        self._busy = ""
        self.end_work("recs")
        self.query_one("#recs-progress").display = False

    def action_cancel(self) -> None:
        """Stop the running leaderboard or training (a model being fitted stops at its next check)."""
        if not self._busy:
            return
        self._cancel.set()
        self.query_one("#recs-phase", Label).update(f"cancelling the {self._busy}…")

    def on_engine_event(self, message: EngineEvent) -> None:
        e = message.event
        phase = self.query_one("#recs-phase", Label)
        if isinstance(e, ev.Progress) and e.task == "evaluate-recs":
            self.query_one("#recs-bar", ProgressBar).update(total=e.total, progress=e.done)
            if e.message and not self._cancel.is_set():
                phase.update(f"leaderboard: {e.message}")
        elif isinstance(e, ev.AfterEpoch) and not self._cancel.is_set():
            what = "leaderboard" if self._busy == "leaderboard" else "training"
            phase.update(f"{what}: {e.model} {_step_name(e.model)} {e.epoch}/{e.n_epochs}")

    def _forward(self, e: ev.Event) -> None:
        """An engine event, from the worker thread to the screen."""
        if isinstance(e, ev.Progress | ev.AfterEpoch):
            self.post_message(EngineEvent(e))

    # -- the leaderboard -----------------------------------------------------------------------------------

    def action_evaluate(self) -> None:
        """Compute the ticked recommenders' leaderboard on the loaded data (`flowtui evaluate-recs`)."""
        names = self._chosen()
        if names is None or self.state.train is None:
            return
        cancel = self._start("leaderboard", f"leaderboard of {len(names)} recommenders…", SEEDS * len(names))
        self._evaluate(self.state.train.frame, names, self.state.preset, cancel, self.state.quitting)

    @work(thread=True, exclusive=True, exit_on_error=False, group="recs-board")
    def _evaluate(
        self,
        frame: pd.DataFrame,
        names: list[str],
        preset: str,
        cancel: threading.Event,
        quitting: threading.Event,
    ) -> None:
        from flowtui.core.workflows import recs as workflow

        def run() -> Any:
            return workflow.evaluate(
                frame,
                names,
                k=K,
                seeds=SEEDS,
                preset=preset,
                source=helpers.data_label(frame),
                fingerprint=helpers.fingerprint(frame),
                stamp=True,
                on_event=self._forward,
                cancel=cancel,
            )

        try:
            board = helpers.call_abandonable(run, quitting)
        except helpers.Abandoned:
            return
        except ev.Cancelled:
            self.post_message(RecBoardReady(None, frame, "cancelled: the leaderboard was not kept"))
            return
        except DataError as err:
            self.post_message(RecBoardReady(None, frame, err.one_line()))
            return
        except (ValueError, TypeError) as exc:
            self.post_message(RecBoardReady(None, frame, " ".join(str(exc).split())))
            return
        self.post_message(RecBoardReady(board, frame))

    def on_rec_board_ready(self, message: RecBoardReady) -> None:
        state = self.state
        if message.restored:
            if state.rec_board is None and state.train is not None and message.frame is state.train.frame:
                state.rec_board = message.board
                self._show_board()
            return
        self._stop()
        if message.board is None:
            self.notify(message.error, title="leaderboard", severity="warning")
            self.query_one("#recs-info", Static).update(f"✗ {message.error}")
            return
        if state.train is None or message.frame is not state.train.frame:
            self.notify("other data were loaded meanwhile: that leaderboard was dropped", severity="warning")
            return
        state.rec_board = message.board
        best = message.board.rows[0]["model"] if message.board.rows else "?"
        state.record(f"recommendation leaderboard on {helpers.data_label(message.frame)}: best {best}")
        self._show_board()
        self._store_board(state.models_dir / helpers.RECS_DIR, message.board)

    @work(thread=True, exit_on_error=False, group="recs-board-file")
    def _store_board(self, folder: Path, board: Any) -> None:
        """Keep the leaderboard beside the recommenders for a later session on the same data (a failure to
        write is told)."""
        from flowtui.core import safe_files
        from flowtui.core.workflows import recs as workflow

        try:
            workflow.save_leaderboard(board, folder)
        except (OSError, safe_files.UnsafePathError) as exc:
            path = folder / workflow.BOARD_FILE
            self.app.call_from_thread(
                self.notify, f"leaderboard not kept in {path}: {exc}", severity="warning", timeout=6
            )

    @work(thread=True, exclusive=True, exit_on_error=False, group="recs-board-read")
    def _restore_board(self, models_dir: Path, frame: pd.DataFrame) -> None:
        """Show the kept leaderboard again when it was computed on these data (same fingerprint)."""
        from flowtui.core.workflows import recs as workflow

        board = workflow.load_leaderboard(models_dir / helpers.RECS_DIR, helpers.fingerprint(frame))
        if board is not None:
            self.post_result(RecBoardReady(board, frame, restored=True))

    def _show_board(self) -> None:
        board = self._board = self.state.rec_board
        table = self.query_one("#recs-board", DataTable)
        cursor = table.cursor_row
        table.clear()
        self._rows = list(board.rows) if board is not None else []
        for i, r in enumerate(self._rows):
            cells = [
                cell(r, key, d, sd) if key != "model" else r["model"] for _, _, key, d, sd in BOARD_COLUMNS
            ]
            if i == 0:
                cells[4] = "best"
            table.add_row(*cells, key=r["model"])
        if board is not None:
            for name, why in board.skipped.items():
                table.add_row(name, *["-"] * (len(BOARD_COLUMNS) - 2), "", key=name)
                self._rows.append({"model": name, "skipped": why})
        if self._rows:
            table.move_cursor(row=min(max(cursor, 0), len(self._rows) - 1))
        self._show_info()
        self._show_detail()

    def _show_info(self) -> None:
        state, board = self.state, self._board
        info = self.query_one("#recs-info", Static)
        if state.train is None:
            info.update("Load a data set first (screen 1).")
        elif board is None:
            info.update(
                f"No recommendation leaderboard on these data yet: e computes it for the ticked recommenders "
                f"({SEEDS} seeds, {state.preset} preset), t trains them."
            )
        else:
            data = board.setup.get("data") or {}
            when = f" · computed {board.setup['computed']}" if board.setup.get("computed") else ""
            info.update(f"{board_setup(board.setup)} · data: {data.get('source', '?')}{when}")

    @on(DataTable.RowHighlighted, "#recs-board")
    def _board_row(self) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        detail = self.query_one("#recs-detail", Static)
        table = self.query_one("#recs-board", DataTable)
        if not self._rows or not 0 <= table.cursor_row < len(self._rows):
            detail.update("")
            return
        r = self._rows[table.cursor_row]
        if "skipped" in r:
            detail.update(f"{r['model']}: left out ({r['skipped']})")
            return
        bits = [f"{label} {cell(r, key, d, True)}" for label, key, d in DETAIL if r.get(key) is not None]
        per_seed = " ".join(
            num(s["ndcg_at_k"], 3) for s in r.get("per_seed", []) if s["ndcg_at_k"] is not None
        )
        detail.update(f"[b]{r['model']}[/b]: " + " · ".join(bits) + f" · NDCG per seed {per_seed}")

    # -- training ------------------------------------------------------------------------------------------

    def action_train(self) -> None:
        """Train the ticked recommenders on all of the loaded data; each is saved to MODELS/recs/NAME."""
        names = self._chosen()
        state = self.state
        if names is None or state.train is None:
            return
        cancel = self._start("training", f"training {len(names)} recommenders…", len(names))
        self._trained, self._auto_pick = [], state.rec_model is None
        folder = state.models_dir / helpers.RECS_DIR
        self._train(state.train.frame, names, folder, state.preset, cancel, state.quitting)

    @work(thread=True, exclusive=True, exit_on_error=False, group="recs-train")
    def _train(
        self,
        frame: pd.DataFrame,
        names: list[str],
        folder: Path,
        preset: str,
        cancel: threading.Event,
        quitting: threading.Event,
    ) -> None:
        from flowtui.core.workflows import recs as workflow

        def told(name: str, outcome: workflow.Trained | Exception) -> None:
            if isinstance(outcome, workflow.Trained):
                self.post_message(RecTrained(name, outcome.path, frame, seconds=outcome.fit_seconds))
                return
            if isinstance(outcome, DataError):
                error = outcome.one_line()
            elif isinstance(outcome, OSError):
                error = f"cannot write {folder / name}: {outcome}"
            else:
                error = " ".join(str(outcome).split())
            self.post_message(RecTrained(name, None, frame, error))

        request = workflow.TrainRequest(tuple(names), folder, {}, preset, keep_going=True)

        def run() -> None:
            workflow.train_and_save(
                frame,
                request,
                fingerprint=helpers.fingerprint(frame),
                on_event=self._forward,
                cancel=cancel,
                on_model=told,
            )

        try:
            helpers.call_abandonable(run, quitting)
        except helpers.Abandoned:
            return
        except ev.Cancelled:
            pass
        self.post_message(RecTrainingEnded(cancelled=cancel.is_set()))

    def on_rec_trained(self, message: RecTrained) -> None:
        state = self.state
        self._done += 1
        self.query_one("#recs-bar", ProgressBar).update(progress=self._done)
        if message.folder is None:
            state.record(f"[red]recommender {message.name} failed[/]: {message.error}")
            self.notify(f"{message.name}: {message.error}", title="training failed", severity="error")
            return
        name = f"{helpers.RECS_DIR}/{message.name}"
        if state.train is not None and message.frame is state.train.frame:
            state.rec_saved[message.name] = message.folder
        self._trained.append(message.name)
        state.record(f"recommender {message.name} saved to {message.folder} (fit {message.seconds:.1f}s)")
        self.query_one("#recs-phase", Label).update(f"saved {name}")
        self.refresh_saved(force=True)

    def on_rec_training_ended(self, message: RecTrainingEnded) -> None:
        self._stop()
        state = self.state
        if self._auto_pick and self._trained and state.rec_model is None:
            # the best of the leaderboard among those just trained, else the first trained
            order = [r["model"] for r in state.rec_board.rows] if state.rec_board is not None else []
            best = next((n for n in order if n in self._trained), self._trained[0])
            state.rec_model = f"{helpers.RECS_DIR}/{best}"
            why = " (best NDCG on the leaderboard)" if best in order else ""
            self.notify(f"screens 5 and 6 now recommend with {state.rec_model}{why}", timeout=5)
            self.refresh_saved(force=True)
        if message.cancelled:
            self.notify("recommender training cancelled: what was saved before stays", severity="warning")
        else:
            self.notify("recommenders trained and saved", timeout=4)
        self.scan_models(self.state.models_dir)  # the pickers of screens 5 and 6 offer them


def _step_name(model: str) -> str:
    """What one progress step of `model` is called ("epoch"; "fit step" for a closed form such as EASE)."""
    from flowtui.core import registry

    try:
        return str(getattr(registry.get_recommender(model).factory, "step_name", "epoch"))
    except KeyError:
        return "epoch"

"""Screen 4: the holdout leaderboard, ROC curves, feature importances, and writing a submission.

The leaderboard holds this session's run on the loaded data, then the models saved earlier on the same
data (their scores read from meta.json), then, apart and without scores, saved models trained on other
data. `s` writes a submission with any of them, asking for the file.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Label
from textual_plotext import PlotextPlot

from flowtui.core.errors import DataError
from flowtui.tui import helpers
from flowtui.tui.dialogs import ConfirmDialog, PathDialog
from flowtui.tui.messages import FileWritten, OtherDataQuestion, SavedModelsRead
from flowtui.tui.screens.base import FlowScreen
from flowtui.tui.widgets import add_columns
from flowtui.tui.widgets.barchart import BarChart

if TYPE_CHECKING:
    import pandas as pd

    from flowtui.core.flow.evaluate import Leaderboard
    from flowtui.core.flow.store import SavedModel

COLUMNS = ("auc", "logloss", "accuracy", "fit_seconds", "predict_seconds")
HEADERS = [
    ("", 1),
    ("model", 22),
    ("AUC", 7),
    ("log loss", 8),
    ("accuracy", 8),
    ("fit s", 7),
    ("predict s", 9),
]


@dataclass
class BoardRow:
    """A line of the leaderboard: a model of this session's run, or a saved one."""

    name: str
    source: str  # "run" (this session), "saved" (earlier, same data) or "other" (saved, other data)
    scores: dict[str, float | None]
    baseline: bool = False
    error: str | None = None
    folder: Path | None = None
    cancelled: bool = False  # a model of this run cancelled by the person: not saved

    @property
    def label(self) -> str:
        if self.cancelled:  # cancelled before or after its holdout: the person's doing, not a failure
            return self.name + (" *" if self.baseline else "") + " (cancelled)"
        mark = " *" if self.baseline else " ✗" if self.error else ""
        tag = {"saved": " (saved)", "other": " (other)"}.get(self.source, "")
        return self.name + mark + tag

    @property
    def key(self) -> str:
        """The table's row key (a model of this run and the one saved earlier share a name)."""
        return f"{self.source}:{self.name}"


def _holdout(model: SavedModel) -> dict[str, float | None]:
    holdout = model.meta.get("holdout")
    scores: dict[str, float | None] = dict.fromkeys(COLUMNS)
    if isinstance(holdout, dict):
        for key in ("auc", "logloss", "accuracy"):
            value = holdout.get(key)
            scores[key] = (
                float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
            )
    return scores


def board_rows(
    board: Leaderboard | None,
    saved_now: dict[str, Path],
    saved: list[SavedModel],
    fingerprint: str,
    cancelled: frozenset[str] = frozenset(),
) -> list[BoardRow]:
    """This session's rows (sorted by AUC; `cancelled` ones marked), the saved models of the same data (by
    AUC), then the saved models of other data (by name, no scores: their scores were measured on other
    rows). A saved model is left out only when this run saved its folder anew: a model of the run that
    was not saved keeps the older saved one in view, on its own row."""
    rows: list[BoardRow] = []
    if board is not None:
        for r in board.rows:
            scores = {c: getattr(r, c) for c in COLUMNS}
            folder = saved_now.get(r.model)
            gone = r.model in cancelled
            rows.append(BoardRow(r.model, "run", scores, r.baseline, r.error, folder, gone))
    seen = {r.name for r in rows if r.folder is not None}
    same = [m for m in saved if m.meta.get("data_fingerprint") == fingerprint and m.name not in seen]
    same.sort(key=lambda m: (-(m.auc or 0.0), m.name))
    rows += [BoardRow(m.name, "saved", _holdout(m), folder=m.folder) for m in same]
    other = [m for m in saved if m.meta.get("data_fingerprint") != fingerprint and m.name not in seen]
    rows += [BoardRow(m.name, "other", dict.fromkeys(COLUMNS), folder=m.folder) for m in other]
    return rows


class ResultsScreen(FlowScreen):
    """Compare the trained models."""

    HELP = (
        "↑/↓ picks a model (its importances), space marks it for the ROC chart, s writes a submission "
        "with it (any saved model; asks for the file)."
    )
    BINDINGS = [  # noqa: RUF012
        Binding("space", "mark", "ROC mark"),
        Binding("s", "submission", "Submission"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._board: Leaderboard | None = None
        self._marked: set[str] = set()
        self._rows: list[BoardRow] = []
        self._saved: list[SavedModel] = []
        self._fingerprint = ""
        self._saved_key: object = None
        self._shown_key: object = None

    def compose_body(self) -> ComposeResult:
        yield Label("No leaderboard yet: train models on screen 3.", id="leak-warning")
        yield DataTable(id="leaderboard", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="results-body"):
            yield PlotextPlot(id="roc")
            yield BarChart("Feature importances", id="importances", max_rows=20)

    def on_mount(self) -> None:
        add_columns(self.query_one("#leaderboard", DataTable), HEADERS)
        self.query_one("#leaderboard").border_title = "Holdout leaderboard (last Flow row per user)"
        self._refresh()

    def on_screen_resume(self) -> None:
        self.refresh_board()

    def refresh_from_state(self) -> None:
        self.refresh_board()

    def refresh_board(self) -> None:
        """Show the state's leaderboard and re-read the saved models when something changed."""
        state = self.state
        if state.leaderboard is not self._board:
            self._refresh()
        if state.train is None:
            return
        key = (str(state.models_dir), id(state.train.frame), _folder_key(state.models_dir))
        if key != self._saved_key:
            self._saved_key = key
            if not self._rows:
                self.hold_keys()  # `s` or ↓ pressed before the saved models are listed act on them
            self._read_saved(state.models_dir, state.train.frame)

    @work(thread=True, exclusive=True, exit_on_error=False, group="saved-models")
    def _read_saved(self, models_dir: Path, frame: pd.DataFrame) -> None:
        """The saved models and the loaded data's fingerprint (reading them checks the model files)."""
        from flowtui.core.flow import store

        self.post_result(SavedModelsRead(helpers.fingerprint(frame), store.list_models(models_dir)))

    def on_saved_models_read(self, message: SavedModelsRead) -> None:
        self._saved, self._fingerprint = message.models, message.fingerprint
        self._refresh()
        self.release_keys()

    def _refresh(self) -> None:
        state = self.state
        board = self._board = state.leaderboard
        cancelled = frozenset(state.cancelled)
        self._rows = board_rows(board, state.saved, self._saved, self._fingerprint, cancelled)
        table = self.query_one("#leaderboard", DataTable)
        cursor = table.cursor_row
        table.clear()
        warning = self.query_one("#leak-warning", Label)
        names = [r.name for r in self._rows if r.source == "run"]
        if board is not None and not self._marked & set(names):
            self._marked = set(names[:3])
        for r in self._rows:
            cells = ["●" if r.name in self._marked and r.source == "run" else " ", r.label]
            for col in COLUMNS:
                v = r.scores.get(col)
                cells.append("" if v is None else f"{v:.2f}" if col.endswith("seconds") else f"{v:.4f}")
            table.add_row(*cells, key=r.key)
        if self._rows:
            table.move_cursor(row=min(max(cursor, 0), len(self._rows) - 1))
        warning.update(self._info(board))
        warning.set_class(board is not None and bool(board.leak_warning), "-warning")
        self._draw_roc()
        current = self._current()
        if current is not None:
            self._show_importances(current.name)

    def _info(self, board: Leaderboard | None) -> str:
        if board is not None and board.leak_warning:
            return f"⚠ {board.leak_warning}"
        bits = []
        if board is not None:
            bits.append(f"{board.n_targets:,} held-out Flow rows · * baseline · sorted by AUC")
        n_saved = sum(r.source == "saved" for r in self._rows)
        n_other = sum(r.source == "other" for r in self._rows)
        if n_saved:
            bits.append(f"{n_saved} saved earlier on these data")
        if n_other:
            bits.append(f"{n_other} trained on other data (last, no scores)")
        if not bits:
            return "No leaderboard yet: train models on screen 3."
        return " · ".join(bits)

    def _current(self) -> BoardRow | None:
        table = self.query_one("#leaderboard", DataTable)
        if not self._rows or table.cursor_row < 0 or table.cursor_row >= len(self._rows):
            return None
        return self._rows[table.cursor_row]

    @on(DataTable.RowHighlighted, "#leaderboard")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self._show_importances(str(event.row_key.value).split(":", 1)[1])

    def _show_importances(self, name: str) -> None:
        chart = self.query_one("#importances", BarChart)
        imps = self._board.importances.get(name) if self._board is not None else None
        if imps is None or len(imps) == 0:
            run = self._board is not None and name in self._board.predictions
            why = "no feature importances" if run else "no importances (saved model)"
            chart.set_data([], title=f"{name}: {why}")
            return
        top = imps.sort_values(ascending=False).head(20)
        total = float(imps.abs().sum()) or 1.0
        chart.set_data(
            [(str(k), float(v) / total) for k, v in top.items()], title=f"{name}: importances (share)"
        )

    def action_mark(self) -> None:
        """Add or remove the highlighted model from the ROC chart."""
        row = self._current()
        if row is None:
            return
        if row.source != "run":
            self.notify("ROC curves need this session's holdout predictions", severity="warning", timeout=3)
            return
        self._marked ^= {row.name}
        table = self.query_one("#leaderboard", DataTable)
        table.update_cell(row.key, table.ordered_columns[0].key, "●" if row.name in self._marked else " ")
        self._draw_roc()

    def _draw_roc(self) -> None:
        chart = self.query_one("#roc", PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        board = self._board
        plt.title("ROC (holdout)" if board is not None else "ROC: train here to draw it")
        plt.xlabel("false positive rate")
        plt.xlim(0, 1)
        plt.ylim(0, 1)
        plt.plot([0.0, 1.0], [0.0, 1.0], color="gray")
        if board is not None:
            from flowtui.core import metrics

            holdout = board.predictions
            for row in self._rows:
                if row.source == "run" and row.name in self._marked and row.name in holdout:
                    y, p = holdout[row.name]
                    fpr, tpr = metrics.roc_curve_points(y, p)[:2]
                    plt.plot(list(map(float, fpr)), list(map(float, tpr)), label=row.name)
        chart.refresh()

    # -- submission ---------------------------------------------------------------------------------------

    def action_submission(self) -> None:
        """Write a submission for the loaded test file with the highlighted model (asks for the file, naming
        the saved model used and warning when the test file's users barely overlap the train file's)."""
        state = self.state
        row = self._current()
        if state.train is None or state.test is None:
            self.notify("no test file loaded (screen 1)", severity="warning")
            return
        if row is None:
            self.notify("no model yet: train one (screens 2-3)", severity="warning")
            return
        folder = row.folder
        if folder is None:
            self.notify(self._not_saved(row), severity="warning")
            return
        notes = [f"uses {saved_label(folder)}"]
        if row.source == "other":
            notes.append(
                f"⚠ {row.name} was trained on other data than the loaded train file: you will be asked "
                "before anything is written."
            )
        mismatch = self._pairing_warning()
        if mismatch:
            notes.append(f"⚠ {mismatch}")
        default = state.out_dir / f"submission_{row.name}.csv"
        dialog = PathDialog(f"Write a submission with {row.name}", default, "\n".join(notes))
        self.app.push_screen(dialog, partial(self._write_to, folder))

    def _not_saved(self, row: BoardRow) -> str:
        """Why `row` (a model of this run without a saved folder) cannot write a submission."""
        why = "was cancelled: not saved" if row.cancelled else "has no saved final fit"
        if any(r.source != "run" and r.name == row.name for r in self._rows):
            return f"{row.name} of this run {why}; its row marked (saved) holds the model saved earlier"
        return f"{row.name} {why}; train it first"

    def _pairing_warning(self) -> str:
        """The warning of `core.flow.pairing` for the loaded train and test files (cached per pair)."""
        from flowtui.core.flow.pairing import pairing_warning

        state = self.state
        if state.train is None or state.test is None:
            return ""
        train, test = state.train.frame, state.test.frame
        train_name = helpers.short_path(state.train_path or "the train file")
        test_name = helpers.short_path(state.test_path or "the test file")

        def warning() -> str:
            return pairing_warning(train, test, train_name=train_name, test_name=test_name)

        return helpers.PER_FRAME.get(train, f"pairing {id(test)} {train_name} {test_name}", warning)

    def _write_to(self, folder: Path, path: Path | None) -> None:
        state = self.state
        if path is None or state.train is None or state.test is None:
            return
        self.begin_work("submission", f"writing {path.name}")
        allowed = set(state.other_data_ok)
        self._write(folder, state.train.frame, state.test.frame, path, allowed, state.quitting)

    @work(thread=True, exclusive=True, exit_on_error=False, group="submission")
    def _write(
        self,
        folder: Path,
        train: pd.DataFrame,
        test: pd.DataFrame,
        out: Path,
        allowed: set[str],
        quitting: threading.Event,
    ) -> None:
        """Load the model, check its data (a model of other data waits for a yes), predict and write."""
        from flowtui.core.flow import evaluate, store

        def write() -> OtherDataQuestion | int:
            trained = store.load_model(folder)
            key = helpers.data_key(folder, train)
            question = helpers.other_data_question(trained, train, trained.name, rows=test)
            if question and key not in allowed:
                return OtherDataQuestion(folder, question, key, out)
            sub = evaluate.predict(trained, train, test)
            helpers.write_table(sub, out)
            return len(sub)

        try:
            result = helpers.call_abandonable(write, quitting)
        except helpers.Abandoned:
            return
        if isinstance(result, OtherDataQuestion):
            self.post_message(result)
        else:
            self.post_message(FileWritten(out, result, "submission", f" with {saved_label(folder)}"))

    def on_other_data_question(self, message: OtherDataQuestion) -> None:
        self.end_work("submission")
        out = message.out

        def answer(yes: bool | None) -> None:
            state = self.state
            if not yes or out is None:
                self.notify(f"no submission written: {message.folder.name} is not a model of these data")
                return
            state.other_data_ok.add(message.key)
            state.record(
                f"[yellow]{message.folder.name} used on other data[/] (confirmed): {message.question}"
            )
            self._write_to(message.folder, out)

        question = f"{message.question}\nWrite the submission with it anyway?"
        self.app.push_screen(
            ConfirmDialog(question, yes="Write anyway", no="Cancel", tag="other-data", default=False), answer
        )

    def on_file_written(self, message: FileWritten) -> None:
        self.end_work("submission")
        self.query_one("#leaderboard").border_subtitle = f"wrote {helpers.short_path(message.path)}"
        self.wrote(message.path, message.what, message.rows, message.detail)


def saved_label(folder: Path) -> str:
    """The saved model in `folder` as a submission names it: folder, date saved and holdout AUC."""
    from flowtui.core.flow import store

    try:
        meta = store.read_meta(folder)
    except (DataError, OSError):
        return helpers.short_path(folder)
    created = str(meta.get("created") or "?").replace("T", " ")[:16]
    holdout = meta.get("holdout")
    auc = holdout.get("auc") if isinstance(holdout, dict) else None
    score = f", holdout AUC {auc:.4f}" if isinstance(auc, int | float) and not isinstance(auc, bool) else ""
    return f"{helpers.short_path(folder)} (saved {created}{score})"


def _folder_key(models_dir: Path) -> tuple[tuple[str, int], ...]:
    """What changes when a model is saved or removed: each meta.json's modification time."""
    try:
        return tuple(
            sorted(
                (p.name, (p / "meta.json").stat().st_mtime_ns)
                for p in models_dir.iterdir()
                if (p / "meta.json").is_file()
            )
        )
    except OSError:
        return ()

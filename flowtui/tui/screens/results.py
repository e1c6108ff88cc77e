"""Screen 4: the holdout leaderboard, ROC curves, feature importances, and writing a submission."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Label
from textual_plotext import PlotextPlot

from flowtui.tui.messages import SubmissionWritten
from flowtui.tui.screens.base import FlowScreen
from flowtui.tui.widgets import add_columns
from flowtui.tui.widgets.barchart import BarChart

if TYPE_CHECKING:
    import pandas as pd

    from flowtui.core.flow.evaluate import Leaderboard

COLUMNS = ("model", "auc", "logloss", "accuracy", "fit_seconds", "predict_seconds")
HEADERS = [
    ("", 1),
    ("model", 18),
    ("AUC", 7),
    ("log loss", 8),
    ("accuracy", 8),
    ("fit s", 7),
    ("predict s", 9),
]


class ResultsScreen(FlowScreen):
    """Compare the trained models."""

    HELP = "↑/↓ picks a model (its importances), space marks it for the ROC chart, s writes a submission."
    BINDINGS = [  # noqa: RUF012
        Binding("space", "mark", "ROC mark"),
        Binding("s", "submission", "Submission"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._board: Leaderboard | None = None
        self._marked: set[str] = set()
        self._names: list[str] = []

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

    def refresh_board(self) -> None:
        """Show the state's leaderboard if it changed."""
        if self.state.leaderboard is not self._board:
            self._refresh()

    def refresh_from_state(self) -> None:
        self.refresh_board()

    def _refresh(self) -> None:
        board = self._board = self.state.leaderboard
        table = self.query_one("#leaderboard", DataTable)
        table.clear()
        warning = self.query_one("#leak-warning", Label)
        if board is None:
            self._names = []
            self._draw_roc()
            return
        self._names = [r.model for r in board.rows]
        if not self._marked & set(self._names):
            self._marked = set(self._names[:3])
        for r in board.rows:
            name = r.model
            label = name + (" *" if r.baseline else "") + (" ✗" if r.error else "")
            cells = ["●" if name in self._marked else " ", label]
            for col in COLUMNS[1:]:
                v: float | None = getattr(r, col)
                cells.append("" if v is None else f"{v:.2f}" if col.endswith("seconds") else f"{v:.4f}")
            table.add_row(*cells, key=name)
        leak = board.leak_warning
        info = f"{board.n_targets:,} held-out Flow rows · * baseline · sorted by AUC"
        warning.update(f"⚠ {leak}" if leak else info)
        warning.set_class(bool(leak), "-warning")
        self._draw_roc()
        if self._names:
            self._show_importances(self._names[0])

    def _current(self) -> str | None:
        table = self.query_one("#leaderboard", DataTable)
        if not self._names or table.cursor_row < 0 or table.cursor_row >= len(self._names):
            return None
        return self._names[table.cursor_row]

    @on(DataTable.RowHighlighted, "#leaderboard")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self._show_importances(str(event.row_key.value))

    def _show_importances(self, name: str) -> None:
        chart = self.query_one("#importances", BarChart)
        imps = self._board.importances.get(name) if self._board is not None else None
        if imps is None or len(imps) == 0:
            chart.set_data([], title=f"{name}: no feature importances")
            return
        top = imps.sort_values(ascending=False).head(20)
        total = float(imps.abs().sum()) or 1.0
        chart.set_data(
            [(str(k), float(v) / total) for k, v in top.items()], title=f"{name}: importances (share)"
        )

    def action_mark(self) -> None:
        """Add or remove the highlighted model from the ROC chart."""
        name = self._current()
        if name is None:
            return
        self._marked ^= {name}
        table = self.query_one("#leaderboard", DataTable)
        table.update_cell(name, table.ordered_columns[0].key, "●" if name in self._marked else " ")
        self._draw_roc()

    def _draw_roc(self) -> None:
        chart = self.query_one("#roc", PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("ROC (holdout)")
        plt.xlabel("false positive rate")
        plt.xlim(0, 1)
        plt.ylim(0, 1)
        plt.plot([0.0, 1.0], [0.0, 1.0], color="gray")
        board = self._board
        if board is not None:
            from flowtui.core import metrics

            holdout = board.predictions
            for name in self._names:
                if name in self._marked and name in holdout:
                    y, p = holdout[name]
                    fpr, tpr = metrics.roc_curve_points(y, p)[:2]
                    plt.plot(list(map(float, fpr)), list(map(float, tpr)), label=name)
        chart.refresh()

    def action_submission(self) -> None:
        """Write a submission for the loaded test file with the highlighted model."""
        state = self.state
        name = self._current()
        if state.train is None or state.test is None:
            self.notify("no test file loaded (screen 1)", severity="warning")
            return
        folder = state.saved.get(name) if name else None
        if folder is None and name and (state.models_dir / name / "meta.json").is_file():
            folder = state.models_dir / name  # saved by an earlier session or by `flowtui train`
        if name is None or folder is None:
            self.notify(f"{name or 'this model'} has no saved final fit; train it first", severity="warning")
            return
        out = state.out_dir / f"submission_{name}.csv"
        self.notify(f"writing {out.name}…", timeout=2)
        self._write(folder, state.train.frame, state.test.frame, out)

    @work(thread=True, exclusive=True, exit_on_error=False, group="submission")
    def _write(self, folder: Path, train: pd.DataFrame, test: pd.DataFrame, out: Path) -> None:
        from flowtui.core.data import io
        from flowtui.core.flow import evaluate, store

        trained = store.load_model(folder)
        sub = evaluate.predict(trained, train, test)
        io.write_csv(sub, out)
        self.post_message(SubmissionWritten(out, len(sub)))

    def on_submission_written(self, message: SubmissionWritten) -> None:
        self.notify(f"wrote {message.rows:,} rows to {message.path}", title="submission", timeout=8)

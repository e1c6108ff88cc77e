"""Screen 1: choose train/test files, load and validate them in a worker, show what they hold."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Input, Label, ProgressBar, Static

from flowtui.core import events as ev
from flowtui.core.errors import DataError
from flowtui.tui import helpers
from flowtui.tui.messages import DataFailed, DataLoaded, EngineEvent
from flowtui.tui.screens.base import FlowScreen
from flowtui.tui.widgets import add_columns
from flowtui.tui.widgets.barchart import Chart, Charts
from flowtui.tui.widgets.path_input import PathInput

if TYPE_CHECKING:
    import pandas as pd

    from flowtui.core.data.schema import DataWarning

_RATE_KEYS = ("rate", "share")
_TIME_KEYS = ("ts_min", "ts_max")


def charts_of(dists: dict[str, pd.Series]) -> list[Chart]:
    """The data screen's charts (four of `summary.distributions`; the others stay for the CLI): the same
    kind of chart for a figure on every data set, its axes named."""

    def pairs(name: str) -> tuple[tuple[str, float], ...]:
        return tuple((str(k), float(v)) for k, v in dists[name].items())

    def rate(name: str) -> str:
        return "share of rows" if dists[name].name == "share" else "listen rate"

    charts = []
    if "listen_rate_by_hour" in dists:
        name = "listen_rate_by_hour"
        charts.append(Chart(f"{rate(name)} by hour of day (UTC)", pairs(name), "columns", x_label="hour"))
    if "listen_rate_by_platform_family" in dists:
        name = "listen_rate_by_platform_family"
        charts.append(Chart(f"{rate(name)} by platform family", pairs(name), axes=("family", rate(name))))
    if "listen_rate_by_context" in dists:
        name = "listen_rate_by_context"
        n = len(dists[name])
        title = f"{rate(name)} by context type (top {n}, most frequent first)"
        charts.append(Chart(title, pairs(name), axes=("context", rate(name))))
    if "rows_per_user" in dists:
        title = "users by rows per user (power-of-two bins)"
        charts.append(Chart(title, pairs("rows_per_user"), axes=("rows/user", "users"), fmt="{:,.0f}"))
    return charts


def format_value(key: str, value: object) -> str:
    """A summary figure as the screen shows it."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if key in _TIME_KEYS and isinstance(value, int | float):
        return dt.datetime.fromtimestamp(int(value), dt.UTC).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:.3f}" if any(k in key for k in _RATE_KEYS) or abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class DataScreen(FlowScreen):
    """Load and inspect a data set."""

    AUTO_FOCUS = "#summary"
    HOME = "#summary"
    HELP = "Type paths (→ completes), enter or ctrl+l loads and validates."
    BINDINGS = [  # noqa: RUF012
        Binding("ctrl+l", "load", "Load"),
        Binding("ctrl+t", "focus_train", "Train path", show=False),
        Binding("ctrl+o", "use_beside", "Use the test file beside the train file", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()
        self._loading: tuple[Path, Path | None] | None = None  # the files of the load under way
        self._beside: Path | None = None  # the test file beside a new train file, offered (ctrl+o)

    def compose_body(self) -> ComposeResult:
        state = self.state
        with Horizontal(id="data-paths"):
            train = PathInput(
                str(state.train_path or ""), "train.csv / .parquet", prefer="train", id="train-path"
            )
            train.border_title = "train file (ctrl+t)"
            yield train
            test = PathInput(str(state.test_path or ""), "test.csv", prefer="test", id="test-path")
            test.border_title = "test file (optional)"
            yield test
        with Horizontal(id="data-progress"):
            yield ProgressBar(total=None, clock=state.clock, id="load-bar")
            yield Label("", id="load-status")
        yield Static("", id="data-error")
        with Horizontal(id="data-body"):
            yield DataTable(id="summary", show_cursor=False, zebra_stripes=True)
            with VerticalScroll(id="dists"):
                yield Charts(id="charts")
        yield DataTable(id="warnings", show_cursor=False)

    def on_mount(self) -> None:
        add_columns(self.query_one("#summary", DataTable), [("figure", 16), ("value", 16)])
        add_columns(
            self.query_one("#warnings", DataTable),
            [("warning", 24), ("column", 12), ("rows", 7), ("message", 60)],
        )
        self.query_one("#warnings").border_title = "Validation warnings"
        self.query_one("#summary").border_title = "Summary"
        self.query_one("#dists").border_title = "Distributions"
        self.query_one("#dists").border_subtitle = "tab here, ↓ scrolls"
        self.query_one("#data-error").display = False
        if self.state.train_path is not None:
            self.action_load()

    def action_focus_train(self) -> None:
        self.query_one("#train-path").focus()

    @on(Input.Submitted, "#train-path, #test-path")
    def _submitted(self) -> None:
        self.action_load()

    def action_load(self) -> None:
        """Load and validate the files named in the inputs."""
        train = self.query_one("#train-path", Input).value.strip()
        test = self.query_one("#test-path", Input).value.strip()
        if not train:
            self._show_error("give a train file first", [])
            return
        self._start_load(Path(train).expanduser(), Path(test).expanduser() if test else None)

    def action_use_beside(self) -> None:
        """Load the test file found beside a newly loaded train file (offered after that load)."""
        beside = self._beside
        train, test = self.state.train_path, self.state.test_path
        if beside is None and train is not None:  # asked for at any time: the file beside the loaded train
            found = train.parent / (
                train.name.replace("train", "test") if "train" in train.name else "test.csv"
            )
            beside = found if found.is_file() and (test is None or not _same_file(found, test)) else None
        if beside is None:
            self.notify("no other test file beside the train file to offer", timeout=3)
            return
        field = self.query_one("#test-path", PathInput)
        field.value = str(beside)
        field.show_end()
        self.action_load()

    def _start_load(self, train_path: Path, test_path: Path | None) -> None:
        self._cancel.set()
        self._cancel = threading.Event()
        self.query_one("#data-error").display = False
        self.query_one("#load-bar", ProgressBar).update(total=None, progress=0)
        self.query_one("#load-status", Label).update(f"loading {train_path.name}…")
        self._loading = (train_path, test_path)
        self.begin_work("data", f"loading {train_path.name}", self._cancel)
        self._load(train_path, test_path, self._cancel, self.state.quitting)

    @staticmethod
    def _test_beside(train: Path, test: Path | None) -> Path | None:
        """The test file beside `train` ("train" in its name becomes "test", else test.csv) when `test`, the
        test file kept from an earlier load, lies in another folder (None otherwise)."""
        if test is None or _same_file(test.parent, train.parent):
            return None
        beside = train.parent / (train.name.replace("train", "test") if "train" in train.name else "test.csv")
        return beside if beside.is_file() and not _same_file(beside, test) else None

    @work(thread=True, exclusive=True, exit_on_error=False, group="data")
    def _load(
        self, train_path: Path, test_path: Path | None, cancel: threading.Event, quitting: threading.Event
    ) -> None:
        from flowtui.core.data import io, summary

        def on_event(e: ev.Event) -> None:
            self.post_message(EngineEvent(e))

        def load() -> DataLoaded | DataFailed | None:
            try:
                train = io.load_dataset(train_path, kind="train", on_event=on_event, cancel=cancel)
                test = None
                warnings = list(train.warnings)
                if test_path is not None:
                    test = io.load_dataset(test_path, kind="test", on_event=on_event, cancel=cancel)
                    warnings += list(test.warnings) + list(io.check_test_users(train, test))
                figures = summary.summarize(train)
                dists = summary.distributions(train)
            except DataError as err:
                return DataFailed(err.one_line(), err.details())
            except ev.Cancelled:
                return None
            return DataLoaded(train, test, figures, dists, warnings)

        try:
            result = helpers.call_abandonable(load, quitting)
        except helpers.Abandoned:
            return
        if result is not None:
            self.post_result(result)

    def on_engine_event(self, message: EngineEvent) -> None:
        e = message.event
        if isinstance(e, ev.Progress):
            self.query_one("#load-bar", ProgressBar).update(total=e.total, progress=e.done)
            if e.message:
                self.query_one("#load-status", Label).update(e.message)

    def on_data_failed(self, message: DataFailed) -> None:
        self.end_work("data")
        self._show_error(message.error, message.details)
        self.query_one("#load-status", Label).update("refused")
        self.query_one("#load-bar", ProgressBar).update(total=1, progress=0)

    def _show_error(self, error: str, details: list[str]) -> None:
        box = self.query_one("#data-error", Static)
        box.update("\n".join(["✗ " + error, *details]))
        box.display = True

    def on_data_loaded(self, message: DataLoaded) -> None:
        state = self.state
        before = (state.train_path, state.test_path) if state.train is not None else None
        state.train, state.test = message.train, message.test
        state.train_path = self._loading[0] if self._loading else message.train.path
        state.test_path = self._loading[1] if self._loading else None
        state.summary, state.distributions, state.warnings = (
            message.summary,
            message.distributions,
            message.warnings,
        )
        # Models and reasons name the file the frame came from (`data_match.frame_source`).
        message.train.frame.attrs["source"] = str(state.train_path)
        # The leaderboards and the models of this session belong to the data they were computed on.
        state.leaderboard, state.saved, state.cancelled = None, {}, []
        state.rec_board, state.rec_saved = None, {}
        self.end_work("data")
        bar = self.query_one("#load-bar", ProgressBar)
        bar.update(total=1, progress=1)
        n_test = f" + {message.test.n_rows:,} test rows" if message.test is not None else " · no test file"
        still = ""
        new_train_only = before is not None and before[0] != state.train_path and before[1] == state.test_path
        self._beside = None
        if new_train_only and state.test_path is not None and state.train_path is not None:
            still = f" · test file still {helpers.short_path(state.test_path)} (unchanged)"
            self._beside = self._test_beside(state.train_path, state.test_path)
            if self._beside is not None:
                still += f" · ctrl+o uses {helpers.short_path(self._beside)}, beside the train file"
        self.query_one("#load-status", Label).update(f"{message.train.n_rows:,} rows{n_test}{still}")
        self._fill_summary(message.summary)
        self._fill_warnings(message.warnings)
        self._fill_distributions(message.distributions)
        self.notify(
            f"loaded {message.train.n_rows:,} rows{still}", timeout=10 if self._beside else 5 if still else 3
        )
        self.refresh_current_screen()

    def _fill_summary(self, figures: dict[str, Any]) -> None:
        table = self.query_one("#summary", DataTable)
        table.clear()
        for key, value in figures.items():
            if isinstance(value, dict | list):
                continue
            table.add_row(key.replace("_", " "), format_value(key, value))

    def _fill_warnings(self, warnings: list[DataWarning]) -> None:
        table = self.query_one("#warnings", DataTable)
        table.clear()
        for w in warnings:
            table.add_row(w.code, w.column or "", f"{w.count:,}", w.message)
        if not warnings:
            table.add_row("none", "", "", "the files passed every check")

    def _fill_distributions(self, dists: dict[str, pd.Series]) -> None:
        self.query_one("#charts", Charts).set_charts(charts_of(dists))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b

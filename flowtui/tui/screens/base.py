"""The frame every screen shares: the navigation line on top, the status line and the key footer below.

A screen reaches the app only through `FlowHost`, what the app provides (FlowApp implements it): the shared
state, the page table and switching screens. So no screen imports the app module, nor another screen.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

from textual import events, work
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input
from textual.worker import Worker, WorkerState, get_current_worker

from flowtui.tui import helpers
from flowtui.tui.dialogs import PickerDialog
from flowtui.tui.messages import RecModelsFound
from flowtui.tui.state import AppState, Work
from flowtui.tui.widgets.navbar import NavBar
from flowtui.tui.widgets.status_line import StatusLine


@dataclass(frozen=True)
class Page:
    """A row of the app's page table (`flowtui.tui.layout.PAGES`): a top-level screen and how to reach it."""

    mode: str  # the app mode, as in `goto('data')`
    key: str  # the key that shows it
    label: str  # its name in the navigation line, the palette and the help
    screen: type[FlowScreen]


@runtime_checkable
class FlowHost(Protocol):
    """What a screen may use of the app that shows it."""

    state: AppState

    @property
    def pages(self) -> Sequence[Page]: ...

    def action_goto(self, mode: str) -> None: ...


class FlowScreen(Screen[None]):
    """A top-level screen (one app mode); subclasses implement `compose_body`."""

    #: One line on what the screen does, shown by the help screen.
    HELP: ClassVar[str] = ""
    #: The screen's list, where focus goes after enter in one of its text fields (None: nowhere).
    HOME: ClassVar[str | None] = None

    def __init__(self) -> None:
        super().__init__()
        #: Keys that arrived while the screen was still filling itself (see `hold_keys`).
        self._held: list[tuple[str, str | None]] | None = None

    def compose(self) -> ComposeResult:
        yield NavBar(self.page.mode, self.flow_app.pages)
        yield from self.compose_body()
        yield StatusLine(lambda width: helpers.status_text(self.state, width))
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def post_result(self, message: Message) -> None:
        """Post a worker's result unless a newer run of the same exclusive worker replaced it."""
        if not get_current_worker().is_cancelled:
            self.post_message(message)

    @work(thread=True, exclusive=True, exit_on_error=False, group="scan-models")
    def scan_models(self, models_dir: Path) -> None:
        """Find the saved models (those that can recommend, and all by AUC); posts RecModelsFound."""
        self.post_result(RecModelsFound(*helpers.scan_models(models_dir)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: failures of this screen's workers are reported here.
        helpers.report_worker_failure(self.app, event)
        if event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self.release_keys()  # a screen whose filling failed answers keys again
            if event.worker.group in self.state.work:
                self.end_work(event.worker.group)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter leaves the field (after the screen's own handlers ran), so that single keys work again."""
        if event.input.screen is self:
            self.call_after_refresh(self.leave_field, event.input)

    def leave_field(self, field: Input) -> None:
        """Focus the screen's list (`HOME`) if `field` still has the focus and holds no invalid value."""
        if self.focused is not field or field.has_class("-invalid"):
            return  # a handler moved the focus itself, or the value is to be fixed there
        home = self.query(self.HOME) if self.HOME else None
        if home:
            home.first().focus()
        else:
            self.set_focus(None)

    # -- keys pressed while the screen fills itself ------------------------------------------------------

    def hold_keys(self, at_most: float = 10.0) -> None:
        """Keep the keys pressed from now on until `release_keys` (the screen's lists are still empty), or
        `at_most` seconds, so that a stuck load never swallows the keyboard."""
        if self._held is None:
            self._held = []
            self.set_timer(at_most, self.release_keys)

    def release_keys(self) -> None:
        """Replay the held keys, in order, now that the screen can answer them."""
        held, self._held = self._held, None
        for key, character in held or ():
            self.app.post_message(events.Key(key, character))

    def on_key(self, event: events.Key) -> None:
        if self._held is not None and self.is_current:
            self._held.append((event.key, event.character))
            event.stop()
            event.prevent_default()

    # -- the status line and background work ---------------------------------------------------------------

    def on_screen_resume(self) -> None:
        self.query_one(StatusLine).refresh()

    def refresh_status(self) -> None:
        """Redraw the status line of the screens in view (the state it shows changed)."""
        for screen in self.app.screen_stack:
            for line in screen.query(StatusLine):
                line.refresh()

    def begin_work(self, key: str, label: str, cancel: threading.Event | None = None) -> None:
        """Show `label` on the status line until `end_work(key)`; the app sets `cancel` when it quits."""
        self.state.work[key] = Work(label, cancel)
        self.refresh_status()

    def end_work(self, key: str) -> None:
        """The work of `key` is over."""
        self.state.work.pop(key, None)
        self.refresh_status()

    def wrote(self, path: Path, what: str, rows: int, detail: str = "") -> None:
        """A file was written: the status line keeps its path in view, the log records it (and `detail`)."""
        self.state.last_written = str(path)
        self.state.record(f"wrote {what} {path} ({rows:,} rows){detail}")
        self.refresh_status()
        self.notify(f"wrote {rows:,} rows to {path}", title=what, timeout=8)

    def refresh_from_state(self) -> None:
        """The shared state changed while this screen is on view: redraw what shows it (default: nothing)."""

    def refresh_current_screen(self) -> None:
        """Let the screen on view (often another one) redraw from the shared state."""
        screen = self.app.screen
        if isinstance(screen, FlowScreen) and screen.is_mounted:  # else its on_mount reads the state
            screen.refresh_from_state()

    @property
    def flow_app(self) -> FlowHost:
        """The app showing this screen, as far as screens may use it."""
        app = self.app
        if not isinstance(app, FlowHost):
            raise TypeError(f"a FlowScreen needs an app with a state and pages, not {type(app).__name__}")
        return app

    @property
    def state(self) -> AppState:
        """The state the screens share."""
        return self.flow_app.state

    @property
    def page(self) -> Page:
        """This screen's row of the page table."""
        for page in self.flow_app.pages:
            if isinstance(self, page.screen):
                return page
        raise LookupError(f"{type(self).__name__} is not in the app's page table")


class PickIdsScreen(FlowScreen):
    """A screen whose `pick('artist')` and `pick('genre')` actions fill an id field from a list."""

    def pick_field(self, kind: str) -> Input:
        """The text field holding the ids of `kind` ('artist' or 'genre')."""
        raise NotImplementedError

    def after_pick(self) -> None:
        """The ids of a field were just picked from the list (default: nothing more to do)."""

    def action_pick(self, kind: str) -> None:
        """Pick artists or genres (`kind`) from a searchable list of the data's into their field."""
        state = self.state
        if state.train is None:
            self.notify("load a data set first (screen 1)", severity="warning")
            return
        field = self.pick_field(kind)
        try:
            chosen = helpers.parse_ids(field.value)
        except ValueError:
            chosen = []

        def picked(ids: list[int] | None) -> None:
            if ids is not None:
                field.value = ", ".join(map(str, ids))
                self.after_pick()

        self.app.push_screen(PickerDialog(kind, state.train.frame, chosen), picked)

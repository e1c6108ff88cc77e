"""The flowtui terminal app: a shell of six screens over one shared state.

`make_app(...)` builds it (tests pass tiny data and a MockClock). Heavy libraries (torch, sklearn,
lightgbm, the engine's model modules) are imported only inside workers, so the first frame is fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.clock import Clock
from textual.screen import Screen
from textual.worker import Worker

from flowtui.tui.helpers import report_worker_failure
from flowtui.tui.layout import PAGES
from flowtui.tui.screens.base import Page
from flowtui.tui.screens.help import HelpScreen
from flowtui.tui.state import AppState


class FlowApp(App[None]):
    """Load data, pick models, train, compare, and browse recommendations, all from the keyboard."""

    CSS_PATH = "app.tcss"
    TITLE = "flowtui"
    MODES = {page.mode: page.screen for page in PAGES}  # noqa: RUF012 (Textual reads these class attributes)
    DEFAULT_MODE = PAGES[0].mode
    BINDINGS = [  # noqa: RUF012
        *(Binding(p.key, f"goto('{p.mode}')", f"go to {p.label}", show=False) for p in PAGES),
        Binding("question_mark,f1", "help", "Help", key_display="?"),
        Binding(
            "escape",
            "leave_field",
            "leave a text field (then single keys work)",
            show=False,
            key_display="esc",
        ),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    #: The screens, for the navigation line and the help (see `screens.base.FlowHost`).
    pages: tuple[Page, ...] = PAGES

    def __init__(self, state: AppState) -> None:
        super().__init__()
        self.state = state

    def on_mount(self) -> None:
        self.theme = "textual-dark"

    def action_goto(self, mode: str) -> None:
        """Show the screen of `mode`."""
        if self.current_mode != mode:
            self.switch_mode(mode)

    def action_leave_field(self) -> None:
        """Move focus out of a text field, so that single-key shortcuts work again."""
        from textual.widgets import Input

        if isinstance(self.focused, Input):
            self.screen.set_focus(None)

    def action_help(self) -> None:
        """Open the help screen (any key closes it)."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.BINDINGS, self.pages))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for p in self.pages:
            yield SystemCommand(
                f"Go to {p.label}",
                f"Show the {p.label} screen (key {p.key})",
                partial(self.action_goto, p.mode),
            )
        yield SystemCommand("Help", "List every key", self.action_help)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed worker of the app becomes a notification (screens report theirs the same way)."""
        report_worker_failure(self, event)


def make_app(
    train_path: str | Path | None = None,
    test_path: str | Path | None = None,
    models_dir: str | Path | None = None,
    *,
    clock: Clock | None = None,
) -> FlowApp:
    """Build the app on the given files (the bundled sample when None) and models folder (`./models`).

    `clock` drives progress-bar ETAs (tests pass `textual.clock.MockClock()`).
    """
    from flowtui.core import paths

    train = Path(train_path) if train_path is not None else paths.sample_train()
    if test_path is not None:
        test: Path | None = Path(test_path)
    elif train_path is None:
        test = paths.sample_test()
    else:
        test = None
    state = AppState(
        train_path=train,
        test_path=test,
        models_dir=Path(models_dir) if models_dir is not None else Path("models"),
        clock=clock,
    )
    return FlowApp(state)

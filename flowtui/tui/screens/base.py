"""The frame every screen shares: the navigation line on top, the key footer below."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, get_current_worker

from flowtui.tui.messages import RecModelsFound
from flowtui.tui.widgets.navbar import NavBar

if TYPE_CHECKING:
    from flowtui.tui.app import FlowApp
    from flowtui.tui.state import AppState


class FlowScreen(Screen[None]):
    """A top-level screen (one app mode); subclasses implement `compose_body`."""

    MODE: ClassVar[str] = ""
    HELP: ClassVar[str] = ""

    def compose(self) -> ComposeResult:
        yield NavBar(self.MODE)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def post_result(self, message: Message) -> None:
        """Post a worker's result unless a newer run of the same exclusive worker replaced it."""
        if not get_current_worker().is_cancelled:
            self.post_message(message)

    @work(thread=True, exclusive=True, exit_on_error=False, group="scan-models")
    def scan_models(self, models_dir: Path) -> None:
        """Find the saved models that can recommend; posts RecModelsFound."""
        from flowtui.tui.screens.users import scan_models

        self.post_result(RecModelsFound(*scan_models(models_dir)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: hand failures of this screen's workers to the app's one handler.
        self.flow_app.on_worker_state_changed(event)

    @property
    def flow_app(self) -> FlowApp:
        from flowtui.tui.app import FlowApp

        return cast(FlowApp, self.app)

    @property
    def state(self) -> AppState:
        return self.flow_app.state

"""One model's progress line: name, phase, bar with ETA, status. It can be focused (the row picked for
cancelling that model)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.clock import Clock
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


class ModelProgress(Horizontal, can_focus=True):
    """Progress of one model in a training run; ↑/↓ move to the previous/next row."""

    BINDINGS = [  # noqa: RUF012
        Binding("up", "app.focus_previous", "Previous model", show=False),
        Binding("down", "app.focus_next", "Next model", show=False),
    ]

    DEFAULT_CSS = """
    ModelProgress { height: 1; }
    ModelProgress > .mp-mark { width: 2; }
    ModelProgress > .mp-name { width: 16; }
    ModelProgress > .mp-phase { width: 9; color: $text-muted; }
    ModelProgress > ProgressBar { width: 1fr; }
    ModelProgress > .mp-status { width: 18; }
    ModelProgress:focus { background: $accent 30%; }
    ModelProgress:focus > .mp-mark { text-style: bold; }
    ModelProgress.-cancelled > .mp-status { color: $warning; }
    ModelProgress.-failed > ProgressBar { display: none; }
    ModelProgress.-failed > .mp-status { color: $error; width: 1fr; }
    ModelProgress.-done > .mp-status { color: $success; }
    """

    def __init__(self, model: str, clock: Clock | None = None) -> None:
        super().__init__()
        self.model = model
        # Children are built here so that events arriving before mount can already update them.
        self._mark = Label(" ", classes="mp-mark")
        self._phase = Label("", classes="mp-phase")
        self._bar = ProgressBar(total=None, clock=clock, show_percentage=True, show_eta=True)
        self._status = Label("waiting", classes="mp-status")

    def compose(self) -> ComposeResult:
        yield self._mark
        yield Label(self.model, classes="mp-name")
        yield self._phase
        yield self._bar
        yield self._status

    def on_focus(self) -> None:
        self._mark.update("▶")

    def on_blur(self) -> None:
        self._mark.update(" ")

    def start(self, phase: str, total: float | None) -> None:
        """A (new) phase starts: reset the bar."""
        self.remove_class("-done", "-cancelled", "-failed")
        self._phase.update(phase)
        self._bar.update(total=total, progress=0)
        self.set_status("running")

    def advance_to(self, done: float, total: float | None) -> None:
        """Move the bar to `done` of `total`."""
        self._bar.update(total=total, progress=done)

    def finish(self, status: str, kind: str = "done") -> None:
        """Mark the model done, cancelled or failed."""
        bar = self._bar
        if kind == "done":
            bar.update(total=bar.total or 1, progress=bar.total or 1)
        self.remove_class("-done", "-cancelled", "-failed")
        self.add_class(f"-{kind}")
        self.set_status(status)

    @property
    def status(self) -> str:
        """The status text shown."""
        return str(self._status.content)

    def set_status(self, status: str) -> None:
        """Replace the status text."""
        self._status.update(status)

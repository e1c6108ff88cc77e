"""One model's progress line: name, phase, bar with ETA, status."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.clock import Clock
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


class ModelProgress(Horizontal):
    """Progress of one model in a training run."""

    DEFAULT_CSS = """
    ModelProgress { height: 1; }
    ModelProgress > .mp-name { width: 16; }
    ModelProgress > .mp-phase { width: 9; color: $text-muted; }
    ModelProgress > ProgressBar { width: 1fr; }
    ModelProgress > .mp-status { width: 18; }
    ModelProgress.-cancelled > .mp-status { color: $warning; }
    ModelProgress.-failed > .mp-status { color: $error; }
    ModelProgress.-done > .mp-status { color: $success; }
    """

    def __init__(self, model: str, clock: Clock | None = None) -> None:
        super().__init__()
        self.model = model
        # Children are built here so that events arriving before mount can already update them.
        self._phase = Label("", classes="mp-phase")
        self._bar = ProgressBar(total=None, clock=clock, show_percentage=True, show_eta=True)
        self._status = Label("waiting", classes="mp-status")

    def compose(self) -> ComposeResult:
        yield Label(self.model, classes="mp-name")
        yield self._phase
        yield self._bar
        yield self._status

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
        self.add_class(f"-{kind}")
        self.set_status(status)

    def set_status(self, status: str) -> None:
        """Replace the status text."""
        self._status.update(status)

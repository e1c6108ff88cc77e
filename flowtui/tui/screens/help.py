"""`?`: every key of every screen, read from the bindings themselves so it never goes stale."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from flowtui.tui.screens.base import Page


def _rows(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    rows = []
    for b in bindings:
        if not isinstance(b, Binding) or not b.description:
            continue
        key = b.key_display or b.key.split(",")[0]
        rows.append((key, b.description))
    return rows


def key_table(app_bindings: Iterable[BindingType], pages: Iterable[Page]) -> Table:
    """A table of the app's keys (`app_bindings`) and each page's keys, with its help line."""
    table = Table(box=None, show_header=False, padding=(0, 1))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    table.add_row(Text("Everywhere", style="bold underline"), "")
    for key, desc in _rows(app_bindings):
        table.add_row(key, desc)
    table.add_row("ctrl+p", "command palette (also switches screens)")
    table.add_row("tab / shift+tab", "move between fields")
    for page in pages:
        table.add_row("", "")
        table.add_row(Text(page.label, style="bold underline"), Text(page.screen.HELP, style="dim"))
        for key, desc in _rows(page.screen.BINDINGS):
            table.add_row(key, desc)
    return table


class HelpScreen(ModalScreen[None]):
    """Lists the keys of the app (`app_bindings`) and of each page; escape, q or ? closes it."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape,q,question_mark", "dismiss", "Close", key_display="esc"),
    ]

    def __init__(self, app_bindings: Iterable[BindingType], pages: Sequence[Page]) -> None:
        super().__init__()
        self._app_bindings = list(app_bindings)
        self._pages = tuple(pages)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("flowtui keys", style="bold"), id="help-title")
            yield Static(key_table(self._app_bindings, self._pages), id="help-keys")
            yield Static(Text("esc, q or ? closes this help", style="dim"))

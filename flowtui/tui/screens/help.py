"""`?`: every key of every screen, read from the bindings themselves so it never goes stale."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def _rows(bindings: list[Binding | tuple[str, ...]]) -> list[tuple[str, str]]:
    rows = []
    for b in bindings:
        if not isinstance(b, Binding) or not b.description:
            continue
        key = b.key_display or b.key.split(",")[0]
        rows.append((key, b.description))
    return rows


def key_table() -> Table:
    """A table of the global keys and each screen's keys."""
    from flowtui.tui.app import FlowApp
    from flowtui.tui.widgets.navbar import SCREENS

    table = Table(box=None, show_header=False, padding=(0, 1))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    table.add_row(Text("Everywhere", style="bold underline"), "")
    for key, desc in _rows(list(FlowApp.BINDINGS)):
        table.add_row(key, desc)
    table.add_row("ctrl+p", "command palette (also switches screens)")
    table.add_row("tab / shift+tab", "move between fields")
    for mode, _key, label in SCREENS:
        screen_cls = FlowApp.MODES[mode]
        rows = _rows(list(getattr(screen_cls, "BINDINGS", [])))
        help_line = getattr(screen_cls, "HELP", "")
        table.add_row("", "")
        table.add_row(Text(label, style="bold underline"), Text(help_line, style="dim"))
        for key, desc in rows:
            table.add_row(key, desc)
    return table


class HelpScreen(ModalScreen[None]):
    """Lists the keys; escape, q or ? closes it."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape,q,question_mark", "dismiss", "Close", key_display="esc"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("flowtui keys", style="bold"), id="help-title")
            yield Static(key_table(), id="help-keys")
            yield Static(Text("esc, q or ? closes this help", style="dim"))

"""The top line: the screens with their number keys, the current one highlighted."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

#: (mode name, key, label) of every screen, in key order.
SCREENS: tuple[tuple[str, str, str], ...] = (
    ("data", "1", "Data"),
    ("models", "2", "Models"),
    ("training", "3", "Training"),
    ("results", "4", "Results"),
    ("users", "5", "Users"),
    ("newuser", "6", "New user"),
)


class NavBar(Static):
    """Shows `1 Data  2 Models ...`; the current screen is highlighted."""

    DEFAULT_CSS = """
    NavBar { height: 1; background: $panel; }
    """

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def render(self) -> Text:
        text = Text(" flowtui ", style="bold reverse")
        for mode, key, label in SCREENS:
            style = "bold reverse" if mode == self.current else ""
            text.append(f" {key} {label} ", style=style)
        text.append(" ? help", style="dim")
        return text

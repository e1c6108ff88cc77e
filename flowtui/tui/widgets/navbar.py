"""The top line: the screens with their number keys, the current one marked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rich.text import Text
from textual.widgets import Static


class NavItem(Protocol):
    """One entry of the line: a row of the app's page table (`flowtui.tui.layout.PAGES`)."""

    @property
    def mode(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def label(self) -> str: ...


class NavBar(Static):
    """Shows `1 Data  [2 Models]  3 Training ...`: the current screen in brackets and reversed, so it
    stands out without colour too.

    The entries are handed in (the table imports every screen, and every screen shows this widget).
    """

    DEFAULT_CSS = """
    NavBar { height: 1; background: $panel; }
    """

    def __init__(self, current: str, items: Sequence[NavItem]) -> None:
        super().__init__()
        self.current = current
        self.items = tuple(items)

    def render(self) -> Text:
        entries = Text()
        for item in self.items:
            if item.mode == self.current:
                entries.append(f"[{item.key} {item.label}]", style="bold reverse")
            else:
                entries.append(f" {item.key} {item.label} ")
        # On a narrow terminal the brand goes first, then the help hint: the screens stay in view.
        brand, hint = Text(" flowtui ", style="bold reverse"), Text(" ? help", style="dim")
        width = self.size.width or 10_000
        parts = [brand, entries, hint]
        if sum(p.cell_len for p in parts) > width:
            parts = [entries, hint]
        if sum(p.cell_len for p in parts) > width:
            parts = [entries]
        return Text("").join(parts)

"""The status line: what is loaded, where models go, the device, running work, the last file written."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.widgets import Static


class StatusLine(Static):
    """One line drawn by `describe(width)`; whoever changes what it shows calls `refresh()`."""

    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; padding: 0 1; }
    """

    def __init__(self, describe: Callable[[int], Text], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._describe = describe

    def render(self) -> Text:
        return self._describe(max(self.size.width, 20))

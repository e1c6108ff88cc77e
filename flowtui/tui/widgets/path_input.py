"""A path Input that completes file and folder names as you type (right arrow accepts), and shows the end of
its path (the file name) when the field is narrower than the path."""

from __future__ import annotations

import os
from pathlib import Path

from textual.geometry import Region
from textual.suggester import Suggester
from textual.widgets import Input


class PathSuggester(Suggester):
    """Suggests an existing file or folder whose name starts with what was typed: those whose name holds
    `prefer` (the train field prefers "train", the test field "test") first, then in name order."""

    def __init__(self, prefer: str = "") -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.prefer = prefer

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        expanded = os.path.expanduser(value)
        folder, _, stem = expanded.rpartition(os.sep) if os.sep in expanded else ("", "", expanded)
        base = Path(folder or ".")
        try:
            names = sorted(p.name + (os.sep if p.is_dir() else "") for p in base.iterdir())
        except OSError:
            return None
        if self.prefer:
            names.sort(key=lambda name: self.prefer not in name.lower())  # stable: name order within
        for name in names:
            if name.startswith(stem) and name != stem and not name.startswith("."):
                return value[: len(value) - len(stem)] + name
        return None


class PathInput(Input):
    """An Input for a file path, with completion (`prefer`: see `PathSuggester`)."""

    def __init__(
        self, value: str = "", placeholder: str = "", *, prefer: str = "", id: str | None = None
    ) -> None:
        super().__init__(value=value, placeholder=placeholder, suggester=PathSuggester(prefer), id=id)

    def on_mount(self) -> None:
        self.call_after_refresh(self.show_end)

    def show_end(self) -> None:
        """Scroll so that the end of the path (its file name) is in view, the cursor after it."""
        self.cursor_position = len(self.value)
        self.scroll_to_region(Region(self._cursor_offset, 0, 1, 1), force=True, animate=False)

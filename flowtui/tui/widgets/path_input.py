"""A path Input that completes file and folder names as you type (right arrow accepts)."""

from __future__ import annotations

import os
from pathlib import Path

from textual.suggester import Suggester
from textual.widgets import Input


class PathSuggester(Suggester):
    """Suggests the first existing file or folder whose name starts with what was typed."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

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
        for name in names:
            if name.startswith(stem) and name != stem and not name.startswith("."):
                return value[: len(value) - len(stem)] + name
        return None


class PathInput(Input):
    """An Input for a file path, with completion."""

    def __init__(self, value: str = "", placeholder: str = "", *, id: str | None = None) -> None:
        super().__init__(value=value, placeholder=placeholder, suggester=PathSuggester(), id=id)

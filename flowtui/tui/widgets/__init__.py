"""Small self-contained widgets used by the screens."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable


def add_columns(table: DataTable[Any], columns: list[tuple[str, int]]) -> None:
    """Add columns of fixed widths: auto widths depend on when rows arrive, which makes screens jump."""
    for label, width in columns:
        table.add_column(label, width=width)

"""A horizontal text bar chart: deterministic, readable at 80 columns, no plotting library."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import Static


class BarChart(Static):
    """Labelled horizontal bars of (label, value) pairs, scaled to the widget's width."""

    DEFAULT_CSS = """
    BarChart { height: auto; }
    """

    def __init__(
        self,
        title: str = "",
        data: Iterable[tuple[str, float]] = (),
        *,
        fmt: str = "{:.2f}",
        max_rows: int = 12,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.fmt = fmt
        self.max_rows = max_rows
        self._data: list[tuple[str, float]] = []
        self.set_data(data)

    def set_data(self, data: Iterable[tuple[str, float]], title: str | None = None) -> None:
        """Replace the bars (and optionally the title)."""
        self._data = [(label, v if v == v else 0.0) for label, v in data]  # NaN draws as an empty bar
        if title is not None:
            self.title = title
        self.refresh(layout=True)

    def render(self) -> Text:
        text = Text()
        if self.title:
            text.append(self.title + "\n", style="bold")
        rows = self._data[: self.max_rows]
        if not rows:
            text.append("(no data)", style="dim")
            return text
        label_w = min(max(len(str(label)) for label, _ in rows), 18)
        values = [self.fmt.format(v) for _, v in rows]
        value_w = max(len(v) for v in values)
        width = max(self.size.width, 20)
        bar_w = max(width - label_w - value_w - 3, 4)
        top = max((v for _, v in rows), default=0.0) or 1.0
        for i, ((label, value), shown) in enumerate(zip(rows, values, strict=True)):
            n = max(round(bar_w * max(value, 0.0) / top), 0)
            text.append(f"{str(label)[:label_w]:>{label_w}} ", style="dim")
            text.append("█" * n, style="cyan")
            text.append(" " * (bar_w - n) + f" {shown:>{value_w}}")
            if i < len(rows) - 1:
                text.append("\n")
        return text

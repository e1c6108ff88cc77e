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
        return self.render_for_width(self.size.width)

    def render_for_width(self, width: int) -> Text:
        """The chart as text for a given width (never wrapped)."""
        text = Text(no_wrap=True, overflow="crop")
        if self.title:
            text.append(self.title + "\n", style="bold")
        rows = self._data[: self.max_rows]
        if not rows:
            text.append("(no data)", style="dim")
            return text
        label_w = min(max(len(str(label)) for label, _ in rows), 18)
        values = [self.fmt.format(v) for _, v in rows]
        value_w = max(len(v) for v in values)
        width = max(width, 20)
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


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One character per value, scaled between the smallest and largest value."""
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return "".join(SPARK[min(int((v - lo) / span * (len(SPARK) - 1) + 0.5), len(SPARK) - 1)] for v in values)


class Charts(Static):
    """Several small charts in one widget: a sparkline for long series, bars for short ones."""

    DEFAULT_CSS = """
    Charts { height: auto; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._charts: list[tuple[str, list[tuple[str, float]]]] = []

    def set_charts(self, charts: list[tuple[str, list[tuple[str, float]]]]) -> None:
        """Replace the charts: (title, [(label, value), ...]) each."""
        self._charts = [(t, [(lbl, v if v == v else 0.0) for lbl, v in pairs]) for t, pairs in charts]
        self.refresh(layout=True)

    def render(self) -> Text:
        # Never wrap: the height must not depend on whether a scrollbar took two columns.
        text = Text(no_wrap=True, overflow="crop")
        width = max(self.size.width, 20)
        for i, (title, pairs) in enumerate(self._charts):
            if i:
                text.append("\n\n")
            if len(pairs) > 12:
                values = [v for _, v in pairs]
                text.append(
                    f"{title} ({pairs[0][0]}…{pairs[-1][0]}, {min(values):.2f}…{max(values):.2f})\n", "bold"
                )
                text.append(sparkline(values)[:width], style="cyan")
                continue
            chart = BarChart(title, pairs, fmt="{:.2f}" if all(v <= 1.0 for _, v in pairs) else "{:,.0f}")
            text.append_text(chart.render_for_width(width))
        return text

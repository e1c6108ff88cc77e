"""Text charts: deterministic, readable at 80 columns, no plotting library.

`BarChart` draws labelled horizontal bars; `Charts` stacks several charts, each a `Chart` of either kind:
horizontal bars (categories, with the label and value axes named) or columns (an ordered series such as
the hours of a day, across the whole width, with a value axis and a labelled x axis).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

BLOCKS = " ▁▂▃▄▅▆▇█"


def _clean(pairs: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    return [(str(label), v if v == v else 0.0) for label, v in pairs]  # NaN draws as an empty bar


def bars_text(
    title: str,
    rows: list[tuple[str, float]],
    width: int,
    *,
    fmt: str = "{:.2f}",
    axes: tuple[str, str] | None = None,
) -> Text:
    """Horizontal bars of (label, value), scaled from 0 to the largest value; `axes` names the label
    column and the values (a header line)."""
    text = Text(no_wrap=True, overflow="crop")
    if title:
        text.append(title + "\n", style="bold")
    if not rows:
        text.append("(no data)", style="dim")
        return text
    label_w = min(max(len(label) for label, _ in rows), 18)
    if axes is not None:
        label_w = max(label_w, min(len(axes[0]), 18))
    values = [fmt.format(v) for _, v in rows]
    value_w = max(len(v) for v in values)
    width = max(width, 20)
    bar_w = max(width - label_w - value_w - 4, 4)
    top = max((v for _, v in rows), default=0.0) or 1.0
    if axes is not None:
        text.append(f"{axes[0][:label_w]:>{label_w}} │ ", style="dim italic")
        text.append(f"{axes[1]}\n", style="dim italic")
    for i, ((label, value), shown) in enumerate(zip(rows, values, strict=True)):
        n = max(round(bar_w * max(value, 0.0) / top), 0)
        text.append(f"{label[:label_w]:>{label_w}} │", style="dim")
        text.append("█" * n, style="cyan")
        text.append(" " * (bar_w - n) + f" {shown:>{value_w}}")
        if i < len(rows) - 1:
            text.append("\n")
    return text


def columns_text(
    title: str,
    rows: list[tuple[str, float]],
    width: int,
    *,
    height: int = 5,
    fmt: str = "{:.2f}",
    x_label: str = "",
) -> Text:
    """Vertical columns of an ordered series across the whole `width`, from 0 to the largest value, with
    the value axis on the left and the x axis below (its name, then the first, quarter and last labels)."""
    text = Text(no_wrap=True, overflow="crop")
    if title:
        text.append(title + "\n", style="bold")
    if not rows:
        text.append("(no data)", style="dim")
        return text
    top = max((v for _, v in rows), default=0.0) or 1.0
    tick_top, tick_zero = fmt.format(top), fmt.format(0.0)
    axis_w = max(len(tick_top), len(tick_zero), len(x_label))
    span = max(max(width, 20) - axis_w - 2, len(rows))
    # Column i covers [edges[i], edges[i + 1]): the columns fill the width, one or two cells apart in size.
    edges = [round(i * span / len(rows)) for i in range(len(rows) + 1)]
    levels = height * (len(BLOCKS) - 1)
    filled = [round(levels * max(v, 0.0) / top) for _, v in rows]
    for line in range(height):
        floor = (height - 1 - line) * (len(BLOCKS) - 1)
        tick = tick_top if line == 0 else tick_zero if line == height - 1 else ""
        text.append(f"{tick:>{axis_w}} {'┤' if tick else '│'}", style="dim")
        for i, n in enumerate(filled):
            cell = BLOCKS[min(max(n - floor, 0), len(BLOCKS) - 1)]
            text.append(cell * (edges[i + 1] - edges[i]), style="cyan")
        text.append("\n")
    text.append(" " * axis_w + " └" + "─" * span + "\n", style="dim")
    marks = sorted({0, len(rows) // 4, len(rows) // 2, 3 * len(rows) // 4, len(rows) - 1})
    axis = [" "] * span
    for i in marks:
        label = rows[i][0]
        start = min(edges[i], span - len(label))
        if start < 0 or any(c != " " for c in axis[max(start - 1, 0) : start + len(label) + 1]):
            continue
        axis[start : start + len(label)] = label
    text.append(f"{x_label:>{axis_w}}  ", style="dim italic")
    text.append("".join(axis).rstrip(), style="dim")
    return text


class BarChart(Static):
    """Labelled horizontal bars of (label, value) pairs, scaled to the widget's width."""

    DEFAULT_CSS = """
    BarChart { height: auto; text-wrap: nowrap; text-overflow: clip; }
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
        self._data = _clean(data)
        if title is not None:
            self.title = title
        self.refresh(layout=True)

    def render(self) -> Text:
        return self.render_for_width(self.size.width)

    def render_for_width(self, width: int) -> Text:
        """The chart as text for a given width (never wrapped)."""
        return bars_text(self.title, self._data[: self.max_rows], width, fmt=self.fmt)


@dataclass(frozen=True)
class Chart:
    """One chart of `Charts`: bars (`axes` names the labels and the values) or columns (`x_label`)."""

    title: str
    data: tuple[tuple[str, float], ...]
    kind: str = "bars"  # "bars" | "columns"
    axes: tuple[str, str] | None = None
    x_label: str = ""
    fmt: str = "{:.2f}"


class Charts(Static):
    """Several small charts in one widget, one under the other."""

    DEFAULT_CSS = """
    Charts { height: auto; text-wrap: nowrap; text-overflow: clip; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._charts: list[Chart] = []

    def set_charts(self, charts: Iterable[Chart]) -> None:
        """Replace the charts."""
        self._charts = [
            Chart(c.title, tuple(_clean(c.data)), c.kind, c.axes, c.x_label, c.fmt) for c in charts
        ]
        self.refresh(layout=True)

    def render(self) -> Text:
        # Never wrap: the height must not depend on whether a scrollbar took two columns.
        text = Text(no_wrap=True, overflow="crop")
        width = max(self.size.width, 20)
        for i, chart in enumerate(self._charts):
            if i:
                text.append("\n\n")
            rows = list(chart.data)
            if chart.kind == "columns":
                text.append_text(columns_text(chart.title, rows, width, fmt=chart.fmt, x_label=chart.x_label))
            else:
                text.append_text(bars_text(chart.title, rows, width, fmt=chart.fmt, axes=chart.axes))
        return text

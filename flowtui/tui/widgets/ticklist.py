"""A SelectionList whose ticks read without colour: `[x]` ticked, `[ ]` not."""

from __future__ import annotations

from typing import ClassVar, Generic

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.strip import Strip
from textual.widgets import OptionList, SelectionList
from textual.widgets.option_list import OptionDoesNotExist
from textual.widgets.selection_list import SelectionType

TICKED = "[x]"
UNTICKED = "[ ]"


class TickList(SelectionList[SelectionType], Generic[SelectionType]):
    """Like SelectionList (same API and messages), with an ASCII tick box in front of each line.

    It also ticks the line that was highlighted when space was pressed: Textual's SelectionList toggles
    the line highlighted when its message is handled, so a fast "space, down, space" ticked the second
    line twice (that is, not at all) and left the first one alone.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("space", "tick", "Tick", show=False)]

    def action_tick(self) -> None:
        """Tick or untick the highlighted line now."""
        if self.highlighted is not None:
            self.toggle(self.get_option_at_index(self.highlighted))

    def _on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        # enter or a click: toggle the line it was about (and not SelectionList's handler, which reads the
        # highlight at handling time)
        event.stop()
        event.prevent_default()
        self.toggle(self.get_option_at_index(event.option_index))

    def _get_left_gutter_width(self) -> int:
        return len(TICKED) + 1

    def render_line(self, y: int) -> Strip:
        line = OptionList.render_line(self, y)
        index = self.scroll_offset.y + y
        try:
            selection = self.get_option_at_index(index)
        except OptionDoesNotExist:
            return line
        ticked = selection.value in self._selected
        component = "selection-list--button" + ("-selected" if ticked else "")
        if self.highlighted == index:
            component += "-highlighted"
        underlying = next(iter(line)).style if line.cell_length else None
        style = (underlying or Style()) + Style(
            color=self.get_component_rich_style(component).bgcolor, bold=ticked
        )
        style += Style(meta={"option": index})
        return Strip([Segment(TICKED if ticked else UNTICKED, style), Segment(" ", underlying), *line])

    def highlight_first(self) -> None:
        """Highlight the first line when nothing is highlighted (a list shows where the cursor is)."""
        if self.highlighted is None and self.option_count:
            self.highlighted = 0

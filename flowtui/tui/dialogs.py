"""Small modal dialogs the screens and the app open: confirm, ask for a file to write, ask for a value, and
pick artists or genres from a searchable list.

Each dismisses with its answer (None when the person backs out with escape); none touches the app's state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from flowtui.tui import helpers
from flowtui.tui.messages import CatalogReady
from flowtui.tui.widgets.path_input import PathInput
from flowtui.tui.widgets.ticklist import TickList

if TYPE_CHECKING:
    import pandas as pd
    from textual import events


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question: y or enter answers yes, n or escape no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", show=False),
        Binding("n,escape", "answer(False)", "No", show=False),
    ]

    def __init__(
        self, question: str, *, yes: str = "Yes", no: str = "No", tag: str = "", default: bool = True
    ) -> None:
        super().__init__(classes="dialog")
        self.question = question
        #: The button focused at first (enter presses it): "no" for a question whose yes carries a risk.
        self.default = default
        self.yes, self.no = yes, no
        #: What the question is about (the app tells its quit question from the others by it).
        self.tag = tag

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(self.question, classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="warning")
                yield Button(f"{self.no} (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes" if self.default else "#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        """Close with the answer."""
        self.dismiss(yes)


def describe_file(path: Path) -> str:
    """An existing file's size and modification time, for an overwrite question."""
    try:
        stat = path.stat()
    except OSError:
        return ""
    when = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f" ({stat.st_size:,} bytes, changed {when})"


class PathDialog(ModalScreen[Path | None]):
    """Ask for a file to write, with a default; an existing file is overwritten only after a confirmation."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, title: str, default: Path, note: str = "") -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.default = default
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-text")
            if self.note:
                yield Static(self.note, classes="dialog-note")
            field = PathInput(str(self.default), "file to write", id="path-field")
            field.border_title = "file (→ completes, enter writes, esc cancels)"
            yield field
            yield Label("", id="path-error", classes="field-error")

    def on_mount(self) -> None:
        field = self.query_one("#path-field", Input)
        field.focus()
        field.cursor_position = len(field.value)

    @on(Input.Submitted, "#path-field")
    def _submitted(self, event: Input.Submitted) -> None:
        error = self.query_one("#path-error", Label)
        try:
            path = helpers.check_output(event.value)
        except ValueError as err:
            error.update(f"✗ {err}")
            return
        error.update("")
        if not path.exists():
            self.dismiss(path)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.dismiss(path)
            else:
                error.update("not overwritten: change the name, or esc to cancel")

        question = f"{path} already exists{describe_file(path)}.\nOverwrite it?"
        self.app.push_screen(ConfirmDialog(question, yes="Overwrite", no="Keep it"), answer)

    def action_cancel(self) -> None:
        """Close without writing."""
        self.dismiss(None)


class AskDialog(ModalScreen[str | None]):
    """Ask for one value; `check(text)` returns an error sentence, or "" when the value is fine."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, question: str, check: Callable[[str], str], placeholder: str = "") -> None:
        super().__init__(classes="dialog")
        self.question = question
        self.check = check
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(Text(self.question, style="bold"), classes="dialog-text")
            yield Input(placeholder=self.placeholder, id="ask-field")
            yield Label("enter confirms, esc cancels", id="ask-error", classes="field-error")

    def on_mount(self) -> None:
        self.query_one("#ask-field", Input).focus()

    @on(Input.Submitted, "#ask-field")
    def _submitted(self, event: Input.Submitted) -> None:
        problem = self.check(event.value.strip())
        if problem:
            self.query_one("#ask-error", Label).update(f"✗ {problem}")
            return
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        """Close without an answer."""
        self.dismiss(None)


#: Rows a picker shows at most (the real DSG17 has some 67,000 artists): typing narrows the list.
PICKER_ROWS = 300


def picker_label(kind: str, row: Any, widths: tuple[int, int, int]) -> str:
    """One line of a picker: the id, its rows and users, and its main genre (artists) or number of
    artists (genres); `widths` are those of the id, rows and users columns."""
    key = int(getattr(row, f"{kind}_id"))
    size = f"{int(row.rows):>{widths[1]},} rows · {int(row.users):>{widths[2]},} users"
    if kind == "artist":
        return f"artist {key:<{widths[0]}}  {size} · mostly genre {int(row.top_genre)}"
    return f"genre {key:<{widths[0]}}  {size} · {int(row.artists):,} artists"


class PickerList(TickList[int]):
    """The picker's list: enter closes the picker. A widget binding, not a priority one on the screen, so
    that it comes after the space keys typed before it (a priority binding would overtake them)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "screen.done", "Done", show=False)]


class PickerDialog(ModalScreen[list[int] | None]):
    """Tick artists or genres in a list sorted by size; typing digits keeps the ids that start with them
    (for artists, `g` then digits keeps those mostly of that genre); space ticks, enter is done."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "done", "Done", show=False),
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("backspace", "erase", "Erase a search character", show=False),
    ]

    def __init__(self, kind: str, frame: pd.DataFrame, chosen: list[int]) -> None:
        super().__init__(classes="dialog")
        self.kind = kind  # "artist" | "genre"
        self.frame = frame
        self.chosen: dict[int, None] = dict.fromkeys(chosen)  # ordered: the order of ticking
        self.search = ""
        self.table: pd.DataFrame | None = None
        self._ids: pd.Series | None = None  # the ids as text, for prefix search
        self._shown: list[int] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box picker-box"):
            yield Static(Text(f"Pick {self.kind}s", style="bold"), classes="dialog-text")
            yield Label("", id="picker-search")
            yield PickerList(id="picker-list")
            yield Label("", id="picker-count")
            hint = "type ids · g7 genre 7 · " if self.kind == "artist" else "type ids · "
            yield Label(hint + "space ticks · enter done · esc cancel", classes="dialog-note")

    def on_mount(self) -> None:
        self.query_one("#picker-list").border_title = f"{self.kind}s by rows, most played first"
        self.query_one("#picker-search", Label).update(f"reading the {self.kind}s of the data…")
        self.query_one("#picker-list").focus()
        self._load(self.frame)

    @work(thread=True, exclusive=True, exit_on_error=False, group="picker")
    def _load(self, frame: pd.DataFrame) -> None:
        self.post_message(CatalogReady(self.kind, helpers.catalog(frame, self.kind)))

    def on_catalog_ready(self, message: CatalogReady) -> None:
        self.table = message.table
        self._ids = message.table[f"{self.kind}_id"].astype(str)
        self._fill()

    def _matches(self) -> pd.DataFrame:
        assert self.table is not None and self._ids is not None
        text = self.search
        if self.kind == "artist" and text.startswith("g"):
            genre = text[1:]
            if not genre:
                return self.table
            return self.table[self.table["top_genre"].astype(str) == genre]
        return self.table[self._ids.str.startswith(text)] if text else self.table

    def _fill(self) -> None:
        if self.table is None:
            return
        self._sync()  # the ticks of the rows about to go
        matches = self._matches()
        shown = matches.head(PICKER_ROWS)
        table = self.table
        widths = (
            max((len(str(int(v))) for v in table[f"{self.kind}_id"]), default=1),
            len(f"{int(table['rows'].max()):,}") if len(table) else 1,
            len(f"{int(table['users'].max()):,}") if len(table) else 1,
        )
        listing = self.query_one("#picker-list", TickList)
        listing.clear_options()
        self._shown = [int(k) for k in shown[f"{self.kind}_id"]]
        listing.add_options(
            [
                Selection(
                    picker_label(self.kind, row, widths),
                    int(getattr(row, f"{self.kind}_id")),
                    int(getattr(row, f"{self.kind}_id")) in self.chosen,
                )
                for row in shown.itertuples(index=False)
            ]
        )
        listing.highlight_first()
        more = f" (first {PICKER_ROWS}; type to narrow)" if len(matches) > PICKER_ROWS else ""
        search = f"search: {self.search}█" if self.search else "search: (type digits)"
        self.query_one("#picker-search", Label).update(
            f"{search} · {len(matches):,} of {len(self.table):,}{more}"
        )
        self._count()

    def _count(self) -> None:
        ticked = ", ".join(map(str, self.chosen)) or "none"
        self.query_one("#picker-count", Label).update(f"ticked: {ticked}")

    @on(SelectionList.SelectedChanged, "#picker-list")
    def _ticked(self) -> None:
        self._sync()
        self._count()

    def _sync(self) -> None:
        """Take the ticks of the rows on view into `chosen` (ticks of rows filtered out stay)."""
        if self.table is None:
            return
        now = set(self.query_one("#picker-list", TickList).selected)
        for key in self._shown:
            if key in now:
                self.chosen.setdefault(key, None)
            else:
                self.chosen.pop(key, None)

    def on_key(self, event: events.Key) -> None:
        character = event.character
        if character is not None and (character.isdigit() or (character == "g" and self.kind == "artist")):
            if character == "g":
                self.search = "g"
            elif len(self.search) < 12:
                self.search += character
            event.stop()
            event.prevent_default()
            self._fill()

    def action_erase(self) -> None:
        """Remove the last search character."""
        if self.search:
            self.search = self.search[:-1]
            self._fill()

    def action_done(self) -> None:
        """Close with the ticked ids (keys typed fast may come before the list's change messages)."""
        self._sync()
        self.dismiss(list(self.chosen))

    def action_cancel(self) -> None:
        """Close without changing anything."""
        self.dismiss(None)

"""Screen 6: a new user states liked artists and genres (and age, gender): cold-start picks at once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Label, Select

from flowtui.tui.helpers import REC_COLUMNS, TOP_N, RecommenderCache, parse_ids, set_choices
from flowtui.tui.messages import NewUserReady, RecModelsFound
from flowtui.tui.screens.base import FlowScreen
from flowtui.tui.widgets import add_columns

if TYPE_CHECKING:
    import pandas as pd


class NewUserScreen(FlowScreen):
    """The cold-start form."""

    AUTO_FOCUS = "#nu-recs"
    HELP = "Type liked artist and genre ids (comma or space separated); recommendations follow each edit."
    BINDINGS = [  # noqa: RUF012
        Binding("a", "field('nu-artists')", "Artists"),
        Binding("g", "field('nu-genres')", "Genres"),
        Binding("ctrl+r", "recommend", "Recommend"),
        Binding("ctrl+e", "clear", "Clear form"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cache = RecommenderCache()

    def compose_body(self) -> ComposeResult:
        with Vertical(id="newuser-form"):
            with Horizontal(classes="form-row"):
                yield Label("liked artists", classes="form-label")
                yield Input(placeholder="e.g. 12, 408", id="nu-artists")
            with Horizontal(classes="form-row"):
                yield Label("liked genres", classes="form-label")
                yield Input(placeholder="e.g. 0 7", id="nu-genres")
            with Horizontal(classes="form-row"):
                yield Label("age / gender", classes="form-label")
                yield Input(placeholder="18-30", id="nu-age", type="integer")
                yield Select([("gender 0", 0), ("gender 1", 1)], prompt="gender", id="nu-gender")
                yield Select[str]([], prompt="model", id="nu-model")
        yield Label("", id="nu-note")
        yield DataTable(id="nu-recs", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        add_columns(self.query_one("#nu-recs", DataTable), REC_COLUMNS)
        self.query_one("#nu-recs").border_title = "Cold-start recommendations"
        self.query_one("#newuser-form").border_title = "New user"

    def on_screen_resume(self) -> None:
        self.scan_models(self.state.models_dir)

    def on_rec_models_found(self, message: RecModelsFound) -> None:
        set_choices(self.query_one("#nu-model", Select), message.names)
        self.action_recommend()

    @on(Input.Changed, "#nu-artists, #nu-genres, #nu-age")
    @on(Select.Changed, "#nu-gender, #nu-model")
    def _changed(self) -> None:
        self.action_recommend(quiet=True)

    def action_field(self, widget_id: str) -> None:
        """Focus a field of the form."""
        self.query_one(f"#{widget_id}").focus()

    def action_clear(self) -> None:
        """Empty the form."""
        for field in self.query(Input):
            field.value = ""
        self.query_one("#nu-gender", Select).clear()

    def action_recommend(self, quiet: bool = False) -> None:
        """Recommend for the stated preferences."""
        state = self.state
        note = self.query_one("#nu-note", Label)
        if state.train is None:
            note.update("load a data set first (screen 1)")
            return
        model = self.query_one("#nu-model", Select).value
        if model == Select.NULL:
            note.update("no recommendation model yet: train rbm, dbn or hybrid (screens 2-3)")
            return
        try:
            artists = parse_ids(self.query_one("#nu-artists", Input).value)
            genres = parse_ids(self.query_one("#nu-genres", Input).value)
        except ValueError as err:
            note.update(f"✗ {err}")
            return
        age_text = self.query_one("#nu-age", Input).value.strip()
        age = int(age_text) if age_text.lstrip("-").isdigit() else None
        gender = self.query_one("#nu-gender", Select).value
        note.update("recommending…")
        self._recommend(
            state.models_dir / str(model),
            state.train.frame,
            artists,
            genres,
            age,
            None if gender == Select.NULL else int(gender),  # type: ignore[arg-type]
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="newuser")
    def _recommend(
        self,
        folder: Path,
        frame: pd.DataFrame,
        artists: list[int],
        genres: list[int],
        age: int | None,
        gender: int | None,
    ) -> None:
        rec = self.cache.get(folder, frame)
        try:
            recs = rec.for_new_user(artists, genres, age=age, gender=gender, n=TOP_N)
        except ValueError as err:  # an artist or genre id the model does not know
            self.post_result(NewUserReady(None, f"✗ {err}"))
            return
        what = ", ".join(
            s for s in (f"artists {artists}" if artists else "", f"genres {genres}" if genres else "") if s
        )
        self.post_result(
            NewUserReady(recs, f"for {what}" if what else "no preferences: popular in the segment")
        )

    def on_new_user_ready(self, message: NewUserReady) -> None:
        self.query_one("#nu-note", Label).update(message.note)
        table = self.query_one("#nu-recs", DataTable)
        table.clear()
        if message.recs is None:
            return
        for i, r in enumerate(message.recs.itertuples(index=False), start=1):
            table.add_row(
                str(i), str(r.media_id), str(r.artist_id), str(r.genre_id), f"{r.score:.3f}", str(r.reason)
            )

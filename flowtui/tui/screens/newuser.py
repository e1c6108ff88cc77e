"""Screen 6: a new user states liked artists and genres (and age, gender): cold-start picks at once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Label, Select

from flowtui.core.errors import DataError
from flowtui.tui import helpers
from flowtui.tui.dialogs import ConfirmDialog
from flowtui.tui.helpers import REC_COLUMNS, TOP_N, RecommenderCache, parse_ids
from flowtui.tui.messages import NewUserReady, OtherDataQuestion, RecModelsFound
from flowtui.tui.screens.base import PickIdsScreen
from flowtui.tui.widgets import add_columns

if TYPE_CHECKING:
    import pandas as pd

    from flowtui.core.recs.recommend import Recommender


class NewUserScreen(PickIdsScreen):
    """The cold-start form."""

    AUTO_FOCUS = "#nu-recs"
    HOME = "#nu-recs"
    HELP = (
        "a and g pick liked artists and genres from lists of the data's (or type ids, comma or space "
        "separated); recommendations follow each change, from the model picked (any saved recommender, or "
        "rbm, dbn, hybrid; one trained on other data only after a yes)."
    )
    BINDINGS = [  # noqa: RUF012
        Binding("a", "pick('artist')", "Artists"),
        Binding("g", "pick('genre')", "Genres"),
        Binding("ctrl+r", "recommend", "Recommend"),
        Binding("ctrl+e", "clear", "Clear form"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cache = RecommenderCache()
        self._declined: set[str] = set()  # models said no to on these data (`helpers.data_key`)
        self._asking: set[str] = set()

    def compose_body(self) -> ComposeResult:
        with Vertical(id="newuser-form"):
            with Horizontal(classes="form-row"):
                yield Label("liked artists", classes="form-label")
                yield Input(placeholder="a: pick from a list, or type ids (12, 408)", id="nu-artists")
            with Horizontal(classes="form-row"):
                yield Label("liked genres", classes="form-label")
                yield Input(placeholder="g: pick from a list, or type ids (0 7)", id="nu-genres")
            with Horizontal(classes="form-row"):
                yield Label("age / gender", classes="form-label")
                yield Input(placeholder="age", id="nu-age", type="integer")
                yield Select([("gender 0", 0), ("gender 1", 1)], prompt="gender", id="nu-gender")
                yield Select[str]([], prompt="model", id="nu-model")
        yield Label("", id="nu-note")
        yield DataTable(id="nu-recs", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        add_columns(self.query_one("#nu-recs", DataTable), REC_COLUMNS)
        self.query_one("#nu-recs").border_title = "Cold-start recommendations"
        self.query_one("#newuser-form").border_title = "New user"

    def on_screen_resume(self) -> None:
        self._show_ages()
        self.scan_models(self.state.models_dir)

    def refresh_from_state(self) -> None:
        self._show_ages()
        self._show_model_choice()

    def _ages(self) -> tuple[int, int] | None:
        """The youngest and oldest age in the loaded data (the ages the segment recommendations know)."""
        train = self.state.train
        if train is None or len(train.frame) == 0:
            return None
        ages = train.frame["user_age"]
        return int(ages.min()), int(ages.max())

    def _show_ages(self) -> None:
        ages = self._ages()
        if ages is not None:
            self.query_one("#nu-age", Input).placeholder = f"age {ages[0]}-{ages[1]}"

    def on_rec_models_found(self, message: RecModelsFound) -> None:
        self.state.rec_models = message.names
        select = self.query_one("#nu-model", Select)
        select.set_options([(n, n) for n in message.names])
        self._show_model_choice()
        self.action_recommend()

    def _show_model_choice(self) -> None:
        """The Select shows the state's model for recommendations (the best fallback when it is gone)."""
        names, state = self.state.rec_models, self.state
        select = self.query_one("#nu-model", Select)
        if not names:
            return
        current = select.value if isinstance(select.value, str) else None
        choice = state.rec_model if state.rec_model in names else current if current in names else names[0]
        state.rec_model = choice
        if select.value != choice:
            select.value = choice

    @on(Select.Changed, "#nu-model")
    def _model_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.state.rec_model = event.value
        self.action_recommend(quiet=True)

    @on(Input.Changed, "#nu-artists, #nu-genres, #nu-age")
    @on(Select.Changed, "#nu-gender")
    def _changed(self) -> None:
        self.action_recommend(quiet=True)

    def pick_field(self, kind: str) -> Input:
        """The field of liked artists or genres."""
        return self.query_one(f"#nu-{kind}s", Input)

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
        try:
            artists = parse_ids(self.query_one("#nu-artists", Input).value)
            genres = parse_ids(self.query_one("#nu-genres", Input).value)
        except ValueError as err:
            note.update(f"✗ {err}")
            return
        age_field = self.query_one("#nu-age", Input)
        try:
            age = self._age(age_field.value)
        except ValueError as err:
            age_field.add_class("-invalid")
            note.update(f"✗ {err}")
            return
        age_field.remove_class("-invalid")
        model = self.query_one("#nu-model", Select).value
        if model == Select.NULL:
            note.update(
                "no recommendation model yet: train recommenders (screen 7) or rbm, dbn, hybrid (screens 2-3)"
            )
            return
        gender = self.query_one("#nu-gender", Select).value
        note.update("recommending…")
        self._recommend(
            state.models_dir / str(model),
            state.train.frame,
            artists,
            genres,
            age,
            None if gender == Select.NULL else int(gender),  # type: ignore[arg-type]
            (set(state.other_data_ok), set(self._declined)),
        )

    def _age(self, text: str) -> int | None:
        """The typed age (None when empty); ValueError with one sentence when it is not a plausible age."""
        text = text.strip()
        if not text:
            return None
        ages = self._ages() or (0, 120)
        low, high = min(ages[0], 13), max(ages[1], 100)
        if not text.lstrip("-").isdigit() or not low <= int(text) <= high:
            known = f"; the data: {ages[0]}-{ages[1]}" if self._ages() else ""
            raise ValueError(f"age must be a whole number from {low} to {high}, got {text!r}{known}")
        return int(text)

    @work(thread=True, exclusive=True, exit_on_error=False, group="newuser")
    def _recommend(
        self,
        folder: Path,
        frame: pd.DataFrame,
        artists: list[int],
        genres: list[int],
        age: int | None,
        gender: int | None,
        answers: tuple[set[str], set[str]],
    ) -> None:
        allowed, declined = answers
        name = self._model_name(folder)
        try:
            rec = self.cache.get(folder, frame, allowed)
        except helpers.OtherData as other:
            key = helpers.data_key(folder, frame)
            if key not in declined:
                self.post_result(OtherDataQuestion(folder, other.question, key))
            self.post_result(
                NewUserReady(None, f"✗ {name} not used: trained on other data (pick another model)")
            )
            return
        except (DataError, ValueError, OSError) as err:
            self.post_result(NewUserReady(None, f"✗ {name}: {err}"))
            return
        artists, genres, skipped = known_choices(rec, artists, genres)
        try:
            recs = rec.for_new_user(artists, genres, age=age, gender=gender, n=TOP_N)
        except ValueError as err:  # an artist or genre id the model does not know
            self.post_result(NewUserReady(None, f"✗ {err}"))
            return
        what = ", ".join(
            s for s in (f"artists {artists}" if artists else "", f"genres {genres}" if genres else "") if s
        )
        recs, pinned = mark_pinned(recs)
        note = f"for {what}" if what else "no preferences: popular in the segment"
        if pinned:
            note += " · your artists' and genres' tracks come first (▲ pinned above higher scores)"
        if skipped:  # first: a long note is cut at the screen's edge, and this one must be seen
            note = f"⚠ skipped {skipped}: no track in the model's vocabulary · {note}"
        self.post_result(NewUserReady(recs, note))

    def _model_name(self, folder: Path) -> str:
        return helpers.model_name(folder, self.state.models_dir)

    def on_other_data_question(self, message: OtherDataQuestion) -> None:
        """Ask before recommending with a model of other data (yes: used on these data from now on)."""
        if message.key in self._asking:
            return
        self._asking.add(message.key)
        name = self._model_name(message.folder)

        def answer(yes: bool | None) -> None:
            self._asking.discard(message.key)
            if not yes:
                self._declined.add(message.key)
                return
            self.state.other_data_ok.add(message.key)
            self.state.record(f"[yellow]{name} used on other data[/] (confirmed): {message.question}")
            self.action_recommend(quiet=True)

        self.app.push_screen(
            ConfirmDialog(
                f"{message.question}\nRecommend with it anyway?",
                yes="Use anyway",
                no="Don't",
                tag="other-data",
                default=False,
            ),
            answer,
        )

    def on_new_user_ready(self, message: NewUserReady) -> None:
        self.query_one("#nu-note", Label).update(message.note)
        helpers.fill_recommendations(self.query_one("#nu-recs", DataTable), message.recs)


def known_choices(
    rec: Recommender, artists: list[int], genres: list[int]
) -> tuple[list[int], list[int], str]:
    """The liked artists and genres the model's vocabulary has tracks of, and the others named ("artist
    99999, genre 7"; empty when none is unknown), so that one unknown id does not empty the whole list."""
    known_a, known_g = set(rec.item_artist.tolist()), set(rec.item_genre.tolist())
    unknown = [f"artist {a}" for a in artists if a not in known_a]
    unknown += [f"genre {g}" for g in genres if g not in known_g]
    return [a for a in artists if a in known_a], [g for g in genres if g in known_g], ", ".join(unknown)


def mark_pinned(recs: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """`recs` with "▲ pinned: " before the reason of each track ranked above a higher-scored one (the
    liked artists' and genres' tracks come first), and whether there is any."""
    import numpy as np

    scores = recs["score"].to_numpy()
    if len(scores) < 2:
        return recs, False
    later_best = np.maximum.accumulate(scores[::-1])[::-1]  # the best score from each row on
    pinned = np.r_[later_best[1:] > scores[:-1], False]
    if not pinned.any():
        return recs, False
    recs = recs.copy()
    recs["reason"] = [
        "▲ pinned: " + str(r) if p else str(r) for r, p in zip(recs["reason"], pinned, strict=True)
    ]
    return recs, True

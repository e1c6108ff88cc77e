"""Screen 5: browse users: profile, recent history, top-N recommendations, test-row probability."""

from __future__ import annotations

import datetime as dt
import threading
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Select, Static

from flowtui.core.errors import DataError
from flowtui.core.flow import users as queries
from flowtui.tui import helpers
from flowtui.tui.dialogs import ConfirmDialog, PathDialog
from flowtui.tui.export import describe_filters, export_table
from flowtui.tui.helpers import REC_COLUMNS, TOP_N, RecommenderCache, parse_ids
from flowtui.tui.messages import FileWritten, OtherDataQuestion, RecModelsFound, UserReady
from flowtui.tui.screens.base import PickIdsScreen
from flowtui.tui.widgets import add_columns

if TYPE_CHECKING:
    import pandas as pd

    from flowtui.core.recs.recommend import Recommender

HISTORY_ROWS = 8
NO_MODEL = "no recommendation model yet: train recommenders (screen 7) or rbm, dbn, hybrid (screens 2-3)"


class UsersScreen(PickIdsScreen):
    """The per-user recommendation browser."""

    AUTO_FOCUS = "#user-list"
    HOME = "#user-list"
    HELP = (
        "/ searches users, enter opens one; m picks the model (any saved recommender, or rbm, dbn, hybrid); "
        "g and a pick genres and artists to keep; e exports every user's top 10. A model trained on other "
        "data is used only after a yes."
    )
    BINDINGS = [  # noqa: RUF012
        Binding("slash", "search", "Search", key_display="/"),
        Binding("m", "pick_model", "Model"),
        Binding("g", "pick('genre')", "Genres"),
        Binding("a", "pick('artist')", "Artists"),
        Binding("e", "export", "Export"),
        Binding("f5", "reload", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cache = RecommenderCache()
        self._frame: pd.DataFrame | None = None
        self._user: int | None = None
        self._models: list[str] = []
        self._predictors: list[str] = []
        #: models the person said no to on these data (`helpers.data_key`): not asked again
        self._declined: set[str] = set()
        self._asking: set[str] = set()  # questions on screen, so that a second open does not ask twice
        #: the filters of an export waiting for a yes to a model of other data (by `helpers.data_key`)
        self._export_filters: dict[str, tuple[list[int], list[int]]] = {}

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="users-body"):
            with Vertical(id="users-left"):
                yield Input(placeholder="user id…", id="user-search", type="integer")
                yield DataTable(id="user-list", cursor_type="row")
            with Vertical(id="users-right"):
                yield Static("Pick a user on the left (enter).", id="profile")
                yield DataTable(id="history", show_cursor=False)
                with Horizontal(id="rec-controls"):
                    yield Select[str]([], prompt="model", id="rec-model")
                    genres = Input(placeholder="g: pick, or type ids", id="genre-filter")
                    genres.border_title = "genres"
                    yield genres
                    artists = Input(placeholder="a: pick, or type ids", id="artist-filter")
                    artists.border_title = "artists"
                    yield artists
                yield DataTable(id="recs", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        add_columns(self.query_one("#user-list", DataTable), [("user", 6), ("rows", 6), ("rate", 4)])
        add_columns(
            self.query_one("#history", DataTable),
            [("when", 11), ("media", 8), ("artist", 7), ("genre", 5), ("flow", 4), ("", 10)],
        )
        add_columns(self.query_one("#recs", DataTable), REC_COLUMNS)
        self.query_one("#history").border_title = "Recent history"
        self.query_one("#recs").border_title = "Recommendations"
        self.query_one("#user-list").border_title = "Users"

    def on_screen_resume(self) -> None:
        self._follow_data()
        self._refresh_models()

    def refresh_from_state(self) -> None:
        self._follow_data()
        self._show_model_choice()

    def _follow_data(self) -> None:
        """New data were loaded: list their users, and reopen the open user there (or clear the pane)."""
        state = self.state
        if state.train is None or state.train.frame is self._frame:
            return
        self._frame = state.train.frame
        self.query_one("#user-search", Input).value = ""
        self._fill_users("")
        user = self._user
        if user is not None and bool((self._frame["user_id"] == user).any()):
            self._open(user)
            return
        self._user = None
        self.query_one("#profile", Static).update("Pick a user on the left (enter).")
        self.query_one("#history", DataTable).clear()
        self._fill_recs(None, "")

    def _refresh_models(self) -> None:
        self.scan_models(self.state.models_dir)

    def on_rec_models_found(self, message: RecModelsFound) -> None:
        self._predictors = message.predictors
        self.state.rec_models = message.names
        if message.names != self._models:
            self._models = message.names
            select = self.query_one("#rec-model", Select)
            select.set_options([(n, n) for n in message.names])
        self._show_model_choice()

    def _show_model_choice(self) -> None:
        """The Select shows the state's model for recommendations (the best fallback when it is gone)."""
        names, state = self._models, self.state
        if not names:
            return
        select = self.query_one("#rec-model", Select)
        current = select.value if isinstance(select.value, str) else None
        choice = state.rec_model if state.rec_model in names else current if current in names else names[0]
        state.rec_model = choice
        if select.value != choice:
            select.value = choice

    def _fill_users(self, prefix: str) -> None:
        table = self.query_one("#user-list", DataTable)
        table.clear()
        if self._frame is None:
            return
        users = queries.user_table(self._frame)
        if prefix:
            users = users[users["user_id"].astype(str).str.startswith(prefix)]
        for row in users.head(500).itertuples(index=False):
            table.add_row(
                str(row.user_id), f"{row.listens:,}", f"{row.listen_rate:.2f}", key=str(row.user_id)
            )

    @on(Input.Changed, "#user-search")
    def _search(self, event: Input.Changed) -> None:
        self._fill_users(event.value.strip())

    @on(Input.Submitted, "#user-search")
    def _search_go(self) -> None:
        table = self.query_one("#user-list", DataTable)
        if table.row_count:
            table.move_cursor(row=0)
            table.focus()
            self._open(int(str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)))

    @on(DataTable.RowSelected, "#user-list")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self._open(int(str(event.row_key.value)))

    @on(Select.Changed, "#rec-model")
    def _model_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.state.rec_model = event.value
        self.action_reload()

    @on(Input.Submitted, "#genre-filter, #artist-filter")
    def _controls(self) -> None:
        self.action_reload()

    def pick_field(self, kind: str) -> Input:
        """The field of the genres or artists to keep."""
        return self.query_one(f"#{kind}-filter", Input)

    def after_pick(self) -> None:
        """Show the open user's recommendations under the new filter."""
        self.action_reload()

    def action_open_user(self, user_id: int) -> None:
        """Open `user_id` (the palette's "Recommend for a user")."""
        self._follow_data()
        key = str(user_id)
        search = self.query_one("#user-search", Input)
        with search.prevent(Input.Changed):  # the list is filled here, for this user
            search.value = key
        self._fill_users(key)
        table = self.query_one("#user-list", DataTable)
        if key in {str(k.value) for k in table.rows}:
            table.move_cursor(row=table.get_row_index(key))
        self._open(user_id)

    def action_export(self) -> None:
        """Write every user's top 10 with the chosen model and the screen's filters to a CSV file (asks for
        the file)."""
        state = self.state
        model = self.query_one("#rec-model", Select).value
        if state.train is None:
            self.notify("load a data set first (screen 1)", severity="warning")
            return
        if not isinstance(model, str):
            self.notify(NO_MODEL, severity="warning")
            return
        try:
            filters = (
                parse_ids(self.query_one("#genre-filter", Input).value),
                parse_ids(self.query_one("#artist-filter", Input).value),
            )
        except ValueError as err:
            self.notify(f"cannot export: {err}", severity="error")
            return
        shown = describe_filters(*filters)
        note = f"filters applied: {shown} (top {TOP_N} among the matching tracks)" if shown else ""
        default = (
            state.out_dir / f"recommendations_{model.replace('/', '_')}.csv"
        )  # recs/ease: a name, not a folder
        dialog = PathDialog(f"Export the top {TOP_N} of every user with {model}", default, note)
        self.app.push_screen(dialog, partial(self._export_to, state.models_dir / model, filters))

    def _export_to(self, folder: Path, filters: tuple[list[int], list[int]], path: Path | None) -> None:
        state = self.state
        if path is None or state.train is None:
            return
        self.begin_work("export", f"writing {path.name}")
        allowed = set(state.other_data_ok)
        self._export(folder, state.train.frame, path, (allowed, filters), state.quitting)

    @work(thread=True, exclusive=True, exit_on_error=False, group="export")
    def _export(
        self,
        folder: Path,
        frame: pd.DataFrame,
        out: Path,
        how: tuple[set[str], tuple[list[int], list[int]]],
        quitting: threading.Event,
    ) -> None:
        allowed, (genres, artists) = how

        def write() -> int:
            table = export_table(self.cache.get(folder, frame, allowed), TOP_N, genres, artists)
            helpers.write_table(table, out)
            return len(table)

        try:
            rows = helpers.call_abandonable(write, quitting)
        except helpers.Abandoned:
            return
        except helpers.OtherData as other:
            question = OtherDataQuestion(folder, other.question, helpers.data_key(folder, frame), out)
            self._export_filters[question.key] = (genres, artists)
            self.post_message(question)
            return
        self.post_message(FileWritten(out, rows, "recommendations"))

    def on_other_data_question(self, message: OtherDataQuestion) -> None:
        """Ask before recommending with a model of other data (yes: used on these data from now on)."""
        out = message.out
        if out is not None:
            self.end_work("export")
        if message.key in self._asking:
            return
        self._asking.add(message.key)
        name = self._model_name(message.folder)

        def answer(yes: bool | None) -> None:
            state = self.state
            self._asking.discard(message.key)
            if not yes:
                self._declined.add(message.key)
                self._fill_recs(None, f"✗ {name} not used: trained on other data (m picks another model)")
                return
            state.other_data_ok.add(message.key)
            state.record(f"[yellow]{name} used on other data[/] (confirmed): {message.question}")
            if out is not None:
                self._export_to(message.folder, self._export_filters.pop(message.key, ([], [])), out)
            else:
                self.action_reload()

        what = "Export its recommendations" if out is not None else "Recommend with it"
        self.app.push_screen(
            ConfirmDialog(
                f"{message.question}\n{what} anyway?",
                yes="Use anyway",
                no="Don't",
                tag="other-data",
                default=False,
            ),
            answer,
        )

    def _model_name(self, folder: Path) -> str:
        return helpers.model_name(folder, self.state.models_dir)

    def on_file_written(self, message: FileWritten) -> None:
        self.end_work("export")
        self.query_one("#recs").border_subtitle = f"wrote {helpers.short_path(message.path)}"
        self.wrote(message.path, message.what, message.rows)

    def action_search(self) -> None:
        """Focus the user search."""
        self.query_one("#user-search").focus()

    def action_pick_model(self) -> None:
        """Focus the model choice."""
        self.query_one("#rec-model").focus()

    def action_reload(self) -> None:
        """Recompute the open user's recommendations (after a model or filter change)."""
        self._refresh_models()
        if self._user is not None:
            self._open(self._user)

    def _predictors_in_order(self) -> list[Path]:
        """The models that may predict test rows, best first: those trained this session (by holdout AUC),
        then saved ones (classifiers such as hybrid and lightgbm before rbm/dbn). The worker uses the first
        one trained on the loaded data."""
        state = self.state
        board = state.leaderboard
        order = [r.model for r in board.rows] if board is not None else []
        now = [state.saved[n] for n in dict.fromkeys([*order, *state.saved]) if n in state.saved]
        # saved earlier: by holdout AUC (the order found), classifiers and hybrid before rbm/dbn
        ranked = sorted(self._predictors, key=lambda n: n in self._models and n != "hybrid")
        return now + [state.models_dir / n for n in ranked if state.models_dir / n not in now]

    def _open(self, user_id: int) -> None:
        state = self.state
        if state.train is None:
            self.notify("load a data set first (screen 1)", severity="warning")
            return
        try:
            genres = parse_ids(self.query_one("#genre-filter", Input).value)
            artists = parse_ids(self.query_one("#artist-filter", Input).value)
        except ValueError as err:
            self.notify(str(err), severity="error")
            return
        self._user = user_id
        model = self.query_one("#rec-model", Select).value
        folder = state.models_dir / str(model) if model != Select.NULL else None
        test = state.test.frame if state.test is not None else None
        self.query_one("#profile", Static).update(f"user {user_id}: loading…")
        self._load_user(
            user_id,
            state.train.frame,
            test,
            folder,
            genres,
            artists,
            self._predictors_in_order(),
            (set(state.other_data_ok), set(self._declined)),
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="users")
    def _load_user(
        self,
        user_id: int,
        frame: pd.DataFrame,
        test: pd.DataFrame | None,
        folder: Path | None,
        genres: list[int],
        artists: list[int],
        predictors: list[Path],
        answers: tuple[set[str], set[str]],
    ) -> None:
        profile = queries.user_profile(frame, user_id)
        history = queries.user_history(frame, user_id, n=HISTORY_ROWS)
        recs, note = None, ""
        rec: Recommender | None = None
        allowed, declined = answers
        if folder is None:
            note = NO_MODEL
        else:
            name = self._model_name(folder)
            try:
                rec = self.cache.get(folder, frame, allowed)
            except helpers.OtherData as other:
                key = helpers.data_key(folder, frame)
                if key not in declined:
                    self.post_result(OtherDataQuestion(folder, other.question, key))
                rec, note = None, f"✗ {name} not used: trained on other data (m picks another model)"
            except (DataError, ValueError, OSError) as err:
                rec, note = None, f"✗ {name}: {err}"
        if folder is not None and rec is not None:
            try:
                # for_user filters genres itself; the artist filter keeps the matching part of a longer list.
                recs = rec.for_user(user_id, TOP_N * 50 if artists else TOP_N, genres=genres or None)
            except ValueError as err:
                recs, note = None, str(err)
            else:
                if artists:
                    recs = recs[recs["artist_id"].isin(artists)].head(TOP_N)
                    if recs.empty:
                        note = f"no recommended track by artist(s) {artists}"
        prob = None
        predictor = helpers.same_data_predictor(predictors, frame)
        if test is not None and predictor is not None:
            prob = queries.test_probability(predictor, frame, test, user_id)
        name = predictor.name if predictor is not None and prob is not None else ""
        self.post_result(UserReady(user_id, profile, history, recs, prob, note, name))

    def on_user_ready(self, message: UserReady) -> None:
        p = message.profile
        gender = p.get("gender", "?")
        lines = [
            f"[b]user {message.user_id}[/b] · age {p.get('age', '?')} · gender {gender} · "
            f"{p.get('listens', 0):,} listens",
            f"listen rate {p.get('listen_rate', float('nan')):.2f} overall, "
            f"{p.get('flow_listen_rate', float('nan')):.2f} on Flow ({p.get('flow_listens', 0):,} Flow rows)",
        ]
        if message.test_probability is not None:
            lines.append(
                f"test row: predicted listen probability [b]{message.test_probability:.3f}[/b] "
                f"({message.predictor})"
            )
        self.query_one("#profile", Static).update("\n".join(lines))
        hist = self.query_one("#history", DataTable)
        hist.clear()
        for r in message.history.itertuples(index=False):
            ts = int(cast(int, r.ts_listen))  # an integer column (pandas' stubs type cells loosely)
            when = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%m-%d %H:%M")
            mark = "[green]✓ listened[/]" if r.is_listened else "[red]✗ skipped[/]"
            hist.add_row(
                when,
                str(r.media_id),
                str(r.artist_id),
                str(r.genre_id),
                "flow" if r.listen_type else "",
                mark,
            )
        self._fill_recs(message.recs, message.note)

    def _fill_recs(self, recs: pd.DataFrame | None, note: str) -> None:
        table = self.query_one("#recs", DataTable)
        table.border_subtitle = note
        helpers.fill_recommendations(table, recs)

"""Pilot tests of the app's defects of issue 20 (items 10-17 and the app's small ones of 19): each failed
before its fix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from textual.clock import MockClock
from textual.widgets import DataTable, Input, Label, Static

from flowtui.core import events as ev
from flowtui.tui.app import FlowApp, make_app
from flowtui.tui.messages import EngineEvent
from flowtui.tui.screens.results import ResultsScreen
from flowtui.tui.screens.training import TrainingScreen
from flowtui.tui.widgets.path_input import PathSuggester
from tests.tui.pilot import settle, tiny_app

SIZE = (100, 30)
FAST_RBM = {"n_components": 16, "n_iter": 2, "batch_size": 64}


# -- 16: enter leaves a field ---------------------------------------------------------------------------


async def test_enter_in_a_path_field_leaves_it(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    app = tiny_app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        field = app.screen.query_one("#train-path", Input)
        field.focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.focused is not field
        assert app.focused is app.screen.query_one("#summary")
        await pilot.press("4")  # a screen key again, not a digit typed into the path
        assert field.value == str(tiny[0])
        assert isinstance(app.screen, ResultsScreen)


# -- 19: path fields, completion, the training chart ----------------------------------------------------


async def test_narrow_path_fields_show_the_file_name(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-folder-name" * 3)
    deep.mkdir()
    train, test = deep / "train.csv", deep / "test.csv"
    train.write_bytes(tiny[0].read_bytes())
    test.write_bytes(tiny[1].read_bytes())
    app = make_app(train, test, tmp_path / "models", clock=MockClock(), device="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        for field_id, name in (("#train-path", "train.csv"), ("#test-path", "test.csv")):
            field = app.screen.query_one(field_id, Input)
            shown = "".join(field.render_line(y).text for y in range(field.size.height))
            assert name in shown, shown


async def test_completion_prefers_the_field_s_own_file(tmp_path: Path) -> None:
    (tmp_path / "test.csv").write_text("x")
    (tmp_path / "train.csv").write_text("x")
    typed = f"{tmp_path}/"
    assert await PathSuggester("train").get_suggestion(typed) == f"{tmp_path}/train.csv"
    assert await PathSuggester("test").get_suggestion(typed) == f"{tmp_path}/test.csv"
    assert await PathSuggester("train").get_suggestion(f"{tmp_path}/te") == f"{tmp_path}/test.csv"


async def test_training_chart_names_what_it_draws_with_whole_epochs(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    app = tiny_app(tiny, tmp_path / "models")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        screen.prepare_rows(["lightgbm", "rbm"])
        for i in range(1, 23):
            screen.on_engine_event(EngineEvent(ev.AfterEpoch("lightgbm", i, 22, metric=0.6 + i / 100)))
            screen.on_engine_event(EngineEvent(ev.AfterEpoch("rbm", i, 22, loss=1.0 / i)))
        screen.draw_chart()
        await pilot.pause()
        from textual_plotext import PlotextPlot

        chart = screen.query_one("#train-chart", PlotextPlot)
        chart.plt.plotsize(chart.size.width, chart.size.height)
        text = re.sub(r"\x1b\[[0-9;]*m", "", chart.plt.build())
        assert "lightgbm" in text and "rbm" in text  # the title says rbm's loss is behind v
        assert "all" not in text.splitlines()[0]
        assert "22.5" not in text and "1.0" not in text  # whole epochs on the x axis


# -- 14, 15: the users screen's export and the palette's user --------------------------------------------


def _save_rec(train: Path, folder: Path, name: str = "popularity") -> None:
    """Train and save recommender `name` on `train` as `flowtui train-recs` does (no app)."""
    from flowtui.core.data.io import load_dataset
    from flowtui.core.modelfiles import fingerprint as data_fingerprint
    from flowtui.core.modelfiles.data_match import describe_data
    from flowtui.core.recs.store import save_recommender, train_recommender

    frame = load_dataset(train, kind="train").frame
    fp = data_fingerprint(frame)
    rec = train_recommender(frame, name, None, "quick")
    save_recommender(rec, folder, fingerprint=fp, data=describe_data(frame, fp, source=str(train)))


async def test_palette_user_resets_the_search_and_the_list(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    models = tmp_path / "models"
    _save_rec(tiny[0], models / "recs" / "popularity")
    app = tiny_app(tiny, models)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        await settle(app, pilot)
        search = app.screen.query_one("#user-search", Input)
        users = app.screen.query_one("#user-list", DataTable)
        ids = [str(users.get_row_at(i)[0]) for i in range(users.row_count)]
        first, other = ids[0], next(u for u in ids if not u.startswith(ids[0][0]))
        search.focus()
        await pilot.press(*first[0])  # a query that hides `other`
        await pilot.pause()
        assert other not in {str(users.get_row_at(i)[0]) for i in range(users.row_count)}
        app.action_ask_user()
        await pilot.pause()
        app.screen.query_one("#ask-field", Input).value = other
        await pilot.press("enter")
        await settle(app, pilot)
        screen = app.screen
        assert f"user {other}" in str(screen.query_one("#profile", Static).content)
        assert screen.query_one("#user-search", Input).value == other
        users = screen.query_one("#user-list", DataTable)
        assert str(users.get_row_at(users.cursor_row)[0]) == other


async def test_export_applies_the_filters_with_artist_and_genre(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    import pandas as pd

    from flowtui.tui.dialogs import PathDialog

    models = tmp_path / "models"
    _save_rec(tiny[0], models / "recs" / "popularity")
    frame = pd.read_csv(tiny[0])
    genre = int(frame["genre_id"].value_counts().index[0])
    app = tiny_app(tiny, models)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        await settle(app, pilot)
        app.screen.query_one("#genre-filter", Input).value = str(genre)
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, PathDialog)
        assert f"genres {genre}" in str(app.screen.query_one(".dialog-note", Static).content)
        out = Path(app.screen.query_one("#path-field", Input).value)
        await pilot.press("enter")
        await settle(app, pilot)
    written = pd.read_csv(out)
    assert list(written.columns) == ["user_id", "rank", "media_id", "artist_id", "genre_id", "score"]
    assert len(written) > 0 and set(written["genre_id"]) == {genre}
    assert written.groupby("user_id")["rank"].max().max() <= 10


# -- 11, 17: the models form ---------------------------------------------------------------------------


async def _models_screen(app: FlowApp, pilot) -> Any:  # type: ignore[no-untyped-def]
    from flowtui.tui.screens.models import ModelsScreen
    from flowtui.tui.widgets.ticklist import TickList

    await settle(app, pilot)
    await pilot.press("2")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, ModelsScreen)
    listing = screen.query_one("#model-list", TickList)
    listing.highlighted = list(screen.specs).index("rbm")
    await pilot.pause()
    return screen


async def test_training_is_refused_while_a_field_is_invalid(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    app = tiny_app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _models_screen(app, pilot)
        app.state.selected = ["rbm"]
        field = screen.query_one("#param-n_iter", Input)
        field.focus()
        field.value = "abc"
        await pilot.press("escape")
        await pilot.pause()
        assert "-invalid" in field.classes
        notes: list[str] = []
        app.notify = lambda message, **kw: notes.append(str(message))  # type: ignore[method-assign]
        await pilot.press("t")
        await settle(app, pilot)
        assert app.screen is screen, "training must not start"
        assert any("rbm n_iter" in n and "abc" in n for n in notes)
        # the palette's way to the training screen refuses as well
        await pilot.press("3")
        await pilot.pause()
        training = app.screen
        assert isinstance(training, TrainingScreen)
        training.action_train()
        await settle(app, pilot)
        assert app.state.run is None and not (tmp_path / "models" / "rbm").exists()


async def test_models_form_tab_order_help_no_select_all_and_reset(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    app = tiny_app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        screen = await _models_screen(app, pilot)
        screen.query_one("#model-list").focus()
        await pilot.press("tab")
        first = screen.query(".param-input").first(Input)
        assert first.selected_text == ""  # one key does not blank the field
        assert app.focused is first, "tab reaches the highlighted model's parameters first"
        helps = [str(label.content) for label in screen.query(".param-help").results(Label)]
        assert any("epochs" in h and "an integer from 1 to" in h for h in helps)
        rounds = screen.query_one("#opt-rounds", Input)
        default = rounds.value
        rounds.value = "7"
        rounds.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.state.run_options.rounds == 7
        screen.query_one("#model-list").focus()
        await pilot.press("r")
        await pilot.pause()
        assert rounds.value == default and app.state.run_options.rounds == int(default)


# -- 10, 12: which model and which test file a submission uses --------------------------------------------


def _save_flow(train: Path, models: Path, name: str = "logreg") -> None:
    """A Flow model saved by an earlier session (no holdout: no score in its meta.json)."""
    from flowtui.core.data.io import load_dataset
    from flowtui.core.run import run
    from flowtui.core.run_config import RunConfig

    frame = load_dataset(train, kind="train").frame
    run(frame, RunConfig(models=(name,), baselines=False, holdout=False, models_dir=models))


def _notes(app: FlowApp) -> list[str]:
    notes: list[str] = []
    app.notify = lambda message, **kw: notes.append(str(message))  # type: ignore[method-assign]
    return notes


async def test_a_cancelled_model_is_marked_and_never_writes_the_older_one(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    from flowtui.core.flow.evaluate import Leaderboard, LeaderboardRow
    from flowtui.tui.dialogs import PathDialog
    from flowtui.tui.messages import TrainingFinished
    from flowtui.tui.state import RunHandle

    models = tmp_path / "models"
    _save_flow(tiny[0], models)
    app = tiny_app(tiny, models)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await pilot.pause()
        training = app.screen
        assert isinstance(training, TrainingScreen)
        assert app.state.train is not None
        board = Leaderboard(rows=[LeaderboardRow("logreg", 0.91, 0.5, 0.8, 0.1, 0.0)], n_targets=10, rounds=1)
        app.state.run = RunHandle(["logreg"], app.state.train.frame, ["logreg"])
        training._training = True
        training.on_training_finished(TrainingFinished(board, {}, [], {"logreg": "cancelled by the user"}))
        await pilot.press("4")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ResultsScreen)
        table = screen.query_one("#leaderboard", DataTable)
        labels = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert labels == ["logreg (cancelled)", "logreg (saved)"]
        notes = _notes(app)
        table.move_cursor(row=0)
        await pilot.press("s")
        await pilot.pause()
        assert not isinstance(app.screen, PathDialog), "the cancelled model was not saved"
        assert any("cancelled" in n and "saved earlier" in n for n in notes)
        table.move_cursor(row=1)
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, PathDialog)
        note = str(app.screen.query_one(".dialog-note", Static).content)
        assert "uses" in note and str(models / "logreg") in note and "saved 20" in note


async def test_a_new_train_file_offers_the_test_file_beside_it(
    tiny: tuple[Path, Path], other_tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    from flowtui.tui.helpers import short_path

    app = tiny_app(tiny, tmp_path / "models")
    async with app.run_test(size=(200, 30)) as pilot:
        await settle(app, pilot)
        data = app.screen
        field = data.query_one("#train-path", Input)
        field.value = str(other_tiny[0])
        field.focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.state.test_path == tiny[1]  # loaded with the old test file, which is named in full
        status = str(data.query_one("#load-status", Label).content)
        assert f"test file still {short_path(tiny[1])}" in status
        assert f"ctrl+o uses {short_path(other_tiny[1])}" in status
        await pilot.press("ctrl+o")
        await settle(app, pilot)
        assert app.state.test_path == other_tiny[1] and app.state.train_path == other_tiny[0]
        assert data.query_one("#test-path", Input).value == str(other_tiny[1])
        assert "still" not in str(data.query_one("#load-status", Label).content)


async def test_a_submission_warns_when_the_test_users_are_others(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    import pandas as pd

    from flowtui.tui.dialogs import PathDialog

    models = tmp_path / "models"
    _save_flow(tiny[0], models)
    foreign = pd.read_csv(tiny[1])
    foreign["user_id"] += 100_000
    other_test = tmp_path / "test.csv"
    foreign.to_csv(other_test, index=False)
    app = make_app(tiny[0], other_test, models, clock=MockClock(), device="CPU")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await settle(app, pilot)
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, PathDialog)
        note = str(app.screen.query_one(".dialog-note", Static).content)
        assert "0% of the users" in note and "may not belong together" in note


# -- 13: cold start ----------------------------------------------------------------------------------------


async def test_an_unknown_artist_is_skipped_with_a_warning(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    import pandas as pd

    from flowtui.tui.screens.newuser import NewUserScreen

    models = tmp_path / "models"
    _save_rec(tiny[0], models / "recs" / "popularity")
    artist = int(pd.read_csv(tiny[0])["artist_id"].value_counts().index[0])
    app = tiny_app(tiny, models)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("6")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, NewUserScreen)
        screen.query_one("#nu-artists", Input).value = f"{artist}, 99999"
        await settle(app, pilot)
        note = str(screen.query_one("#nu-note", Label).content)
        assert screen.query_one("#nu-recs", DataTable).row_count == 10
        assert note.startswith("⚠ skipped artist 99999") and f"artists [{artist}]" in note  # seen first


def test_tracks_pinned_above_higher_scores_say_so() -> None:
    import pandas as pd

    from flowtui.tui.screens.newuser import mark_pinned

    recs = pd.DataFrame(
        {
            "media_id": [1, 2, 3, 4],
            "score": [0.2, 0.1, 0.9, 0.5],
            "reason": ["by artist 7 (you chose it)", "by artist 7 (you chose it)", "popular", "popular"],
        }
    )
    marked, any_pinned = mark_pinned(recs)
    assert any_pinned
    assert list(marked["reason"]) == [
        "▲ pinned: by artist 7 (you chose it)",
        "▲ pinned: by artist 7 (you chose it)",
        "popular",
        "popular",
    ]
    assert mark_pinned(recs.sort_values("score", ascending=False))[1] is False


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
async def test_the_test_file_note_wraps_instead_of_being_cut(
    tiny: tuple[Path, Path], other_tiny: tuple[Path, Path], tmp_path: Path, size: tuple[int, int]
) -> None:
    """The tmux trial saw "· test file still" cut at 120 columns and nothing at 80: the note now wraps."""
    app = tiny_app(tiny, tmp_path / "models")
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        field = app.screen.query_one("#train-path", Input)
        field.value = str(other_tiny[0])
        field.focus()
        await pilot.press("enter")
        await settle(app, pilot)
        label = app.screen.query_one("#load-status", Label)
        text = str(label.content)
        assert "test file still" in text and "ctrl+o uses" in text
        row = app.screen.query_one("#data-progress")
        lines = -(-len(text) // max(1, label.size.width))
        assert lines >= 2 and row.size.height >= min(3, lines)  # the row grows: the note is not cut
        await pilot.press("ctrl+q")


async def test_the_ctrl_o_offer_works_with_an_empty_test_field(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """The trial cleared the test field, loaded, pressed ctrl+o: "no other test file" although test.csv was
    beside train.csv."""
    app = tiny_app(tiny, tmp_path / "models")
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        field = app.screen.query_one("#test-path", Input)
        field.value = ""
        app.screen.query_one("#train-path", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.state.test_path is None
        await pilot.press("ctrl+o")
        await settle(app, pilot)
        assert app.state.test_path is not None and app.state.test_path.name == tiny[1].name

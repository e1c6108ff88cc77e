"""Pilot tests of the recommenders in the app: the leaderboard of screen 7 (the engine's, in a worker, with
progress and cancel), training recommenders, picking any saved recommender on the Users and New user
screens, and the question before a model of other data is used."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.clock import MockClock
from textual.widgets import DataTable, Input, Label, RichLog, Select, Static

from flowtui.core import events as ev
from flowtui.tui import helpers
from flowtui.tui.app import FlowApp, make_app
from flowtui.tui.dialogs import ConfirmDialog
from flowtui.tui.screens.newuser import NewUserScreen
from flowtui.tui.screens.recs.board import SEEDS, K, cell
from flowtui.tui.screens.recs.screen import RecsScreen
from flowtui.tui.screens.users import UsersScreen
from flowtui.tui.widgets.ticklist import TickList

SIZE = (100, 30)
FAST = ("item_knn", "popularity")  # recommenders quick enough for a test


def _app(tiny: tuple[Path, Path], models: Path) -> FlowApp:
    return make_app(tiny[0], tiny[1], models, clock=MockClock(), device="CPU")


async def _settle(app: FlowApp, pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def _until(pilot, condition: Callable[[], bool], seconds: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await pilot.pause(0.05)


def _save(train: Path, folder: Path, name: str) -> None:
    """Train and save recommender `name` on `train` as `flowtui train-recs` does (no app)."""
    from flowtui.core.data.io import load_dataset
    from flowtui.core.modelfiles import fingerprint as data_fingerprint
    from flowtui.core.modelfiles.data_match import describe_data
    from flowtui.core.recs.store import save_recommender, train_recommender

    frame = load_dataset(train, kind="train").frame
    fingerprint = data_fingerprint(frame)
    rec = train_recommender(frame, name, None, "quick")
    save_recommender(
        rec, folder, fingerprint=fingerprint, data=describe_data(frame, fingerprint, source=str(train))
    )


async def _tick_only(app: FlowApp, pilot, names: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    listing = app.screen.query_one("#recs-list", TickList)
    await _until(pilot, lambda: listing.option_count > 0)
    listing.deselect_all()
    for name in names:
        listing.select(name)
    await pilot.pause()
    assert app.state.rec_selected == [n for n in app.state.rec_selected if n in names]
    assert sorted(app.state.rec_selected) == sorted(names)


async def test_leaderboard_train_and_other_data_clears_it(
    tiny: tuple[Path, Path], other_tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    from flowtui.core.recs.evaluation import leaderboard

    models = tmp_path / "models"
    app = _app(tiny, models)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        await pilot.press("7")
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, RecsScreen)
        assert "No recommendation leaderboard" in str(screen.query_one("#recs-info", Static).content)
        listing = screen.query_one("#recs-list", TickList)
        from flowtui.core import registry

        assert [listing.get_option_at_index(i).value for i in range(listing.option_count)] == (
            registry.recommender_names()
        )
        await _tick_only(app, pilot, FAST)

        # the leaderboard: the engine's figures for the same data, models, seeds and preset
        await pilot.press("e")
        await _until(pilot, lambda: app.state.rec_board is not None)
        await _settle(app, pilot)
        frame = app.state.train.frame  # type: ignore[union-attr]
        expected = leaderboard(frame, list(FAST), k=K, seeds=SEEDS, preset=app.state.preset)
        table = screen.query_one("#recs-board", DataTable)
        assert table.row_count == len(FAST)
        for i, row in enumerate(expected.rows):
            shown = table.get_row_at(i)
            assert shown[0] == row["model"]
            assert shown[3] == cell(row, "ndcg_at_k", 3, True) and "±" in shown[3]
            assert shown[1] == cell(row, "precision_at_k", 3, False)
        assert str(table.get_row_at(0)[4]) == "best"
        detail = str(screen.query_one("#recs-detail", Static).content)
        assert expected.rows[0]["model"] in detail and "NDCG per seed" in detail
        info = str(screen.query_one("#recs-info", Static).content)
        assert f"{SEEDS} seeds" in info and str(tiny[0]) in info
        assert "recs" not in app.state.work and not screen.query_one("#recs-progress").display

        # training: each ticked one saved to MODELS/recs/NAME, listed with "these data", offered to screen 5
        await pilot.press("t")
        await _until(pilot, lambda: "recs" not in app.state.work)
        await _settle(app, pilot)
        for name in FAST:
            assert (models / "recs" / name / "meta.json").is_file()
        saved = screen.query_one("#recs-saved", DataTable)
        assert saved.row_count == len(FAST)
        assert all(str(saved.get_row_at(i)[1]) == "these data" for i in range(saved.row_count))
        assert {f"recs/{n}" for n in FAST} <= set(app.state.rec_models)
        assert app.state.rec_model == f"recs/{expected.rows[0]['model']}"  # the best on the leaderboard
        saved.move_cursor(row=1)
        await pilot.press("u")
        await _settle(app, pilot)
        assert app.state.rec_model == f"recs/{sorted(FAST)[1]}"
        await _until(pilot, lambda: str(saved.get_row_at(1)[0]).endswith(" ◀"))  # the one in use is marked
        assert [str(saved.get_row_at(i)[0]).endswith(" ◀") for i in range(saved.row_count)] == [False, True]

        # other data loaded: the leaderboard of the old data is gone, the saved ones say "other"
        await pilot.press("1")
        await pilot.pause()
        field = app.screen.query_one("#train-path", Input)
        field.value = str(other_tiny[0])
        field.focus()
        await pilot.press("enter")
        await _settle(app, pilot)
        assert app.state.rec_board is None
        await pilot.press("escape", "7")
        await _settle(app, pilot)
        assert app.screen.query_one("#recs-board", DataTable).row_count == 0
        assert "No recommendation leaderboard" in str(app.screen.query_one("#recs-info", Static).content)
        saved = app.screen.query_one("#recs-saved", DataTable)
        assert all(str(saved.get_row_at(i)[1]).startswith("other: ") for i in range(saved.row_count))
        assert (models / "recs" / "leaderboard.json").is_file()  # kept, but it belongs to the first data

        # the first data again: the kept leaderboard is theirs (same fingerprint) and shows again
        await pilot.press("1")
        await pilot.pause()
        field = app.screen.query_one("#train-path", Input)
        field.value = str(tiny[0])
        field.focus()
        await pilot.press("enter")
        await _settle(app, pilot)
        await pilot.press("escape", "7")
        await _settle(app, pilot)
        table = app.screen.query_one("#recs-board", DataTable)
        assert [table.get_row_at(i)[0] for i in range(table.row_count)] == [r["model"] for r in expected.rows]
        assert "computed 20" in str(app.screen.query_one("#recs-info", Static).content)


def _slow_leaderboard(started: threading.Event) -> Callable[..., Any]:
    def fake(*args: Any, on_event: Any = None, cancel: threading.Event | None = None, **kw: Any) -> Any:
        started.set()
        for i in range(200):  # 10 s at most
            ev.emit(on_event, ev.Progress("evaluate-recs", i, 200, f"model {i}"))
            ev.check_cancel(cancel)
            time.sleep(0.05)
        raise AssertionError("the cancel never came")

    return fake


async def test_leaderboard_runs_in_a_worker_and_cancels(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowtui.core.recs import evaluation

    started = threading.Event()
    monkeypatch.setattr(evaluation, "leaderboard", _slow_leaderboard(started))
    app = _app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        await pilot.press("7")
        await _settle(app, pilot)
        await pilot.press("e")
        await _until(pilot, started.is_set)
        await pilot.pause(0.3)
        screen = app.screen
        assert screen.query_one("#recs-progress").display
        assert "leaderboard: model" in str(screen.query_one("#recs-phase", Label).content)
        assert "leaderboard" in str(app.state.work["recs"].label)
        # the UI answers while it runs: a second e is refused with a note, other screens open
        await pilot.press("e")
        await pilot.press("2")
        await pilot.pause()
        assert app.current_mode == "models"
        await pilot.press("7", "c")
        await _until(pilot, lambda: "recs" not in app.state.work, seconds=5)
        await pilot.pause()
        assert app.state.rec_board is None
        assert "cancelled" in str(app.screen.query_one("#recs-info", Static).content)

        # quitting while it runs asks first; no keeps working, yes cancels it and leaves
        started.clear()
        await pilot.press("e")
        await _until(pilot, started.is_set)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog) and app.screen.tag == "quit"
        assert "Recommenders are at work (leaderboard" in app.screen.question
        await pilot.press("n")
        await pilot.pause()
        assert "recs" in app.state.work
        await pilot.press("ctrl+q", "y")
        await _until(pilot, lambda: not app.is_running, seconds=5)


async def test_users_and_new_user_use_any_recommender_and_ask_about_other_data(
    tiny: tuple[Path, Path], other_tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    models = tmp_path / "models"
    _save(tiny[0], models / "item_knn", "item_knn")  # `flowtui train-recs --out models`
    _save(other_tiny[0], models / "recs" / "popularity", "popularity")  # trained on other data
    app = _app(tiny, models)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        await pilot.press("5")
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, UsersScreen)
        select = screen.query_one("#rec-model", Select)
        assert {"item_knn", "recs/popularity"} <= set(app.state.rec_models)
        select.value = "item_knn"
        await pilot.press("enter")  # opens the first user
        await _settle(app, pilot)
        recs = screen.query_one("#recs", DataTable)
        assert recs.row_count == helpers.TOP_N and app.state.rec_model == "item_knn"

        # a recommender of other data: a question naming both data sets; no (the default) uses nothing
        select.value = "recs/popularity"
        await _settle(app, pilot)
        question = app.screen
        assert isinstance(question, ConfirmDialog) and question.tag == "other-data"
        assert str(other_tiny[0]) in question.question and str(tiny[0]) in question.question
        assert "Unknown to the model: " in question.question and "users and" in question.question
        await pilot.press("enter")
        await _settle(app, pilot)
        assert app.screen is screen and recs.row_count == 0
        assert "not used: trained on other data" in str(recs.border_subtitle)
        await pilot.press("f5")  # not asked again once declined
        await _settle(app, pilot)
        assert app.screen is screen

        # the New user screen asks too (its own question); yes recommends, and is remembered
        await pilot.press("6")
        await _settle(app, pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await _settle(app, pilot)
        newuser = app.screen
        assert isinstance(newuser, NewUserScreen)
        assert newuser.query_one("#nu-recs", DataTable).row_count == helpers.TOP_N
        assert any("used on other data" in line for line in app.state.activity)
        await pilot.press("5", "f5")  # the yes holds for the Users screen too
        await _settle(app, pilot)
        current: object = app.screen  # mypy narrowed app.screen to the dialog above
        assert current is screen and recs.row_count == helpers.TOP_N

        # and for the export of every user's top 10 with it
        out = tmp_path / "recs.csv"
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#path-field", Input).value = str(out)
        await pilot.press("enter")
        await _settle(app, pilot)
        written = out.read_text().splitlines()
        n_users = app.state.train.frame["user_id"].nunique()  # type: ignore[union-attr]
        assert len(written) == 1 + helpers.TOP_N * n_users


def test_other_data_question_names_both_data_sets(
    tiny: tuple[Path, Path], other_tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    from flowtui.core.data.io import load_dataset
    from flowtui.core.workflows.recs import open_model

    _save(tiny[0], tmp_path / "m", "popularity")
    model = open_model(tmp_path / "m")
    own = load_dataset(tiny[0], kind="train").frame
    other = load_dataset(other_tiny[0], kind="train").frame
    other.attrs["source"] = str(other_tiny[0])
    assert helpers.other_data_question(model, own, "m") == ""
    question = helpers.other_data_question(model, other, "m")
    assert question.startswith(f"m was trained on {tiny[0]} ({len(own):,} rows")
    assert f"not on the loaded data: {other_tiny[0]} ({len(other):,} rows" in question
    users = set(other["user_id"])
    unknown = len(users - set(own["user_id"])) / len(users)
    assert f"Unknown to the model: {unknown:.0%} of the loaded data's users" in question


async def test_recommender_ticks_and_choice_are_remembered(
    tiny: tuple[Path, Path], tmp_path: Path, config_dir: Path
) -> None:
    import json

    models = tmp_path / "models"
    _save(tiny[0], models / "recs" / "popularity", "popularity")
    app = _app(tiny, models)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        await pilot.press("7")
        await _settle(app, pilot)
        await _tick_only(app, pilot, ("ease", "popularity"))
        await pilot.press("u")  # the one saved recommender
        await _settle(app, pilot)
        assert app.state.rec_model == "recs/popularity"
        await pilot.press("ctrl+q")
        await pilot.pause()
    doc = json.loads((config_dir / "settings.json").read_text())
    assert doc["recommenders"] == ["ease", "popularity"] and doc["rec_model"] == "recs/popularity"

    again = make_app(models_dir=models, clock=MockClock(), device="CPU")
    async with again.run_test(size=SIZE) as pilot:
        await _settle(again, pilot)
        await pilot.press("7")
        await _settle(again, pilot)
        listing = again.screen.query_one("#recs-list", TickList)
        assert sorted(listing.selected) == ["ease", "popularity"]
        await pilot.press("5", "enter")
        await _settle(again, pilot)
        assert again.screen.query_one("#rec-model", Select).value == "recs/popularity"
        assert again.screen.query_one("#recs", DataTable).row_count == helpers.TOP_N


async def test_screen_opened_before_the_data_follows_the_load(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    app = _app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        loaded, app.state.train = app.state.train, None  # as if screen 7 opened while the data load
        await pilot.press("7")
        await _settle(app, pilot)
        assert "Load a data set first" in str(app.screen.query_one("#recs-info", Static).content)
        await pilot.press("1")
        app.state.train = loaded  # the load ends while another screen is in view
        await pilot.press("7")
        await _settle(app, pilot)
        info = str(app.screen.query_one("#recs-info", Static).content)
        assert "No recommendation leaderboard on these data yet" in info


def test_unknown_artist_and_genre_show_as_a_question_mark() -> None:
    assert [helpers.known(v) for v in (-1, "-1", 0, 1132)] == ["?", "?", "0", "1132"]


async def test_a_part_of_a_model_reports_on_its_model_row(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """The rbm's exposure network ("rbm exposure") shows on the rbm's row and in the log, not as a model."""
    from flowtui.tui.messages import EngineEvent
    from flowtui.tui.screens.training import TrainingScreen

    app = _app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        await pilot.press("3")
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        row = screen._row("rbm")
        assert row is not None
        await pilot.pause()
        for e in (
            ev.BeforeFit("rbm exposure", 4),
            ev.AfterEpoch("rbm exposure", 2, 4),
            ev.AfterFit("rbm exposure", 0.5),
        ):
            screen.post_message(EngineEvent(e))
            await pilot.pause()
        assert set(screen._rows) == {"rbm"}
        assert "exposure 2/4" in str(row._status.content)
        assert any("rbm exposure" in line for line in map(str, screen.query_one("#train-log", RichLog).lines))

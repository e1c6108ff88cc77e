"""Pilot tests of the app for daily work: orientation, memory between sessions, the palette's actions,
cancelling one model, files written with confirmation, pickers, and quitting while work runs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.clock import MockClock
from textual.widgets import DataTable, Input, Label, Static

from flowtui.core import events as ev
from flowtui.tui import settings
from flowtui.tui.app import FlowApp, make_app
from flowtui.tui.dialogs import ConfirmDialog, PathDialog, PickerDialog
from flowtui.tui.helpers import short_path
from flowtui.tui.messages import TrainingFinished
from flowtui.tui.screens.models import ModelsScreen
from flowtui.tui.screens.newuser import NewUserScreen
from flowtui.tui.screens.results import ResultsScreen
from flowtui.tui.screens.training import TrainingScreen
from flowtui.tui.screens.users import UsersScreen
from flowtui.tui.widgets.model_progress import ModelProgress
from flowtui.tui.widgets.navbar import NavBar
from flowtui.tui.widgets.status_line import StatusLine
from flowtui.tui.widgets.ticklist import TickList
from tests.tui.pilot import settle, tiny_app, until

SIZE = (100, 30)


def _status(app: FlowApp) -> str:
    line = app.screen.query_one(StatusLine)
    return str(line.render())


def fake_holdout(behaviour: dict[str, str]) -> Callable[..., Any]:
    """Stands in for `holdout_leaderboard`. Per model: "quick" (done at once), "until-cancelled" (epochs
    until its own or the run's cancel flag, 10 s at most), "stuck" (3 s without looking at any flag),
    "fails" (a failed row)."""
    from flowtui.core.flow.evaluate import Leaderboard, LeaderboardRow

    def fake(
        frame: object,
        names: list[str],
        *args: object,
        on_event=None,
        cancel=None,
        model_cancel=None,
        **kw: object,
    ):  # type: ignore[no-untyped-def]
        rows = []
        for name in names:
            how = behaviour.get(name, "quick")
            own = (model_cancel or {}).get(name)
            ev.emit(on_event, ev.BeforeFit(name, n_epochs=100))
            error = None
            if how == "stuck":
                time.sleep(3.0)
            elif how == "fails":
                error = "ValueError: boom"
            elif how == "until-cancelled":
                for i in range(1, 300):
                    if cancel.wait(0.05):
                        ev.emit(on_event, ev.AfterFit(name, 0.0, cancelled=True))
                        raise ev.Cancelled("cancelled by the user")
                    if own is not None and own.is_set():
                        error = "cancelled by the user"
                        break
                    ev.emit(on_event, ev.AfterEpoch(name, min(i, 100), 100, loss=1.0 / i))
                else:
                    raise AssertionError("never cancelled")
            else:
                ev.emit(on_event, ev.AfterEpoch(name, 1, 1, metric=0.6))
            ev.check_cancel(cancel)
            ev.emit(on_event, ev.AfterFit(name, 0.01, cancelled=error == "cancelled by the user"))
            score = None if error else 0.6
            baseline = name in ("constant", "user_flow_rate")
            rows.append(LeaderboardRow(name, score, score, score, 0.01, 0.0, baseline=baseline, error=error))
        return Leaderboard(rows=rows, n_targets=10, rounds=1)

    return fake


# -- orientation ---------------------------------------------------------------------------------------


async def test_nav_status_line_and_device(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    app = make_app(tiny[0], tiny[1], tmp_path / "models", clock=MockClock())  # the device is probed
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "[1 Data]" in str(app.screen.query_one(NavBar).render())
        assert app.state.device in ("CPU", "CUDA", "CPU (no torch)")
        status = _status(app)
        assert "train.csv + test.csv" in status and "models/" in status and app.state.device in status
        assert "idle" in status
        await pilot.press("2")
        await settle(app, pilot)
        assert "[2 Models]" in str(app.screen.query_one(NavBar).render())
        listing = app.screen.query_one("#model-list", TickList)
        assert listing.highlighted == 0  # the first row is highlighted on arrival
        line = str(listing.render_line(listing.get_option_index("logreg")).text)
        assert line.startswith("[x]")  # ticks read without colour
        assert str(listing.render_line(listing.get_option_index("knn")).text).startswith("[ ]")


async def test_keys_pressed_while_the_models_screen_fills_are_kept(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowtui.core import registry

    real = registry.model_names
    gate = threading.Event()

    def slow() -> list[str]:
        gate.wait(10)
        return real()

    monkeypatch.setattr(registry, "model_names", slow)
    app = tiny_app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "down", "space")  # before the registry is read
        assert app.state.specs is None
        gate.set()
        await settle(app, pilot)
        await pilot.pause()
        assert isinstance(app.screen, ModelsScreen)
        listing = app.screen.query_one("#model-list", TickList)
        assert listing.highlighted == 1
        assert "user_flow_rate" in app.state.selected


# -- memory between sessions ---------------------------------------------------------------------------


async def test_settings_are_remembered_across_two_runs(
    tiny: tuple[Path, Path], tmp_path: Path, config_dir: Path
) -> None:
    models = tmp_path / "models"
    app = tiny_app(tiny, models)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        listing = app.screen.query_one("#model-list", TickList)
        listing.deselect("lightgbm")
        listing.select("rbm")
        listing.highlighted = listing.get_option_index("rbm")
        await pilot.pause()
        field = app.screen.query_one("#param-n_iter", Input)
        field.value = "7"
        field.focus()
        await pilot.press("enter")
        rounds = app.screen.query_one("#opt-rounds", Input)
        rounds.value = "2"
        rounds.focus()
        await pilot.press("enter", "escape", "p")
        assert app.state.preset == "full"
        await pilot.press("ctrl+q")
        await pilot.pause()
    doc = json.loads((config_dir / "settings.json").read_text())
    assert doc["kind"] == settings.KIND and doc["models"] == ["logreg", "rbm"]
    assert doc["params"] == {"rbm": {"n_iter": 7}} and doc["preset"] == "full"
    assert doc["run_options"]["rounds"] == 2
    assert doc["data"] == {"train": str(tiny[0].resolve()), "test": str(tiny[1].resolve())}

    again = make_app(models_dir=models, clock=MockClock(), device="CPU")  # no files given: the last ones
    assert again.state.train_path == tiny[0].resolve() and again.state.test_path == tiny[1].resolve()
    async with again.run_test(size=SIZE) as pilot:
        await settle(again, pilot)
        state = again.state
        assert state.selected == ["logreg", "rbm"] and state.params == {"rbm": {"n_iter": 7}}
        assert state.preset == "full" and state.run_options.rounds == 2
        assert state.train is not None and state.train.n_rows > 0
        await pilot.press("2")
        await settle(again, pilot)
        assert again.screen.query_one("#opt-rounds", Input).value == "2"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"theme": "dark"}', "not a flowtui settings file"),
        (b"\xff\xfe\x00garbage", "codec"),
        (b'{"kind": "flowtui-settings", "version": 99}', "version 99"),
        (b"[" * 60_000 + b"]" * 60_000, "nested too deeply"),  # a RecursionError crashed the app
    ],
    ids=["not-json", "foreign", "not-utf8", "other-version", "deeply-nested"],
)
async def test_a_damaged_or_foreign_settings_file_is_ignored(
    tiny: tuple[Path, Path], tmp_path: Path, config_dir: Path, content: bytes, why: str
) -> None:
    path = config_dir / "settings.json"
    path.write_bytes(content)
    app = make_app(models_dir=tmp_path / "models", clock=MockClock(), device="CPU")
    from flowtui.core import paths

    assert app.state.train_path == paths.sample_train()  # defaults
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        notes = [n.message for n in app._notifications]
        assert any("ignored" in n and why in n for n in notes), notes
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert (config_dir / "settings.json.bad").read_bytes() == content  # kept aside, not lost
    assert json.loads(path.read_text())["kind"] == settings.KIND


async def test_remembered_values_are_checked_against_the_schemas(
    tiny: tuple[Path, Path], tmp_path: Path, config_dir: Path
) -> None:
    doc = {
        "kind": settings.KIND,
        "version": settings.VERSION,
        "data": {"train": str(tmp_path / "gone.csv"), "test": None},
        "models": ["logreg", "no_such_model"],
        "params": {"rbm": {"n_iter": -4, "batch_size": 32}, "ghost": {"x": 1}},
        "preset": "quick",
        "run_options": {"rounds": 1000},
    }
    (config_dir / "settings.json").write_text(json.dumps(doc))
    app = make_app(models_dir=tmp_path / "models", clock=MockClock(), device="CPU")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        state = app.state
        assert state.on_sample  # the remembered train file is gone
        assert state.selected == ["logreg"]
        assert state.params == {"rbm": {"batch_size": 32}}  # the bad value only is forgotten
        assert state.run_options.rounds == 1
        notes = " | ".join(n.message for n in app._notifications)
        for expected in ("gone.csv is gone", "no_such_model", "rbm.n_iter", "ghost", "rounds"):
            assert expected in notes, expected


def test_config_folder_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLOWTUI_CONFIG_DIR", str(tmp_path / "a"))
    assert settings.settings_file() == tmp_path / "a" / "settings.json"
    monkeypatch.delenv("FLOWTUI_CONFIG_DIR")
    assert settings.settings_file() is None  # under pytest, memory is off without FLOWTUI_CONFIG_DIR
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert settings.settings_file() == tmp_path / "xdg" / "flowtui" / "settings.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert settings.settings_file() == tmp_path / "home" / ".config" / "flowtui" / "settings.json"


async def test_an_unwritable_config_folder_is_told_once(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("FLOWTUI_CONFIG_DIR", str(blocker / "sub"))  # a folder under a file: never writable
    app = tiny_app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.save_settings()
        app.save_settings()
        await pilot.pause()
        warnings = [n for n in app._notifications if "cannot save settings" in n.message]
        assert len(warnings) == 1


# -- the palette ----------------------------------------------------------------------------------------


async def _palette(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    """Run the palette command `text` (typed at once: each key press waits for an idle CPU in a test)."""
    from textual.command import CommandList, CommandPalette

    await pilot.press("ctrl+p")
    await pilot.pause()
    palette = pilot.app.screen
    assert isinstance(palette, CommandPalette)
    palette.query_one(Input).value = text
    commands = palette.query_one(CommandList)
    await until(
        pilot, lambda: commands.option_count > 0 and text in str(commands.get_option_at_index(0).prompt)
    )
    await pilot.press("enter")
    await pilot.pause()


async def test_palette_offers_every_action_and_cancels_one_model(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowtui.core import run

    monkeypatch.setattr(run, "holdout_leaderboard", fake_holdout({"logreg": "until-cancelled"}))
    models = tmp_path / "models"
    app = tiny_app(tiny, models)
    messages: list[object] = []
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await settle(app, pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for title in (
            "Load data",
            "Train the ticked models",
            "Write a submission…",
            "Recommend for a user…",
            "Export recommendations…",
            "Training chart: next model",
            "Go to Users",
        ):
            assert title in titles, title
        app.state.selected = ["logreg", "decision_tree"]
        await _palette(pilot, "Train the ticked models")
        assert isinstance(app.screen, TrainingScreen)
        await until(pilot, lambda: "logreg" in (app.state.run.running() if app.state.run else []))
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Cancel training", "Cancel model logreg", "Cancel model decision_tree"} <= titles
        await _palette(pilot, "Cancel model logreg")
        await until(pilot, lambda: any(isinstance(m, TrainingFinished) for m in messages))
        await settle(app, pilot)
        finished = [m for m in messages if isinstance(m, TrainingFinished)][-1]
        assert finished.failed == {"logreg": "cancelled by the user"}
        assert set(finished.saved) == {"decision_tree"}  # the other model went on
        rows = {r.model: r for r in app.screen.query(ModelProgress)}
        assert rows["logreg"].has_class("-cancelled") and rows["logreg"].status == "cancelled"
        assert rows["decision_tree"].has_class("-done")
        assert not (models / "logreg").exists()
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert not any(t.startswith("Cancel model") for t in titles)


async def test_x_cancels_the_picked_model_row(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowtui.core import run

    monkeypatch.setattr(run, "holdout_leaderboard", fake_holdout({"logreg": "until-cancelled"}))
    app = tiny_app(tiny, tmp_path / "models")
    messages: list[object] = []
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await settle(app, pilot)
        app.state.selected = ["logreg", "decision_tree"]
        await pilot.press("3", "t")
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        await until(pilot, lambda: "logreg" in (app.state.run.running() if app.state.run else []))
        await pilot.pause()
        assert isinstance(app.focused, ModelProgress) and app.focused.model == "constant"  # first row picked
        await pilot.press("down", "down")
        assert isinstance(app.focused, ModelProgress) and app.focused.model == "logreg"
        assert "training" in _status(app)
        await pilot.press("x")
        await until(pilot, lambda: any(isinstance(m, TrainingFinished) for m in messages))
        finished = [m for m in messages if isinstance(m, TrainingFinished)][-1]
        assert finished.failed == {"logreg": "cancelled by the user"} and "decision_tree" in finished.saved


async def test_a_failed_model_shows_failed_and_why(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowtui.core import run

    monkeypatch.setattr(run, "holdout_leaderboard", fake_holdout({"logreg": "fails"}))
    app = tiny_app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.state.selected = ["logreg", "decision_tree"]
        await pilot.press("3", "t")
        await settle(app, pilot)
        rows = {r.model: r for r in app.screen.query(ModelProgress)}
        assert rows["logreg"].has_class("-failed") and rows["logreg"].status == "failed: ValueError: boom"
        assert all(r.status not in ("waiting", "running") for r in rows.values())
        assert "failed logreg" in str(app.screen.query_one("#train-status", Label).content)


async def test_training_chart_shows_one_model_or_all(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    from flowtui.tui.messages import EngineEvent

    app = tiny_app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        screen.prepare_rows(["lightgbm", "rbm"])
        for i in range(1, 4):
            screen.on_engine_event(EngineEvent(ev.AfterEpoch("lightgbm", i, 3, metric=0.6 + i / 100)))
            screen.on_engine_event(EngineEvent(ev.AfterEpoch("rbm", i, 3, loss=1.0 / i)))
        seen = [screen.curves_of]
        for _ in range(3):
            await pilot.press("v")
            seen.append(screen.curves_of)
        assert seen == [None, "lightgbm", "rbm", None]


# -- quitting -------------------------------------------------------------------------------------------


async def test_quit_during_training_asks_then_cancels_and_exits(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowtui.core import run

    monkeypatch.setattr(run, "holdout_leaderboard", fake_holdout({"logreg": "until-cancelled"}))
    models = tmp_path / "models"
    app = tiny_app(tiny, models)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.state.selected = ["logreg"]
        await pilot.press("3", "t")
        await until(pilot, lambda: "logreg" in (app.state.run.running() if app.state.run else []))
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)  # work is running: ask first
        await pilot.press("n")
        await pilot.pause()
        assert app.return_code is None and app.state.run is not None and not app.state.run.cancel.is_set()
        await pilot.press("ctrl+q")
        await pilot.pause()
        start = time.monotonic()
        await pilot.press("y")
        await until(pilot, lambda: app.return_code is not None, seconds=3)
        assert time.monotonic() - start < 2.0
    assert not models.exists()  # nothing saved after the quit


async def test_quit_does_not_wait_for_a_fit_that_ignores_cancel(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowtui.core import run

    monkeypatch.setattr(run, "holdout_leaderboard", fake_holdout({"logreg": "stuck"}))
    models = tmp_path / "models"
    app = tiny_app(tiny, models)
    async with app.run_test(size=SIZE) as pilot:
        await _settle_startup(app, pilot)
        app.state.selected = ["logreg"]
        await pilot.press("3", "t")
        await pilot.pause(0.2)
        start = time.monotonic()
        await pilot.press("ctrl+q", "ctrl+q")  # ctrl+q twice confirms
        await until(pilot, lambda: app.return_code is not None, seconds=4)
        assert time.monotonic() - start < 2.5
    time.sleep(3.2)  # the stuck fit ends; the run then stops at its cancel check
    assert not models.exists()


async def _settle_startup(app: FlowApp, pilot) -> None:  # type: ignore[no-untyped-def]
    await settle(app, pilot)


# -- files written ---------------------------------------------------------------------------------------


def _train_saved(frame_path: Path, models: Path, names: tuple[str, ...]) -> None:
    """Train and save `names` on the file (the engine's own run, no app)."""
    from flowtui.core.data.io import load_dataset
    from flowtui.core.run import run
    from flowtui.core.run_config import RunConfig

    frame = load_dataset(frame_path, kind="train").frame
    run(frame, RunConfig(models=names, preset="quick", baselines=False, models_dir=models))


async def test_saved_models_make_the_leaderboard_and_submissions_confirm_overwrites(
    tiny: tuple[Path, Path], other_tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    models = tmp_path / "models"
    _train_saved(tiny[0], models, ("constant",))
    _train_saved(other_tiny[0], models, ("user_flow_rate",))
    app = tiny_app(tiny, models)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("4")
        await settle(app, pilot)
        assert isinstance(app.screen, ResultsScreen)
        board = app.screen.query_one("#leaderboard", DataTable)
        labels = [str(board.get_row_at(i)[1]) for i in range(board.row_count)]
        assert labels == ["constant (saved)", "user_flow_rate (other)"]
        assert str(board.get_row_at(0)[2]) != "" and str(board.get_row_at(1)[2]) == ""  # no mixed scores
        assert "trained on other data" in str(app.screen.query_one("#leak-warning", Label).content)

        out = tmp_path / "sub.csv"
        out.write_text("keep me\n")
        await pilot.press("s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, PathDialog)
        field = dialog.query_one("#path-field", Input)
        field.value = str(out)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog) and str(out) in app.screen.question
        await pilot.press("n")  # keep it
        await pilot.pause()
        assert app.screen is dialog and out.read_text() == "keep me\n"
        assert "not overwritten" in str(dialog.query_one("#path-error", Label).content)
        await pilot.press("enter", "y")
        await settle(app, pilot)
        assert out.read_text().startswith("sample_id,is_listened")
        assert app.state.last_written == str(out) and "sub.csv" in _status(app)
        assert f"wrote submission {out}" in app.state.activity[-1]

        # a model of other data: a warning in the dialog, then a question naming both data sets and the
        # unknown shares; no (the default, enter) writes nothing, yes writes
        board.move_cursor(row=1)
        for answer in ("enter", "y"):
            await pilot.press("s")
            await pilot.pause()
            assert "other data" in str(app.screen.query_one(".dialog-note", Static).content)
            app.screen.query_one("#path-field", Input).value = str(tmp_path / "other.csv")
            await pilot.press("enter")
            await settle(app, pilot)
            question = app.screen
            assert isinstance(question, ConfirmDialog) and question.tag == "other-data"
            assert "user_flow_rate was trained on" in question.question
            assert str(tiny[0]) in question.question and question.question.count("fingerprint") == 2
            assert (
                "Unknown to the model: " in question.question
                and "of the test file's users" in question.question
            )
            assert not (tmp_path / "other.csv").exists()
            await pilot.press(answer)
            await settle(app, pilot)
        assert (tmp_path / "other.csv").is_file()
        assert "used on other data" in " ".join(app.state.activity)

        # a folder, or a path under a file, is refused in the dialog with a sentence
        await pilot.press("s")
        await pilot.pause()
        app.screen.query_one("#path-field", Input).value = str(tmp_path)
        await pilot.press("enter")
        await pilot.pause()
        assert "is a folder" in str(app.screen.query_one("#path-error", Label).content)
        app.screen.query_one("#path-field", Input).value = "/dev/null"
        await pilot.press("enter")
        await pilot.pause()
        assert "character device" in str(app.screen.query_one("#path-error", Label).content)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ResultsScreen)


async def test_loading_other_data_clears_the_leaderboard_and_users_follow(
    tiny: tuple[Path, Path], other_tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    app = tiny_app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        from flowtui.core.flow.evaluate import Leaderboard

        app.state.leaderboard = Leaderboard(rows=[], n_targets=1, rounds=1)
        await pilot.press("5")
        await settle(app, pilot)
        users = app.screen.query_one("#user-list", DataTable)
        assert users.row_count == 40 and users.cursor_row == 0
        first = int(str(users.get_row_at(0)[0]))
        await pilot.press("enter")
        await settle(app, pilot)
        assert f"user {first}" in str(app.screen.query_one("#profile", Static).content)
        # load only a new train file: the old test file stays, and the screen says so
        await pilot.press("1")
        await pilot.pause()
        field = app.screen.query_one("#train-path", Input)
        field.value = str(other_tiny[0])
        field.focus()
        await pilot.press("enter")
        await settle(app, pilot)
        still = f"test file still {short_path(tiny[1])} (unchanged)"  # in full: two files are called test.csv
        assert still in str(app.screen.query_one("#load-status", Label).content)
        assert app.state.leaderboard is None
        await pilot.press("escape", "5")
        await settle(app, pilot)
        users = app.screen.query_one("#user-list", DataTable)
        assert users.row_count == 30
        profile = str(app.screen.query_one("#profile", Static).content)
        frame = app.state.train.frame  # type: ignore[union-attr]
        if (frame["user_id"] == first).any():
            assert (
                f"user {first}" in profile
                and f"{int((frame['user_id'] == first).sum()):,} listens" in profile
            )
        else:
            assert "Pick a user" in profile


# -- pickers and the new-user form ----------------------------------------------------------------------


async def test_pickers_fill_the_new_user_form_and_the_user_filters(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    from flowtui.core.data.catalog import artist_table

    app = tiny_app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("6", "a")
        await settle(app, pilot)
        picker = app.screen
        assert isinstance(picker, PickerDialog)
        listing = picker.query_one("#picker-list", TickList)
        table = artist_table(app.state.train.frame)  # type: ignore[union-attr]
        biggest = int(table["artist_id"].iloc[0])
        assert listing.option_count == len(table) and listing.highlighted == 0
        assert listing.get_option_at_index(0).value == biggest  # most played first
        await pilot.press("space")
        target = int(table["artist_id"].iloc[-1])
        await pilot.press(*str(target))  # digits search the ids
        await pilot.pause()
        shown = [listing.get_option_at_index(i).value for i in range(listing.option_count)]
        assert shown and all(str(a).startswith(str(target)) for a in shown)
        listing.highlighted = shown.index(target)
        await pilot.press("space", "enter")
        await pilot.pause()
        assert isinstance(app.screen, NewUserScreen)
        assert app.screen.query_one("#nu-artists", Input).value == f"{biggest}, {target}"

        # invalid ages are refused with a message
        age = app.screen.query_one("#nu-age", Input)
        age.value = "999"
        await pilot.pause()
        note = str(app.screen.query_one("#nu-note", Label).content)
        assert age.has_class("-invalid") and "age must be a whole number" in note
        age.value = ""
        await pilot.pause()
        assert not age.has_class("-invalid")

        await pilot.press("5", "g")
        await settle(app, pilot)
        assert isinstance(app.screen, PickerDialog) and app.screen.kind == "genre"
        await pilot.press("space", "enter")
        await pilot.pause()
        assert isinstance(app.screen, UsersScreen)
        assert app.screen.query_one("#genre-filter", Input).value != ""


async def test_parameter_errors_show_beside_the_field(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    app = tiny_app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        listing = app.screen.query_one("#model-list", TickList)
        listing.highlighted = listing.get_option_index("rbm")
        await pilot.pause()
        field = app.screen.query_one("#param-n_iter", Input)
        field.value = "-3"
        field.focus()
        await pilot.press("enter")
        error = app.screen.query_one("#error-n_iter", Label)
        assert error.display and "rbm.n_iter must be" in str(error.content)
        field.value = "3"
        await pilot.press("enter")
        assert not error.display
        rounds = app.screen.query_one("#opt-rounds", Input)
        rounds.value = "x"
        rounds.focus()
        await pilot.press("enter")
        options_error = app.screen.query_one("#options-error", Label)
        assert options_error.display and "rounds must be an integer" in str(options_error.content)


def test_call_abandonable_gives_up_after_the_grace() -> None:
    from flowtui.tui.helpers import Abandoned, call_abandonable

    quitting = threading.Event()
    assert call_abandonable(lambda: 3, quitting) == 3
    with pytest.raises(ZeroDivisionError):
        call_abandonable(lambda: 1 / 0, quitting)
    quitting.set()
    start = time.monotonic()
    with pytest.raises(Abandoned):
        call_abandonable(lambda: time.sleep(2), quitting, grace=0.2)
    assert time.monotonic() - start < 1.0


async def test_palette_recommends_for_a_user_switches_model_and_exports(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    from flowtui.core.data.io import load_dataset
    from flowtui.core.run import run
    from flowtui.core.run_config import RunConfig

    models = tmp_path / "models"
    frame = load_dataset(tiny[0], kind="train").frame
    fast = {"n_components": 16, "n_iter": 2, "batch_size": 64}
    run(
        frame,
        RunConfig(models=("rbm",), params={"rbm": fast}, baselines=False, holdout=False, models_dir=models),
    )
    app = tiny_app(tiny, models)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.state.rec_models == ["rbm"]
        await _palette(pilot, "Recommend with model rbm")
        assert app.state.rec_model == "rbm"

        await _palette(pilot, "Recommend for a user…")
        field = app.screen.query_one("#ask-field", Input)
        field.value = "99999"
        await pilot.press("enter")
        assert "not in the loaded data" in str(app.screen.query_one("#ask-error", Label).content)
        user = int(frame["user_id"].iloc[0])
        field.value = str(user)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, UsersScreen)
        assert f"user {user}" in str(app.screen.query_one("#profile", Static).content)
        assert app.screen.query_one("#recs", DataTable).row_count == 10

        await _palette(pilot, "Export recommendations…")
        assert isinstance(app.screen, PathDialog)
        out = app.state.out_dir / "recommendations_rbm.csv"
        assert app.screen.query_one("#path-field", Input).value == str(out)
        await pilot.press("enter")
        await settle(app, pilot)
        import pandas as pd

        written = pd.read_csv(out)
        assert list(written.columns) == ["user_id", "rank", "media_id", "artist_id", "genre_id", "score"]
        assert written["user_id"].nunique() == frame["user_id"].nunique()
        assert app.state.last_written == str(out)


async def test_ticks_follow_the_highlight_at_the_key_press(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """A fast "space, down, space" ticks two lines (Textual's SelectionList toggled the second one twice)."""
    app = tiny_app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        listing = app.screen.query_one("#model-list", TickList)
        listing.deselect_all()
        await pilot.pause()
        listing.highlighted = 0
        listing.action_tick()  # what space does; the next key comes before any message is handled
        listing.highlighted = 1
        listing.action_tick()
        await pilot.pause()
        assert app.state.selected == ["constant", "user_flow_rate"]

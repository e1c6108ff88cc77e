"""Pilot tests of the terminal app: the user's whole journey on tiny data, cancellation, errors, keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.clock import MockClock
from textual.widgets import DataTable, Input, SelectionList, Static

from flowtui.core.registry import get_spec
from flowtui.tui.app import FlowApp, make_app
from flowtui.tui.dialogs import PathDialog
from flowtui.tui.helpers import parse_ids, scan_models
from flowtui.tui.layout import PAGES
from flowtui.tui.messages import DataLoaded, LeaderboardReady, TrainingFinished
from flowtui.tui.screens.data import DataScreen
from flowtui.tui.screens.help import HelpScreen
from flowtui.tui.screens.models import ModelsScreen, parse_option
from flowtui.tui.screens.newuser import NewUserScreen
from flowtui.tui.screens.results import ResultsScreen
from flowtui.tui.screens.training import TrainingScreen
from flowtui.tui.screens.users import UsersScreen
from flowtui.tui.widgets.model_progress import ModelProgress

SIZE = (100, 30)
#: Small settings so the RBM trains in a second or two on the tiny data.
FAST_RBM = {"n_components": 16, "n_iter": 2, "batch_size": 64}


def _app(tiny: tuple[Path, Path], models: Path) -> FlowApp:
    return make_app(tiny[0], tiny[1], models, clock=MockClock(), device="CPU")


async def _settle(app: FlowApp, pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_whole_journey(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    models = tmp_path / "models"
    app = _app(tiny, models)
    messages: list[object] = []
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        # 1. the data screen loads the files on open and shows their summary
        await _settle(app, pilot)
        assert isinstance(app.screen, DataScreen)
        assert any(isinstance(m, DataLoaded) for m in messages)
        summary = app.screen.query_one("#summary", DataTable)
        figures = {summary.get_row_at(i)[0]: summary.get_row_at(i)[1] for i in range(summary.row_count)}
        assert figures["users"] == "40"
        assert app.state.test is not None and app.state.test.n_rows == 40

        # 2. the models screen lists every registered model; tick exactly two quick ones
        await pilot.press("2")
        await _settle(app, pilot)
        assert isinstance(app.screen, ModelsScreen)
        listing = app.screen.query_one("#model-list", SelectionList)
        from flowtui.core import registry

        assert listing.option_count == len(registry.model_names())
        listing.deselect_all()
        listing.select("logreg")
        listing.select("rbm")
        await pilot.pause()
        assert app.state.selected == ["logreg", "rbm"]
        assert app.state.preset == "quick"
        app.state.params["rbm"] = dict(FAST_RBM)

        # 3. `t` trains them on the training screen; both are saved where `flowtui predict` looks
        await pilot.press("t")
        await _settle(app, pilot)
        assert isinstance(app.screen, TrainingScreen)
        finished = [m for m in messages if isinstance(m, TrainingFinished)]
        assert finished and finished[-1].cancelled == []
        assert set(app.state.saved) == {"logreg", "rbm"}
        for name in ("logreg", "rbm"):
            assert (models / name / "meta.json").is_file()
        rows = {r.model: r for r in app.screen.query(ModelProgress)}
        assert rows["logreg"].has_class("-done") and rows["rbm"].has_class("-done")
        assert {"constant", "user_flow_rate"} <= set(rows)  # the baselines run beside them

        # 4. the leaderboard shows both models and the baselines
        await pilot.press("4")
        await pilot.pause()
        assert isinstance(app.screen, ResultsScreen)
        board = app.screen.query_one("#leaderboard", DataTable)
        names = [str(board.get_row_at(i)[1]).split()[0] for i in range(board.row_count)]
        assert set(names) == {"logreg", "rbm", "constant", "user_flow_rate"}
        aucs = [float(board.get_row_at(i)[2]) for i in range(board.row_count)]
        assert aucs == sorted(aucs, reverse=True)

        # ... and writes a submission for the loaded test file with the highlighted model, asking where
        board.move_cursor(row=names.index("logreg"))
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, PathDialog)
        sub = app.state.out_dir / "submission_logreg.csv"
        assert app.screen.query_one("#path-field", Input).value == str(sub)  # a sensible default
        await pilot.press("enter")
        await _settle(app, pilot)
        assert sub.is_file()
        import pandas as pd

        written = pd.read_csv(sub)
        assert list(written.columns) == ["sample_id", "is_listened"] and len(written) == 40
        assert app.state.last_written == str(sub)  # the status line keeps the path in view

        # 5. the user browser: open the most active user, see profile, history and recommendations
        await pilot.press("5")
        await pilot.pause()
        assert isinstance(app.screen, UsersScreen)
        users = app.screen.query_one("#user-list", DataTable)
        assert users.row_count == 40
        top_user = int(str(users.get_row_at(0)[0]))
        await pilot.press("enter")
        await _settle(app, pilot)
        profile = str(app.screen.query_one("#profile", Static).content)
        assert f"user {top_user}" in profile and "on Flow" in profile
        assert "test row: predicted listen probability" in profile
        assert app.screen.query_one("#history", DataTable).row_count == 8
        recs = app.screen.query_one("#recs", DataTable)
        assert recs.row_count == 10
        scores = [float(recs.get_row_at(i)[4]) for i in range(recs.row_count)]
        assert scores == sorted(scores, reverse=True)

        # a genre filter keeps only that genre
        genre = str(recs.get_row_at(0)[3])
        app.screen.query_one("#genre-filter", Input).value = genre
        app.screen.query_one("#genre-filter", Input).focus()
        await pilot.press("enter")
        await _settle(app, pilot)
        assert recs.row_count > 0
        assert {str(recs.get_row_at(i)[3]) for i in range(recs.row_count)} == {genre}

        # 6. the new-user form answers at once from the stated tastes
        await pilot.press("escape", "6")
        await pilot.pause()
        assert isinstance(app.screen, NewUserScreen)
        app.screen.query_one("#nu-genres", Input).value = genre
        await _settle(app, pilot)
        new_recs = app.screen.query_one("#nu-recs", DataTable)
        assert new_recs.row_count == 10
        assert f"genres [{genre}]" in str(app.screen.query_one("#nu-note").content)


def _slow_evaluate(
    frame: object, names: list[str], *args: object, on_event=None, cancel=None, **kwargs: object
) -> None:  # type: ignore[no-untyped-def]
    """Stands in for `holdout_leaderboard`: epochs tick until the cancel event is set (10 s at most)."""
    from flowtui.core import events as ev

    for name in names:
        ev.emit(on_event, ev.BeforeFit(name, n_epochs=100))
        for i in range(1, 1000):
            if cancel.wait(0.01):
                ev.emit(on_event, ev.AfterFit(name, 0.0, cancelled=True))
                raise ev.Cancelled("cancelled by the user")
            ev.emit(on_event, ev.AfterEpoch(name, min(i, 100), 100, loss=1.0 / i))
    raise AssertionError("the app never set the cancel event")


async def test_cancel_training_and_keys_while_it_runs(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowtui.core import run

    real_evaluate = run.holdout_leaderboard
    monkeypatch.setattr(run, "holdout_leaderboard", _slow_evaluate)
    models = tmp_path / "models"
    app = _app(tiny, models)
    messages: list[object] = []
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await _settle(app, pilot)
        app.state.selected = ["logreg", "lightgbm"]
        await pilot.press("3", "t")
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        assert screen.running
        # The UI answers keys while the worker trains: switch screens, open help, come back.
        await pilot.press("4")
        assert isinstance(app.screen, ResultsScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "3")
        assert app.screen is screen
        assert screen.running
        await pilot.press("c")
        await _settle(app, pilot)
        finished = [m for m in messages if isinstance(m, TrainingFinished)]
        assert finished, "the run must end with a TrainingFinished message"
        assert not screen.running
        assert finished[-1].cancelled == ["logreg", "lightgbm"] and finished[-1].saved == {}
        assert app.state.leaderboard is None
        assert "cancelled" in str(screen.query_one("#train-status").content)
        assert not models.exists(), "a cancelled run must leave nothing in the models folder"
        statuses = {r.model: r.has_class("-cancelled") for r in screen.query(ModelProgress)}
        assert statuses["logreg"] and statuses["lightgbm"]
        assert not any(isinstance(m, LeaderboardReady) for m in messages)

        # A second run after the cancel starts cleanly (the real engine, one baseline: fast).
        monkeypatch.setattr(run, "holdout_leaderboard", real_evaluate)
        app.state.selected = ["constant"]
        await pilot.press("t")
        await _settle(app, pilot)
        assert [m for m in messages if isinstance(m, TrainingFinished)][-1].saved.keys() == {"constant"}
        await pilot.pause()
        assert sorted(r.model for r in screen.query(ModelProgress)) == ["constant", "user_flow_rate"]


async def test_bad_file_shows_its_error_and_the_app_stays_usable(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("genre_id,ts_listen\n1,2\n")
    app = _app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        good_rows = app.state.train.n_rows
        field = app.screen.query_one("#train-path", Input)
        field.value = str(bad)
        field.focus()
        await pilot.press("enter")
        await _settle(app, pilot)
        error = app.screen.query_one("#data-error", Static)
        assert error.display
        assert "bad.csv:1" in str(error.content) and "found genre_id, ts_listen" in str(error.content)
        assert app.state.train.n_rows == good_rows  # the previous data set is kept
        # still usable: keys work, another load succeeds and hides the error
        await pilot.press("escape", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        field.value = str(tiny[0])
        field.focus()
        await pilot.press("enter")
        await _settle(app, pilot)
        assert not app.screen.query_one("#data-error").display


async def test_help_lists_every_screen_key_and_palette_switches(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    from flowtui.tui.screens.help import key_table

    table = key_table(FlowApp.BINDINGS, PAGES)
    keys = [str(c) for c in table.columns[0]._cells]
    descriptions = [str(c) for c in table.columns[1]._cells]
    for key in ("1", "6", "ctrl+l", "t", "c", "s", "/", "p", "ctrl+q"):
        assert key in keys, key
    assert "Cancel all" in descriptions and "Cancel model" in descriptions and "Submission" in descriptions
    app = _app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Go to Results")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ResultsScreen)


async def test_model_form_edits_parameters(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    app = _app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        await pilot.press("2")
        await _settle(app, pilot)
        listing = app.screen.query_one("#model-list", SelectionList)
        listing.highlighted = listing.get_option_index("rbm")
        await pilot.pause()
        field = app.screen.query_one("#param-n_iter", Input)
        quick = get_spec("rbm").params(preset="quick")["n_iter"]
        assert field.value == str(quick)  # the form shows the quick preset's value
        edited = quick + 2
        field.value = str(edited)
        field.focus()
        await pilot.press("enter")
        assert app.state.params["rbm"] == {"n_iter": edited}
        field.value = "three"
        field.focus()  # enter left the field (issue 20 item 16)
        await pilot.press("enter")
        assert field.has_class("-invalid") and app.state.params["rbm"] == {"n_iter": edited}
        await pilot.press("escape", "p")
        assert app.state.preset == "full"


def test_parsers() -> None:
    assert parse_option("rounds", "3") == 3
    assert parse_option("top_k", "") is None
    assert parse_option("target_contexts", "1, 5,20") == (1, 5, 20)
    assert parse_option("flow_only", "yes") is True
    with pytest.raises(ValueError, match="rounds must be an integer"):
        parse_option("rounds", "x")
    assert parse_ids("3, 17 42") == [3, 17, 42]
    with pytest.raises(ValueError, match="'x'"):
        parse_ids("3 x")


def test_cli_opens_the_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import flowtui.cli.tui_cmd as tui_cmd
    from flowtui.cli import app as cli

    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(tui_cmd, "open_app", lambda *args: calls.append(args))
    runner = CliRunner()
    assert runner.invoke(cli, []).exit_code == 0
    result = runner.invoke(cli, ["tui", "--data", "a.csv", "--test", "b.csv", "--models", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert calls == [(), (Path("a.csv"), Path("b.csv"), tmp_path)]
    help_text = runner.invoke(cli, ["tui", "--help"]).output
    assert "--data" in help_text and "--models" in help_text


def test_app_import_is_light() -> None:
    """The first frame must not wait for torch, scikit-learn or LightGBM."""
    import subprocess
    import sys

    code = (
        "import sys, flowtui.tui.app as a; a.make_app();"
        "print(','.join(m for m in ('torch', 'sklearn', 'lightgbm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


async def test_user_search_filters_the_list(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    app = _app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        await pilot.press("5")
        await _settle(app, pilot)
        users = app.screen.query_one("#user-list", DataTable)
        assert users.row_count == 40
        await pilot.press("slash", "1")
        await pilot.pause()
        shown = [str(users.get_row_at(i)[0]) for i in range(users.row_count)]
        assert shown and all(u.startswith("1") for u in shown)
        assert len(shown) == 11  # 1 and 10-19 among users 0-39


async def test_a_failing_worker_becomes_a_notification(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowtui.core import run

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(run, "holdout_leaderboard", broken)
    app = _app(tiny, tmp_path / "models")
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        app.state.selected = ["logreg"]
        await pilot.press("3", "t")
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, TrainingScreen) and not screen.running
        assert any("disk on fire" in n.message and n.severity == "error" for n in app._notifications)
        assert "failed" in str(screen.query_one("#train-status").content)
        await pilot.press("4")  # the app is still usable
        assert isinstance(app.screen, ResultsScreen)


def test_scan_models_ranks_saved_models(tmp_path: Path) -> None:
    for name in ("logreg", "rbm", "lightgbm"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "meta.json").write_text("{}")
    (tmp_path / "broken").mkdir()
    import flowtui.core.flow.store as store

    metas = {"logreg": 0.61, "rbm": 0.66, "lightgbm": 0.70}

    def fake_meta(folder: Path) -> dict[str, object]:
        if folder.name == "broken":
            raise store.ModelFileError(folder, "missing meta.json")
        return {"model": folder.name, "holdout": {"auc": metas[folder.name]}}

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store, "read_meta", fake_meta)
        recommenders, predictors = scan_models(tmp_path)
    assert recommenders == ["rbm"]
    assert predictors == ["lightgbm", "rbm", "logreg"]
    assert scan_models(tmp_path / "absent") == ([], [])

"""SVG snapshots of every screen at 100x30 and 80x24 (pytest-textual-snapshot). Content is deterministic: a
fixed tiny data set under relative paths, a MockClock for progress bars, the device given ("CPU"), an empty
config folder (tests/tui/conftest.py), and hand-made engine events and leaderboards where real training
times would vary. Update with `pytest tests/tui/test_tui_snapshots.py --snapshot-update` after checking
the new SVGs by eye."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from textual.clock import MockClock
from textual.pilot import Pilot

from flowtui.core import events as ev
from flowtui.tui.app import FlowApp, make_app
from flowtui.tui.messages import EngineEvent

SIZE = (100, 30)
#: Both sizes the app is checked at: a roomy terminal and the smallest supported one.
SIZES = pytest.mark.parametrize("size", [(100, 30), (80, 24)], ids=["100x30", "80x24"])


def write_tiny(folder: Path, n_users: int = 30, seed: int = 7) -> None:
    """A small DSG17-shaped train/test pair from a fixed seed, independent of the generator's evolution."""
    rng = np.random.default_rng(seed)
    per_user = rng.integers(5, 120, n_users)
    user = np.repeat(np.arange(n_users), per_user)
    n = len(user)
    media = rng.integers(0, 300, n)
    start = 1_478_000_000 + rng.integers(0, 20 * 86_400, n_users)
    ts = start[user] + np.concatenate([np.sort(rng.integers(0, 9 * 86_400, k)) for k in per_user])
    flow = (rng.random(n) < 0.3).astype(np.int8)
    age = rng.integers(18, 31, n_users)
    gender = rng.integers(0, 2, n_users)
    train = pd.DataFrame(
        {
            "genre_id": media % 7,
            "ts_listen": ts,
            "media_id": 1000 + media,
            "album_id": 500 + media // 3,
            "context_type": np.where(flow == 1, 1, rng.integers(0, 6, n)),
            "release_date": 20100101 + (media % 6) * 10000,
            "platform_name": rng.integers(0, 3, n),
            "platform_family": rng.integers(0, 3, n),
            "media_duration": 150 + media % 120,
            "listen_type": flow,
            "user_gender": gender[user],
            "user_id": user,
            "artist_id": 200 + media // 10,
            "user_age": age[user],
            "is_listened": (rng.random(n) < 0.55 + 0.3 * (media % 3 == 0)).astype(np.int8),
        }
    )
    last = train.groupby("user_id").tail(1).reset_index(drop=True)
    test = last.drop(columns="is_listened").assign(ts_listen=last["ts_listen"] + 3600, listen_type=1)
    test.insert(0, "sample_id", np.arange(len(test)))
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FlowApp:
    """The app on a fixed tiny data set, by relative paths so the snapshots do not depend on the folder."""
    write_tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    return make_app(Path("train.csv"), Path("test.csv"), Path("models"), clock=MockClock(), device="CPU")


async def _loaded(pilot: Pilot) -> None:
    """Wait for the workers, drop the toasts, and let layout settle."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    pilot.app.clear_notifications()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


@SIZES
def test_data_loaded(snap_compare, app: FlowApp, size: tuple[int, int]) -> None:
    assert snap_compare(app, terminal_size=size, run_before=_loaded)


def test_data_charts_scrolled(snap_compare, app: FlowApp) -> None:
    """The rest of the charts: context bars (their order said) and rows per user with named axes."""

    async def run_before(pilot: Pilot) -> None:
        await _loaded(pilot)
        pilot.app.screen.query_one("#dists").scroll_end(animate=False)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_data_error(snap_compare, app: FlowApp) -> None:
    async def run_before(pilot: Pilot) -> None:
        await _loaded(pilot)
        field = pilot.app.screen.query_one("#train-path")
        field.value = "missing.csv"  # type: ignore[attr-defined]
        field.focus()
        await pilot.press("enter")
        await _loaded(pilot)
        await pilot.press("escape")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@SIZES
def test_models_default(snap_compare, app: FlowApp, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await _loaded(pilot)
        await pilot.press("2")
        await _loaded(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_models_param_error(snap_compare, app: FlowApp) -> None:
    """A refused parameter: one plain sentence under its field."""

    async def run_before(pilot: Pilot) -> None:
        await _loaded(pilot)
        await pilot.press("2")
        await _loaded(pilot)
        listing = pilot.app.screen.query_one("#model-list")
        listing.highlighted = listing.get_option_index("rbm")  # type: ignore[attr-defined]
        await pilot.pause()
        field = pilot.app.screen.query_one("#param-n_iter")
        field.cursor_blink = False  # type: ignore[attr-defined]  # the refused field keeps the focus, and a
        field.value = "-3"  # type: ignore[attr-defined]  # blinking cursor made this picture flaky in CI
        field.focus()
        await pilot.press("enter")
        await _loaded(pilot)
        field.cursor_position = len(field.value)  # type: ignore[attr-defined]
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@SIZES
def test_training_progress(snap_compare, app: FlowApp, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await _loaded(pilot)
        await pilot.press("3")
        await pilot.pause()
        screen = pilot.app.screen
        screen.prepare_rows(["constant", "user_flow_rate", "logreg", "lightgbm"])  # type: ignore[attr-defined]
        await pilot.pause()
        events: list[tuple[ev.Event, str]] = [
            (ev.BeforeFit("constant", None), "holdout"),
            (ev.AfterFit("constant", 0.0), "holdout"),
            (ev.BeforeFit("user_flow_rate", None), "holdout"),
            (ev.AfterFit("user_flow_rate", 0.1), "holdout"),
            (ev.BeforeFit("logreg", None), "holdout"),
            (ev.AfterFit("logreg", 1.2), "holdout"),
            (ev.BeforeFit("lightgbm", 40), "holdout"),
        ]
        for i in range(1, 25):
            events.append((ev.AfterEpoch("lightgbm", i, 40, metric=0.70 + 0.05 * (1 - 0.9**i)), "holdout"))
        events.append((ev.Log("logreg: trained on a sample of 50,000 rows", "warning"), "holdout"))
        for e, phase in events:
            screen.on_engine_event(EngineEvent(e, phase))  # type: ignore[attr-defined]
        screen.draw_chart()  # type: ignore[attr-defined]
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def _board() -> object:
    from flowtui.core.flow.evaluate import Leaderboard, LeaderboardRow

    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.6).astype(np.int8)
    noise = rng.random(400)
    preds = {
        "lightgbm": (y, 0.55 * y + 0.45 * noise),
        "logreg": (y, 0.4 * y + 0.6 * noise),
        "user_flow_rate": (y, 0.2 * y + 0.8 * noise),
        "constant": (y, np.full(400, 0.6)),
    }
    rows = [
        LeaderboardRow("lightgbm", 0.7412, 0.5901, 0.6925, 3.21, 0.05),
        LeaderboardRow("logreg", 0.7023, 0.6120, 0.6650, 0.84, 0.01),
        LeaderboardRow("user_flow_rate", 0.6531, 0.6470, 0.6300, 0.01, 0.00, baseline=True),
        LeaderboardRow("constant", 0.5000, 0.6731, 0.6000, 0.00, 0.00, baseline=True),
    ]
    imps = pd.Series({"user_flow_rate": 40.0, "te_media": 25.0, "hour": 12.0, "platform_family": 8.0})
    return Leaderboard(rows=rows, predictions=preds, importances={"lightgbm": imps}, n_targets=400, rounds=1)


@SIZES
def test_results_leaderboard(snap_compare, app: FlowApp, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await _loaded(pilot)
        pilot.app.state.leaderboard = _board()  # type: ignore[attr-defined]
        await pilot.press("4")
        await _loaded(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_submission_overwrite_question(snap_compare, app: FlowApp) -> None:
    """`s` asks for the file (a default beside the models folder); an existing one needs a yes."""

    async def run_before(pilot: Pilot) -> None:
        await _loaded(pilot)
        pilot.app.state.leaderboard = _board()  # type: ignore[attr-defined]
        pilot.app.state.saved["lightgbm"] = Path("models/lightgbm")  # type: ignore[attr-defined]
        Path("sub.csv").write_text("sample_id,is_listened\n")
        os.utime("sub.csv", (1_480_000_000, 1_480_000_000))  # the question shows the file's time
        await pilot.press("4")
        await _loaded(pilot)
        await pilot.press("s")
        await pilot.pause()
        pilot.app.screen.query_one("#path-field").value = "sub.csv"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@SIZES
def test_users_open(snap_compare, app: FlowApp, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await _loaded(pilot)
        await pilot.press("5")
        await pilot.pause()
        await pilot.press("enter")
        await _loaded(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_newuser_form(snap_compare, app: FlowApp, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await _loaded(pilot)
        await pilot.press("6")
        await pilot.pause()
        pilot.app.screen.query_one("#nu-artists").value = "12, 408"  # type: ignore[attr-defined]
        await _loaded(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_artist_picker(snap_compare, app: FlowApp, size: tuple[int, int]) -> None:
    """The New user screen's artist list: ids with their size and main genre, searchable, ticks as [x]."""

    async def run_before(pilot: Pilot) -> None:
        await _loaded(pilot)
        await pilot.press("6", "a")
        await _loaded(pilot)
        await pilot.press("space", "down", "down", "space", "2")
        await _loaded(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_help_keys(snap_compare, app: FlowApp) -> None:
    async def run_before(pilot: Pilot) -> None:
        await _loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def _rec_board() -> object:
    """A hand-made recommendation leaderboard (real fit times would vary)."""
    from flowtui.core.recs.evaluation import Leaderboard

    def row(model: str, ndcg: float, sd: float, auc: float | None, fit: float) -> dict[str, object]:
        seeds = [{"ndcg_at_k": ndcg - sd, "n_users": 30}, {"ndcg_at_k": ndcg + sd, "n_users": 30}]
        return {
            "model": model,
            "precision_at_k": ndcg * 0.8,
            "recall_at_k": ndcg * 0.45,
            "ndcg_at_k": ndcg,
            "ndcg_at_k_std": sd,
            "ndcg_at_k_vs_best": ndcg - 0.194,
            "ndcg_at_k_vs_best_std": 0.01 if model != "ease" else 0.0,
            "auc": auc,
            "auc_std": 0.012 if auc is not None else None,
            "mae": 0.435 if model in ("rbm", "dbn") else None,
            "coverage": 0.06,
            "fit_seconds": fit,
            "per_seed": seeds,
        }

    setup = {
        "k": 10, "seeds": [0, 1, 2], "fraction": 0.2, "holdout": "random", "validation": False,
        "preset": "quick", "implicit": False, "n_users": 30, "n_items": 300, "n_entries": 1800,
        "data": {"source": "train.csv (1,766 rows, fingerprint 1766:0123456789abcdef)"},
    }  # fmt: skip
    rows = [
        row("ease", 0.194, 0.022, 0.515, 5.1),
        row("item_knn", 0.150, 0.012, 0.506, 0.5),
        row("popularity", 0.132, 0.006, 0.489, 0.0),
        row("rbm", 0.093, 0.001, 0.616, 2.7),
    ]
    return Leaderboard(setup=setup, rows=rows, skipped={})


@SIZES
def test_recs_leaderboard(snap_compare, app: FlowApp, size: tuple[int, int]) -> None:
    """Screen 7: the recommendation leaderboard (mean±std over seeds), the recommenders, the saved ones."""

    from flowtui.core.data.io import load_dataset
    from flowtui.core.modelfiles import fingerprint as data_fingerprint
    from flowtui.core.modelfiles.data_match import describe_data
    from flowtui.core.recs.store import save_recommender, train_recommender

    async def run_before(pilot: Pilot) -> None:
        frame = load_dataset(Path("train.csv"), kind="train").frame
        fp = data_fingerprint(frame)
        rec = train_recommender(frame, "popularity", None, "quick")
        save_recommender(
            rec, Path("models/recs/popularity"), data=describe_data(frame, fp, source="train.csv")
        )
        await _loaded(pilot)
        pilot.app.state.rec_board = _rec_board()  # type: ignore[attr-defined]
        await pilot.press("7")
        await _loaded(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_other_data_question(snap_compare, app: FlowApp) -> None:
    """A recommender trained on other data is used on screen 5 only after a yes; the question names both."""
    from flowtui.core.data.io import load_dataset
    from flowtui.core.modelfiles import fingerprint as data_fingerprint
    from flowtui.core.modelfiles.data_match import DataDescription, IdSketch
    from flowtui.core.recs.store import save_recommender, train_recommender

    async def run_before(pilot: Pilot) -> None:
        Path("other").mkdir()
        write_tiny(Path("other"), n_users=20, seed=3)
        frame = load_dataset(Path("other/train.csv"), kind="train").frame
        fp = data_fingerprint(frame)
        users, items = IdSketch.of(frame["user_id"].to_numpy()), IdSketch.of(frame["media_id"].to_numpy())
        rec = train_recommender(frame, "popularity", None, "quick")
        data = DataDescription("other/train.csv", len(frame), fp, users, items)
        save_recommender(rec, Path("models/recs/popularity"), fingerprint=fp, data=data)
        await _loaded(pilot)
        await pilot.press("5")
        await pilot.pause()
        await pilot.press("enter")
        await _loaded(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)

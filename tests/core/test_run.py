"""One run: holdout leaderboard, final fits and saving; and submissions from a trained model."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flowtui.core import events as ev
from flowtui.core.data.schema import TEST_COLUMNS
from flowtui.core.errors import DataError, ParamError
from flowtui.core.flow.evaluate import RECORD_KEYS, Leaderboard, predict
from flowtui.core.flow.store import TrainedModel, load_model
from flowtui.core.run import run
from flowtui.core.run_config import RunConfig
from tests.flow.test_classifiers import make_frame


def make_test(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One later Flow row per user, sample ids in shuffled order (as a real test file may have)."""
    rng = np.random.default_rng(seed)
    test = frame.groupby("user_id").tail(1).copy()
    test["ts_listen"] += 3600
    test["listen_type"] = 1
    test = test.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    test["sample_id"] = rng.permutation(len(test)).astype(np.int32)
    return test[list(TEST_COLUMNS)]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(effect=0.4)


def evaluate(frame: pd.DataFrame, names: list[str], **options: object) -> Leaderboard:
    board = run(frame, RunConfig(models=tuple(names), **options)).leaderboard  # type: ignore[arg-type]
    assert board is not None
    return board


def train_model(name: str, frame: pd.DataFrame, folder: Path, **options: object) -> TrainedModel:
    result = run(frame, RunConfig(models=(name,), baselines=False, models_dir=folder, **options))  # type: ignore[arg-type]
    assert not result.failed and result.saved[name] == folder / name
    return result.trained[name]


def test_leaderboard_sorted_with_baselines(frame: pd.DataFrame) -> None:
    board = evaluate(frame, ["logreg", "decision_tree"], preset="quick")
    names = [r.model for r in board.rows]
    assert set(names) == {"constant", "user_flow_rate", "logreg", "decision_tree"}
    aucs = [r.auc for r in board.rows]
    assert all(a is not None for a in aucs)
    assert aucs == sorted(aucs, reverse=True)  # type: ignore[type-var]
    assert board.row("constant").auc == pytest.approx(0.5)
    assert board.n_targets == frame["user_id"].nunique()
    records = board.to_records()
    assert all(tuple(r) == RECORD_KEYS for r in records)
    y, p = board.predictions["logreg"]
    assert len(y) == len(p) == board.n_targets
    assert "decision_tree" in board.importances
    assert board.leak_warning is None


def test_leak_warning_fires_on_a_planted_leak(frame: pd.DataFrame) -> None:
    leaky = frame.copy()
    leaky["media_duration"] = (100 + 200 * leaky["is_listened"].astype(int)).astype(
        leaky["media_duration"].dtype
    )
    board = evaluate(leaky, ["decision_tree"], preset="quick")
    assert board.row("decision_tree").auc > 0.95  # type: ignore[operator]
    assert board.leak_warning is not None and "decision_tree" in board.leak_warning
    assert "leak" in board.leak_warning


def test_failing_model_gets_a_failed_row_and_no_final_fit(frame: pd.DataFrame, tmp_path: Path) -> None:
    # more neighbours than training rows: a valid parameter that fails inside the fit
    config = RunConfig(
        models=("knn", "decision_tree"),
        params={"knn": {"n_neighbors": 5000, "max_rows": 100}},
        preset="quick",
        models_dir=tmp_path,
    )
    result = run(frame, config)
    board = result.leaderboard
    assert board is not None
    row = board.row("knn")
    assert row.failed and row.auc is None and row.error
    assert board.rows[-1].model == "knn"
    assert board.row("decision_tree").auc is not None
    assert board.to_records()[-1]["auc"] is None
    assert set(result.failed) == {"knn"} and set(result.saved) == {"decision_tree"}
    assert not (tmp_path / "knn").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"params": {"logreg": {"C": -1.0}}}, "logreg.C must be a number > 0"),
        (
            {"params": {"rbm": {"n_components": "1e12"}}, "models": ("rbm",)},
            "rbm.n_components must be an integer",
        ),
        ({"params": {"lightgbm": {"num_leaves": 0}}, "models": ("lightgbm",)}, "lightgbm.num_leaves"),
        ({"params": {"logreg": {"depth": 3}}}, "unknown parameter 'depth'"),
        ({"params": {"lightgbm": {"n_estimators": 1}}}, "does not train"),
        ({"rounds": 0}, "rounds must be"),
        ({"rounds": 100_000}, "rounds must be"),
        ({"smoothing": -1.0}, "smoothing must be"),
        ({"top_k": 0}, "top_k must be"),
        ({"preset": "fast"}, "preset must be"),
        ({"models": ("no_such_model",)}, "unknown model"),
    ],
)
def test_bad_settings_are_refused_before_any_work(
    frame: pd.DataFrame, options: dict[str, Any], message: str
) -> None:
    config = RunConfig(**{"models": ("logreg",), **options})
    with pytest.raises(ParamError, match=message):
        config.validate()
    with pytest.raises(ParamError, match=message):
        run(frame.iloc[:0], config)  # refused before the (empty) data is touched


def test_cancel_propagates(frame: pd.DataFrame) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ev.Cancelled):
        run(frame, RunConfig(models=("logreg",), preset="quick"), cancel=cancel)


def test_rounds_pool_more_targets(frame: pd.DataFrame) -> None:
    one = evaluate(frame, ["constant"], baselines=False)
    two = evaluate(frame, ["constant"], rounds=2, baselines=False)
    assert two.rounds == 2 and two.n_targets > one.n_targets
    assert [r.model for r in one.rows] == ["constant"]


def test_rounds_are_bounded_by_the_data(frame: pd.DataFrame, tmp_path: Path) -> None:
    """More rounds than any user has Flow rows to peel off are refused (not silently cut), naming the
    bound and the data; for train too, before anything is fitted or saved."""
    from flowtui.core.flow import split

    most = len(split.holdout(frame, rounds=50))
    assert 1 < most < 50
    assert evaluate(frame, ["constant"], rounds=most, baselines=False).rounds == most
    named = frame.copy()
    named.attrs["source"] = "five-users.csv"
    for options in ({}, {"models_dir": tmp_path / "m"}):
        config = RunConfig(models=("constant",), rounds=most + 1, baselines=False, **options)  # type: ignore[arg-type]
        with pytest.raises(
            ParamError, match=rf"rounds must be at most {most} for five-users.csv, got {most + 1}"
        ):
            run(named, config)
    assert not (tmp_path / "m").exists()


def test_top_k_trains_on_the_selected_features(frame: pd.DataFrame) -> None:
    board = evaluate(frame, ["decision_tree"], preset="quick", top_k=3)
    assert board.selected_features is not None and len(board.selected_features) == 3
    assert set(board.importances["decision_tree"].index) == set(board.selected_features)
    assert board.row("user_flow_rate").auc is not None  # baselines keep their own column


def test_train_saves_what_the_holdout_scored(frame: pd.DataFrame, tmp_path: Path) -> None:
    events: list[ev.Event] = []
    config = RunConfig(models=("logreg", "lightgbm"), preset="quick", baselines=False, models_dir=tmp_path)
    result = run(frame, config, on_event=events.append)
    assert result.leaderboard is not None and set(result.saved) == {"logreg", "lightgbm"}
    stages = [e.stage for e in events if isinstance(e, ev.Stage)]
    assert stages == ["holdout", "final", "done"]
    assert {e.model for e in events if isinstance(e, ev.Saved)} == {"logreg", "lightgbm"}
    for name, folder in result.saved.items():
        back = load_model(folder)
        assert back.holdout["auc"] == result.leaderboard.row(name).auc
        assert back.params == result.trained[name].params
        assert back.params["max_rows"] == 50_000 if name == "logreg" else True  # the quick preset was saved


def test_no_flow_row_to_hold_out(frame: pd.DataFrame, tmp_path: Path) -> None:
    no_flow = frame.assign(listen_type=0)
    with pytest.raises(DataError, match="nothing to hold out"):
        run(no_flow, RunConfig(models=("logreg",), preset="quick"))
    result = run(no_flow, RunConfig(models=("logreg",), preset="quick", models_dir=tmp_path))
    assert result.leaderboard is None and set(result.saved) == {"logreg"}  # trains without holdout scores


def test_train_then_predict_keeps_test_ids_and_order(frame: pd.DataFrame, tmp_path: Path) -> None:
    trained = train_model("lightgbm", frame, tmp_path, preset="quick")
    assert trained.holdout["n"] == frame["user_id"].nunique()
    assert 0.0 <= trained.holdout["auc"] <= 1.0
    assert trained.fingerprint.startswith(f"{len(frame)}:")
    test = make_test(frame)
    sub = predict(trained, frame, test)
    assert list(sub.columns) == ["sample_id", "is_listened"]
    assert len(sub) == len(test)
    np.testing.assert_array_equal(sub["sample_id"].to_numpy(), test["sample_id"].to_numpy())
    assert sub["is_listened"].between(0, 1).all()
    # one row's prediction does not depend on where it sits in the file
    rev = predict(trained, frame, test.iloc[::-1])
    np.testing.assert_allclose(rev["is_listened"].to_numpy()[::-1], sub["is_listened"].to_numpy())


def test_cancel_one_model_lets_the_others_finish(frame: pd.DataFrame, tmp_path: Path) -> None:
    stop_logreg = threading.Event()
    stop_logreg.set()
    config = RunConfig(models=("logreg", "decision_tree"), preset="quick", models_dir=tmp_path)
    result = run(frame, config, model_cancel={"logreg": stop_logreg})
    assert result.failed == {"logreg": "cancelled by the user"}
    assert set(result.saved) == {"decision_tree"} and not (tmp_path / "logreg").exists()
    assert result.leaderboard is not None and result.leaderboard.row("logreg").failed
    assert result.leaderboard.row("decision_tree").auc is not None


def test_run_reads_its_rows_through_a_run_data(frame: pd.DataFrame, tmp_path: Path) -> None:
    """`run` over a `RunData` (here the frame's own `FrameData`, counting what the loop asks of it) gives
    the very leaderboard of the frame; the loop asks for each round once and the final rows once."""
    from flowtui.core.flow.evaluate import FrameData

    asked: list[str] = []

    class Counting(FrameData):
        def holdout_round(self, r, *args, **kw):  # type: ignore[no-untyped-def]
            asked.append(f"round {r}")
            return super().holdout_round(r, *args, **kw)

        def final_rows(self, *args, **kw):  # type: ignore[no-untyped-def]
            asked.append("final")
            return super().final_rows(*args, **kw)

    cfg = RunConfig(models=("logreg",), preset="quick", rounds=2, models_dir=tmp_path / "m")
    plain = run(frame, RunConfig(models=("logreg",), preset="quick", rounds=2)).leaderboard
    result = run(Counting(frame), cfg)
    assert plain is not None and result.leaderboard is not None
    assert result.leaderboard.to_records()[0]["auc"] == plain.to_records()[0]["auc"]
    for name in ("logreg", "user_flow_rate"):
        np.testing.assert_array_equal(result.leaderboard.predictions[name][1], plain.predictions[name][1])
    assert asked == ["round 0", "round 1", "final"] and set(result.saved) == {"logreg"}


def test_an_inline_executor_can_let_an_error_stop_the_run() -> None:
    """`InlineExecutor(propagate=...)`: those errors stop the map (a cluster's DataError); others are outcomes."""
    from flowtui.core.executor import InlineExecutor

    def task(x: int) -> int:
        if x == 1:
            raise ValueError("one")
        if x == 2:
            raise DataError(None, "two")
        return x

    outcomes = InlineExecutor().map(task, [0, 1, 2])
    assert outcomes[0] == 0 and isinstance(outcomes[1], ValueError) and isinstance(outcomes[2], DataError)
    with pytest.raises(DataError, match="two"):
        InlineExecutor(propagate=(DataError,)).map(task, [0, 1, 2])

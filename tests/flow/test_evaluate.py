"""Holdout leaderboard, training on all rows, and submissions."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from flowtui.core import events as ev
from flowtui.core.data.schema import TEST_COLUMNS
from flowtui.core.flow.evaluate import RECORD_KEYS, evaluate, predict, train_model
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


def test_failing_model_gets_a_failed_row(frame: pd.DataFrame) -> None:
    board = evaluate(frame, ["logreg", "decision_tree"], params={"logreg": {"C": -1.0}}, preset="quick")
    row = board.row("logreg")
    assert row.failed and row.auc is None and row.error
    assert board.rows[-1].model == "logreg"
    assert board.row("decision_tree").auc is not None
    assert board.to_records()[-1]["auc"] is None


def test_cancel_propagates(frame: pd.DataFrame) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ev.Cancelled):
        evaluate(frame, ["logreg"], preset="quick", cancel=cancel)


def test_rounds_pool_more_targets(frame: pd.DataFrame) -> None:
    one = evaluate(frame, ["constant"], baselines=False)
    two = evaluate(frame, ["constant"], rounds=2, baselines=False)
    assert two.rounds == 2 and two.n_targets > one.n_targets
    assert [r.model for r in one.rows] == ["constant"]


def test_unknown_model_is_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="unknown model"):
        evaluate(frame, ["no_such_model"])


def test_top_k_trains_on_the_selected_features(frame: pd.DataFrame) -> None:
    board = evaluate(frame, ["decision_tree"], preset="quick", top_k=3)
    assert board.selected_features is not None and len(board.selected_features) == 3
    assert set(board.importances["decision_tree"].index) == set(board.selected_features)
    assert board.row("user_flow_rate").auc is not None  # baselines keep their own column


def test_train_then_predict_keeps_test_ids_and_order(frame: pd.DataFrame) -> None:
    trained = train_model("lightgbm", frame, preset="quick")
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

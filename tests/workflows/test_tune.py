"""The tuner (core/workflows/tune.py): it finds a planted better parameter, never sees the test entries,
shares its budget, stops on cancel with what it found, refuses bad budgets and search spaces, and plugs
into `train_and_save` as its `Tuner`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from flowtui.core import events as ev
from flowtui.core import registry
from flowtui.core.errors import ParamError
from flowtui.core.params import param, schema_of
from flowtui.core.recs.evaluation import holdout, planted_frame
from flowtui.core.recs.interactions import InteractionMatrix, recommender_matrix
from flowtui.core.recs.recommender import RecommenderBase
from flowtui.core.recs.store import read_recommender_meta
from flowtui.core.registry import RecommenderSpec
from flowtui.core.search import Search
from flowtui.core.workflows import recs as workflow
from flowtui.core.workflows.tune import Budget, OptunaTuner, TuneRequest, parse_duration, tune
from flowtui.core.workflows.tune_space import parse_spaces, space_of


def frame_of(users: np.ndarray, items: np.ndarray) -> pd.DataFrame:
    """A DSG17-like frame of plays (every row listened) from (user, item) pairs."""
    n = len(users)
    zeros8 = np.zeros(n, np.int8)
    return pd.DataFrame(
        {
            "genre_id": np.ones(n, np.int32),
            "ts_listen": (1_480_000_000 + np.arange(n)).astype(np.int64),
            "media_id": (items + 1000).astype(np.int32),
            "album_id": (items * 10).astype(np.int32),
            "context_type": np.zeros(n, np.int16),
            "release_date": np.full(n, 20150101, np.int32),
            "platform_name": zeros8,
            "platform_family": zeros8,
            "media_duration": np.full(n, 220, np.int32),
            "listen_type": zeros8,
            "user_gender": zeros8,
            "user_id": users.astype(np.int32),
            "artist_id": (items + 500).astype(np.int32),
            "user_age": np.full(n, 25, np.int8),
            "is_listened": np.ones(n, np.int8),
        }
    )


@pytest.fixture(scope="module")
def pairs() -> pd.DataFrame:
    """Items come in pairs played together, beside 10 items most users play: EASE needs a small l2 to
    see the pairs through the popular items (validation NDCG@10 about 0.57 at l2 <= 10, 0.49 at 500)."""
    rng = np.random.default_rng(0)
    us: list[int] = []
    ms: list[int] = []
    for u in range(400):
        for p in rng.choice(20, 3, replace=False):
            us += [u, u]
            ms += [2 * p, 2 * p + 1]
        for q in range(10):
            if rng.random() < 0.6:
                us.append(u)
                ms.append(40 + q)
    return frame_of(np.array(us), np.array(ms))


def test_finds_a_planted_better_l2(pairs: pd.DataFrame) -> None:
    result = tune(pairs, TuneRequest(("ease",), Budget(trials=10), implicit=True))
    t = result.models["ease"]
    assert len(t.history) == 10 and t.history[0]["params"] == {}
    assert t.default_score is not None and t.best_score is not None
    assert t.best_score > t.default_score + 0.02
    assert 0 < float(t.best["l2"]) < 200  # type: ignore[arg-type]
    assert result.best_params() == {"ease": t.best}


# -- a signal only in the test entries ------------------------------------------------------------------
@dataclass(frozen=True)
class ProbeParams:
    look: Literal["train", "test"] = param(
        "train", "rank by training popularity, or by the test entries", search=("train", "test")
    )


class Probe(RecommenderBase):
    """`look="test"` ranks each user's held-out TEST entries first (a signal that exists only there);
    `look="train"` ranks by training popularity. Every matrix it is fitted on is kept."""

    name = "probe"
    params_cls = ProbeParams
    params: ProbeParams
    test_entries: sp.csr_matrix
    seen: ClassVar[list[sp.csr_matrix]] = []

    def _fit(self, matrix: InteractionMatrix, on_event: object, cancel: object) -> None:
        self.seen.append(matrix.mask.copy())
        self.pop_ = np.asarray(matrix.mask.sum(axis=0), np.float32).ravel()

    def _score(self, history: InteractionMatrix, rows: np.ndarray) -> np.ndarray:
        base = np.broadcast_to(self.pop_, (len(rows), len(self.pop_))).copy()
        if self.params.look == "test":
            base += 1e6 * self.test_entries[rows].toarray().astype(np.float32)
        return base

    def _state(self) -> dict[str, np.ndarray]:
        return {"pop": self.pop_}

    def _restore(self, arrays: dict[str, np.ndarray], folder: Path) -> None:
        self.pop_ = arrays["pop"]


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Probe]]:
    registry.recommender_names()  # the real ones loaded first
    spec = RecommenderSpec(
        name="probe", description="test probe", params_cls=ProbeParams, factory=Probe, loader=Probe.load
    )
    monkeypatch.setitem(registry._SPECS["recommender"], "probe", spec)
    Probe.seen = []
    yield Probe


def test_a_signal_only_in_the_test_entries_is_never_found(probe: type[Probe]) -> None:
    frame = planted_frame(n_users=200, seed=3)
    matrix = recommender_matrix(frame)
    _, test = holdout(matrix, 0.2, "random", 5)  # what `evaluate-recs --seed 5` holds out
    probe.test_entries = sp.csr_matrix(test.mask, dtype=np.float32)
    result = tune(matrix, TuneRequest(("probe",), Budget(trials=6), seed=5))
    t = result.models["probe"]
    scores = {r["params"].get("look", "train"): r["ndcg"] for r in t.history}
    assert scores["test"] < scores["train"]  # on validation the test entries are no signal
    assert t.best == {} and result.best_params() == {"probe": {}}
    test_cells = sp.csr_matrix(test.mask, dtype=bool)
    assert probe.seen and all(sp.csr_matrix(m, dtype=bool).multiply(test_cells).nnz == 0 for m in probe.seen)


# -- budgets, cancel --------------------------------------------------------------------------------------
def test_a_trials_budget_is_shared_and_kept(pairs: pd.DataFrame) -> None:
    result = tune(pairs, TuneRequest(("ease", "item_knn", "popularity"), Budget(trials=9), implicit=True))
    counts = {n: len(t.history) for n, t in result.models.items()}
    assert counts == {"ease": 4, "item_knn": 4, "popularity": 1}  # nothing to search: its defaults only


def test_a_time_budget_stops(pairs: pd.DataFrame) -> None:
    t0 = time.monotonic()
    result = tune(pairs, TuneRequest(("ease", "popularity"), Budget(seconds=0.5), implicit=True))
    assert time.monotonic() - t0 < 5.0
    assert len(result.models["ease"].history) >= 2 and len(result.models["popularity"].history) == 1


def test_cancel_stops_between_trials_and_keeps_the_best(pairs: pd.DataFrame) -> None:
    cancel = threading.Event()
    seen: list[ev.Progress] = []

    def on_event(e: ev.Event) -> None:
        if isinstance(e, ev.Progress) and e.task == "tune":
            seen.append(e)
            if len(seen) == 3:
                cancel.set()

    result = tune(
        pairs,
        TuneRequest(("ease", "item_knn"), Budget(trials=40), implicit=True),
        on_event=on_event,
        cancel=cancel,
    )
    assert result.cancelled and list(result.models) == ["ease"]
    t = result.models["ease"]
    assert len(t.history) == 3 and t.best_score == max(r["ndcg"] for r in t.history)
    assert "best" in seen[2].message and seen[-1].message == "cancelled" and seen[0].total == 40
    assert result.to_dict()["cancelled"] is True


def test_the_same_seed_gives_the_same_search(pairs: pd.DataFrame) -> None:
    runs = [tune(pairs, TuneRequest(("ease",), Budget(trials=4), implicit=True, seed=2)) for _ in range(2)]
    assert [r["params"] for r in runs[0].models["ease"].history] == [
        r["params"] for r in runs[1].models["ease"].history
    ]


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        (Budget(), "not both or neither"),
        (Budget(trials=3, seconds=1.0), "not both or neither"),
        (Budget(trials=0), "at least 1 per model"),
        (Budget(trials=1), "at least 1 per model tuned (2)"),
        (Budget(seconds=0.0), "seconds must be a number > 0"),
        (Budget(seconds=float("nan")), "seconds must be a number > 0"),
    ],
)
def test_bad_budgets_are_refused(budget: Budget, message: str) -> None:
    with pytest.raises(ParamError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TuneRequest(("ease", "popularity"), budget).validate()


def test_durations() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "10m", "1.5h")] == [90, 90, 600, 5400]
    for bad in ("abc", "0s", "-1m", "10 m", "1e3", "", "10d"):
        with pytest.raises(ParamError, match="expected a duration"):
            parse_duration(bad)


# -- search spaces -----------------------------------------------------------------------------------------
def test_every_declared_search_space_fits_its_parameters() -> None:
    spaces = {n: space_of(n) for n in registry.recommender_names()}
    assert set(spaces["ease"]) == {"l2"} and spaces["ease"]["l2"] == Search(1.0, 20_000.0, log=True)
    assert {"factors", "regularization", "alpha", "iterations"} <= set(spaces["als"])
    assert set(spaces["item_knn"]) == {"k"}
    assert {"n_components", "learning_rate", "n_iter", "weight_decay"} <= set(spaces["rbm"])
    assert spaces["popularity"] == {}
    assert str(spaces["ease"]["l2"]) == "1 to 20000, log scale"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("ease.l2=5:1", "LOW < HIGH"),
        ("ease.l2=0:5:log", "must be a number > 0"),
        ("als.regularization=0:5:log", "log-scale search range needs LOW > 0"),
        ("item_knn.k=1.5:3", "must be an integer"),
        ("ease.l2=1:2:lin", "expected LOW:HIGH, LOW:HIGH:log or A,B,C"),
        ("ease.l2=1:2:3:log", "expected LOW:HIGH"),
        ("ease.l2=", "expected LOW:HIGH"),
        ("ease.nope=1:2", "no chosen model has|unknown parameter"),
        ("nope.l2=1:2", "--space 'nope.l2=1:2': unknown model"),
        ("item_knn.k=10,abc", "item_knn.k must be an integer"),
    ],
)
def test_bad_search_spaces_are_refused_in_one_line(item: str, message: str) -> None:
    with pytest.raises(ParamError, match=message) as info:
        parse_spaces([item], ["ease", "als", "item_knn"])
    assert "\n" not in str(info.value)


def test_a_search_space_may_be_replaced_and_a_set_value_is_not_searched() -> None:
    spaces = parse_spaces(["item_knn.k=5,50", "ease.l2=10:100"], ["ease", "item_knn"])
    assert spaces == {"item_knn": {"k": Search(choices=(5, 50))}, "ease": {"l2": Search(10.0, 100.0)}}
    request = TuneRequest(("als",), Budget(trials=2), params={"als": {"factors": "8"}})
    assert "factors" not in request.validate()["als"]
    with pytest.raises(ParamError, match="both set and searched"):
        TuneRequest(
            ("ease",), Budget(trials=2), params={"ease": {"l2": "5"}}, spaces={"ease": spaces["ease"]}
        ).validate()


def test_a_declared_search_is_shown_in_the_schema() -> None:
    p = schema_of(ProbeParams).get("look")
    assert p is not None and p.search == Search(choices=("train", "test"))
    assert str(p.search) == "one of train, test"


# -- the Tuner seam ----------------------------------------------------------------------------------------
def test_train_and_save_trains_with_what_the_tuner_found(pairs: pd.DataFrame, tmp_path: Path) -> None:
    tuner = OptunaTuner(Budget(trials=4), implicit=True)
    request = workflow.TrainRequest(("ease",), tmp_path / "m", implicit=True)
    result = workflow.train_and_save(pairs, request, tuner=tuner)
    assert [t.model for t in result.saved] == ["ease"] and tuner.result is not None
    best = tuner.result.models["ease"].best
    meta = read_recommender_meta(tmp_path / "m" / "ease")
    assert meta["params"]["l2"] == best.get("l2", 500.0)

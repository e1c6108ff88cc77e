"""Early stopping of the exposure network on validation NDCG@10 (`early_stopping`, `fit_exposure`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flowtui.core import events as ev
from flowtui.core import metrics
from flowtui.core.recs import early_stopping as es
from flowtui.core.recs.evaluation import planted_frame
from flowtui.core.recs.interactions import InteractionMatrix, recommender_matrix
from flowtui.core.recs.rbm import RBM
from flowtui.core.recs.rbm_networks import fit_exposure
from flowtui.core.recs.rbm_params import DBNParams, RBMParams
from flowtui.core.recs.recommender import top_n
from tests.recs.conftest import build
from tests.recs.test_recommender_contract import recall_and_chance


@pytest.fixture(scope="module")
def played() -> InteractionMatrix:
    return InteractionMatrix.from_frame(planted_frame(n_users=240, n_media=60, seed=4)).as_played(0.05)


class _Scripted(es.EarlyStopping):
    """Validation scores read from a list instead of computed."""

    scores: list[float]

    def score(self, net: Any) -> float:
        return self.scores[net.n_iter_ - 1]


def _scripted(played: InteractionMatrix, scores: list[float], patience: int) -> _Scripted:
    split = es.ranking_split(played, 0.2, seed=0, patience=patience, every=1)
    assert split is not None
    stopper = _Scripted(**{f.name: getattr(split[1], f.name) for f in dataclasses.fields(split[1])})
    stopper.scores = scores
    return stopper


def test_split_puts_entries_aside_and_keeps_every_user(played: InteractionMatrix) -> None:
    split = es.ranking_split(played, 0.2, seed=3, patience=2)
    assert split is not None
    train, stopper = split
    assert train.nnz + stopper.relevant.nnz == played.nnz
    both = train.mask.multiply(stopper.relevant)
    assert both.nnz == 0  # a validation entry is never a training entry
    assert (np.diff(train.mask.indptr) >= 1).all()  # each user keeps at least one entry
    assert 0.1 < stopper.relevant.nnz / played.nnz < 0.3
    assert set(stopper.users) <= set(np.flatnonzero(np.diff(stopper.relevant.indptr) > 0))


def test_split_samples_at_most_the_validation_users(played: InteractionMatrix, monkeypatch: Any) -> None:
    monkeypatch.setattr(es, "MAX_VALIDATION_USERS", 50)
    split = es.ranking_split(played, 0.2, seed=0, patience=2)
    assert split is not None and len(split[1].users) == 50


def test_no_split_when_off_or_impossible(played: InteractionMatrix) -> None:
    assert es.ranking_split(played, 0.0, seed=0, patience=2) is None
    single = planted_frame(n_users=30, n_media=1, rate=1.0, seed=1)  # one entry per user: nothing to hold out
    m = InteractionMatrix.from_frame(single).as_played(0.05)
    assert es.ranking_split(m, 0.2, seed=0, patience=2) is None


def test_training_stops_after_patience_and_keeps_the_best_weights(played: InteractionMatrix) -> None:
    stopper = _scripted(played, [0.10, 0.30, 0.20, 0.25, 0.50, 0.60], patience=2)
    seen: list[ev.Event] = []
    best: dict[str, Any] = {}

    class Recording(RBM):
        def _epoch(self, *args: Any, **kwargs: Any) -> float:
            loss = super()._epoch(*args, **kwargs)
            if self.n_iter_ == 2:
                best.update({k: v.clone() for k, v in self.state_dict().items()})
            return loss

    net = Recording(n_components=8, n_iter=6, implicit_weight=0.05, user_rate=False, device="cpu")
    net.fit(stopper.history, on_event=seen.append, monitor=stopper)
    epochs = [e for e in seen if isinstance(e, ev.AfterEpoch)]
    assert [e.epoch for e in epochs] == [1, 2, 3, 4]  # epochs 3 and 4 did not beat epoch 2: stop
    assert [e.metric for e in epochs] == [0.10, 0.30, 0.20, 0.25]
    assert stopper.best_epoch == 2 and net.n_iter_ == 2
    for key, value in net.state_dict().items():
        assert np.array_equal(value.numpy(), best[key].numpy()), key


def test_the_real_score_is_ndcg_of_the_validation_entries(blocks_implicit: pd.DataFrame) -> None:
    played = recommender_matrix(blocks_implicit).as_played(0.05)
    split = es.ranking_split(played, 0.2, seed=0, patience=3, every=1)
    assert split is not None
    train, stopper = split
    net = RBM(n_components=16, n_iter=15, batch_size=16, implicit_weight=0.05, user_rate=False, device="cpu")
    net.fit(train, monitor=stopper)
    assert stopper.best == max(v for _, v in stopper.curve) and stopper.best_epoch >= 1
    rel = stopper.relevant[stopper.users]
    noise = np.random.default_rng(0).random((len(stopper.users), train.shape[1]))
    random_top, _ = top_n(noise, 10, exclude=train.mask[stopper.users])
    chance = metrics.ndcg_at_k(random_top, rel, 10)
    assert stopper.best > 2 * chance, (stopper.best, chance)  # planted blocks are found


@pytest.mark.parametrize("params", [RBMParams(n_components=8), DBNParams(layers=(8, 4))])
def test_fit_exposure_refits_for_the_best_epoch_count_as_one_fit(
    played: InteractionMatrix, params: RBMParams | DBNParams
) -> None:
    params = dataclasses.replace(
        params, exposure_n_iter=8, validation_fraction=0.2, patience=2, exposure_n_components=8
    )
    matrix = InteractionMatrix.from_frame(planted_frame(n_users=240, n_media=60, seed=4))
    seen: list[ev.Event] = []
    notes: list[str] = []
    net = fit_exposure(params, matrix, on_event=seen.append, notes=notes)
    assert len(notes) == 1 and "refitted on every entry" in notes[0]
    before = [e for e in seen if isinstance(e, ev.BeforeFit)]
    after = [e for e in seen if isinstance(e, ev.AfterFit)]
    epochs = [e.epoch for e in seen if isinstance(e, ev.AfterEpoch)]
    assert len(before) == 1 and len(after) == 1 and not after[0].cancelled
    assert seen[0] is before[0] and seen[-1] is after[0]
    assert epochs == sorted(epochs) and len(set(epochs)) == len(epochs)
    assert all(e.n_epochs >= e.epoch for e in seen if isinstance(e, ev.AfterEpoch))
    first = net if isinstance(net, RBM) else net.rbms_[0]
    assert first.n_features_in_ == matrix.shape[1]
    best = int(notes[0].split(" after ")[1].split()[0])
    assert first.n_iter_ == best  # the refit trained exactly the best epoch count, on every entry
    assert first.n_iter == 8  # ... with the search's schedule length (a linear decay runs alike in both)


def test_cancel_during_the_search_is_one_cancelled_fit(played: InteractionMatrix) -> None:
    import threading

    cancel = threading.Event()
    seen: list[ev.Event] = []

    def on_event(e: ev.Event) -> None:
        seen.append(e)
        if isinstance(e, ev.AfterEpoch) and e.epoch == 2:
            cancel.set()

    params = RBMParams(exposure_n_iter=10, validation_fraction=0.2, exposure_n_components=8)
    matrix = InteractionMatrix.from_frame(planted_frame(n_users=120, n_media=40, seed=2))
    with pytest.raises(ev.Cancelled):
        fit_exposure(params, matrix, on_event=on_event, cancel=cancel)
    after = [e for e in seen if isinstance(e, ev.AfterFit)]
    assert len(after) == 1 and after[0].cancelled


def test_recommender_with_early_stopping_still_recovers_planted_tastes(blocks_implicit: pd.DataFrame) -> None:
    m = recommender_matrix(blocks_implicit)
    over = {"validation_fraction": 0.2, "exposure_n_iter": 30}
    recall, chance = recall_and_chance(build("rbm", **over), m)
    assert recall > 2 * chance, (recall, chance)  # the bar of the contract test on the same data
    rec = build("rbm", **over).fit(m)
    assert any("best validation NDCG@10" in n for n in rec.notes)


def test_the_last_epoch_is_always_checked(played: InteractionMatrix) -> None:
    """With fewer epochs than the check interval, the one epoch is still scored: the refit never trains a
    count no check chose."""
    split = es.ranking_split(played, 0.2, seed=0, patience=2, every=4)
    assert split is not None
    train, stopper = split
    RBM(n_components=4, n_iter=3, implicit_weight=0.05, user_rate=False, device="cpu").fit(
        train, monitor=stopper
    )
    assert [e for e, _ in stopper.curve] == [3] and stopper.best_epoch == 3


def test_diverged_scores_never_count_as_best(played: InteractionMatrix) -> None:
    stopper = _scripted(played, [float("nan")] * 4, patience=2)
    net = RBM(n_components=4, n_iter=4, implicit_weight=0.05, user_rate=False, device="cpu")
    net.fit(stopper.history, monitor=stopper)
    assert stopper.best_epoch == 0 and net.n_iter_ == 2  # stopped after 2 checks without a valid score
    assert "no valid validation score" in stopper.summary()


def test_stop_after_stops_the_refit_and_restores_nothing(played: InteractionMatrix) -> None:
    net = RBM(n_components=4, n_iter=9, implicit_weight=0.05, user_rate=False, device="cpu")
    net.fit(played, monitor=es.StopAfter(3))
    assert net.n_iter_ == 3 and net.n_iter == 9


def test_a_dbn_recommender_saved_before_deep_mix_says_it_scores_with_half(tmp_path: Any) -> None:
    import json

    from flowtui.core.recs.rbm_recommender import DBNRecommender

    m = InteractionMatrix.from_frame(planted_frame(n_users=60, n_media=30, seed=3))
    rec = build("dbn", deep_mix=0.5).fit(m)
    rec.save(tmp_path)
    for path in tmp_path.glob("*.json"):  # as written before the parameter existed
        text = path.read_text()
        doc = json.loads(text)
        params = doc.get("params")
        if isinstance(params, dict) and "deep_mix" in params:
            del params["deep_mix"]
            path.write_text(json.dumps(doc))
    back = DBNRecommender.load(tmp_path)
    assert back.params.deep_mix == 0.5
    assert np.allclose(back.score(m, [0, 1]), rec.score(m, [0, 1]), atol=1e-5)

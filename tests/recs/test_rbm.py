"""The torch RBM and DBN: masking, structure recovery, determinism, events, persistence, registry models."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError

from flowtui.core import events as ev
from flowtui.core import metrics, registry
from flowtui.core.recs.dbn import DBN
from flowtui.core.recs.evaluation import planted_frame
from flowtui.core.recs.interactions import InteractionMatrix
from flowtui.core.recs.network_files import RBMFileError, load_network, save_network
from flowtui.core.recs.rbm import RBM
from flowtui.core.recs.rbm_params import DBNParams, RBMParams


def planted(seed: int = 0, n_users: int = 300, n_items: int = 60, rate: float = 0.3):
    """Dense labels, observation mask, held-out mask of a 3-group planted-taste matrix."""
    rng = np.random.default_rng(seed)
    ug = rng.integers(0, 3, n_users)
    ig = np.arange(n_items) % 3
    p = np.where(ug[:, None] == ig[None, :], 0.9, 0.1)
    obs = rng.random((n_users, n_items)) < rate
    lab = (rng.random((n_users, n_items)) < p).astype(np.float32)
    held = obs & (rng.random((n_users, n_items)) < 0.25)
    return lab, obs & ~held, held


def small_rbm(**kw) -> RBM:
    params = dict(n_components=8, learning_rate=0.3, batch_size=32, n_iter=3, random_state=0, device="cpu")
    params.update(kw)
    return RBM(**params)


def test_unseen_entries_never_change_the_updates() -> None:
    lab, train, _ = planted(n_users=64, n_items=20)
    mask = train.astype(np.float32)
    noise = np.random.default_rng(5).random(lab.shape).astype(np.float32)
    changed = np.where(train, lab, noise)  # same observed values, garbage where unseen
    a = small_rbm().fit(np.where(train, lab, 0.0), mask)
    b = small_rbm().fit(changed, mask)
    assert np.array_equal(a.components_, b.components_)
    assert np.array_equal(a.intercept_visible_, b.intercept_visible_)
    assert np.array_equal(a.intercept_hidden_, b.intercept_hidden_)
    # ...while changing an observed value does change them
    flipped = lab.copy()
    r, c = np.argwhere(train)[0]
    flipped[r, c] = 1 - flipped[r, c]
    d = small_rbm().fit(flipped, mask)
    assert not np.array_equal(a.components_, d.components_)


def test_sparse_and_dense_inputs_train_the_same_model() -> None:
    lab, train, _ = planted(n_users=64, n_items=20)
    r, c = np.nonzero(train)
    X = sp.csr_matrix((lab[r, c], (r, c)), shape=lab.shape)
    mask = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=lab.shape)
    a = small_rbm().fit(X, mask)
    b = small_rbm().fit(lab * train, train.astype(np.float32))
    np.testing.assert_allclose(a.components_, b.components_, atol=1e-5)


@pytest.mark.parametrize("cls", [RBM, DBN])
def test_cd_k_recovers_planted_structure(cls: type) -> None:
    lab, train, held = planted()
    mask = train.astype(np.float32)
    kw = {"n_components": 16} if cls is RBM else {"layers": (16, 8)}
    net = cls(
        learning_rate=0.3, batch_size=32, n_iter=30, k_schedule=(1, 1, 3), random_state=0, device="cpu", **kw
    )
    net.fit(lab * train, mask)
    hr, hc = np.nonzero(held)
    auc = metrics.auc(lab[hr, hc], net.predict_proba(lab * train, mask)[hr, hc])
    item_mean = (lab * train).sum(0) / np.maximum(train.sum(0), 1)
    base = metrics.auc(lab[hr, hc], item_mean[hc])
    assert auc > 0.8
    assert auc > base + 0.2


def test_determinism_for_a_seed() -> None:
    lab, train, _ = planted(n_users=64, n_items=20)
    m = train.astype(np.float32)
    a, b = small_rbm(random_state=3).fit(lab, m), small_rbm(random_state=3).fit(lab, m)
    c = small_rbm(random_state=4).fit(lab, m)
    assert np.array_equal(a.components_, b.components_)
    assert not np.array_equal(a.components_, c.components_)


def test_not_fitted_errors() -> None:
    X = np.ones((2, 3), np.float32)
    for net in (RBM(), DBN()):
        with pytest.raises(NotFittedError):
            net.transform(X)
        with pytest.raises(NotFittedError):
            net.predict_proba(X)


def test_events_partial_fit_and_shapes() -> None:
    lab, train, _ = planted(n_users=64, n_items=20)
    got: list[ev.Event] = []
    net = small_rbm(n_iter=4, k_schedule=(1, 2)).fit(
        lab * train, train.astype(np.float32), on_event=got.append
    )
    epochs = [e for e in got if isinstance(e, ev.AfterEpoch)]
    assert [e.epoch for e in epochs] == [1, 2, 3, 4]
    assert all(e.n_epochs == 4 and 0.0 <= (e.loss or -1) <= 1.0 for e in epochs)
    assert isinstance(got[0], ev.BeforeFit) and isinstance(got[-1], ev.AfterFit)
    assert net.transform(lab).shape == (64, 8)
    assert net.predict_proba(lab).shape == (64, 20)
    assert net.components_.shape == (8, 20)
    net.partial_fit(lab * train, train.astype(np.float32))
    assert net.n_iter_ == 5
    P = net.predict_proba(lab * train, train.astype(np.float32))
    rows, cols = np.array([0, 5, 5]), np.array([3, 0, 19])
    np.testing.assert_allclose(
        net.predict_pairs(lab * train, rows, cols, train.astype(np.float32)), P[rows, cols], rtol=1e-5
    )


def test_dbn_events_span_all_layers() -> None:
    lab, train, _ = planted(n_users=64, n_items=20)
    got: list[ev.Event] = []
    dbn = DBN(layers=(8, 4), n_iter=2, batch_size=32, random_state=0, device="cpu")
    dbn.fit(lab * train, train.astype(np.float32), on_event=got.append)
    assert [e.epoch for e in got if isinstance(e, ev.AfterEpoch)] == [1, 2, 3, 4]
    assert sum(isinstance(e, ev.BeforeFit) for e in got) == 1
    assert dbn.transform(lab).shape == (64, 4)
    assert dbn.predict_proba(lab).shape == (64, 20)


def test_cancel_raises() -> None:
    lab, train, _ = planted(n_users=64, n_items=20)
    stop = threading.Event()
    stop.set()
    with pytest.raises(ev.Cancelled):
        small_rbm().fit(lab, train.astype(np.float32), cancel=stop)


def test_implicit_weight_makes_unseen_entries_negatives() -> None:
    lab, train, _ = planted(n_users=64, n_items=20)
    r, c = np.nonzero(train & (lab == 1))
    X = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=lab.shape)  # likes only
    plain = small_rbm(n_iter=10).fit(X)
    implicit = small_rbm(n_iter=10, implicit_weight=0.3).fit(X)
    # with only positives, the plain RBM predicts "listened" everywhere; implicit mode does not
    assert plain.predict_proba(X).mean() > 0.9
    assert implicit.predict_proba(X).mean() < plain.predict_proba(X).mean() - 0.2


@pytest.mark.parametrize("cls", [RBM, DBN])
def test_save_load_round_trip(tmp_path: Path, cls: type) -> None:
    lab, train, _ = planted(n_users=64, n_items=20)
    kw = {"n_components": 8} if cls is RBM else {"layers": (8, 4)}
    net = cls(n_iter=2, batch_size=32, random_state=0, device="cpu", **kw).fit(
        lab * train, train.astype(np.float32)
    )
    save_network(net, tmp_path / "m.pt", {"item_ids": np.arange(20)}, {"note": "x"})
    back, arrays, meta = load_network(tmp_path / "m.pt", device="cpu")
    assert type(back) is cls
    np.testing.assert_array_equal(back.predict_proba(lab), net.predict_proba(lab))
    assert arrays["item_ids"].tolist() == list(range(20))
    assert meta == {"note": "x"}


def test_corrupted_and_incompatible_files(tmp_path: Path) -> None:
    lab, train, _ = planted(n_users=64, n_items=20)
    net = small_rbm().fit(lab, train.astype(np.float32))
    path = tmp_path / "m.pt"
    save_network(net, path)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(RBMFileError, match="corrupted"):
        load_network(path)
    path.write_bytes(good)
    doc = path.with_suffix(".json").read_text()
    path.with_suffix(".json").write_text(doc.replace('"format_version": 1', '"format_version": 99'))
    with pytest.raises(RBMFileError, match="incompatible"):
        load_network(path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(RBMFileError):
        load_network(path)
    (tmp_path / "none.json").write_text(doc)
    with pytest.raises(RBMFileError, match="missing"):
        load_network(tmp_path / "none.pt")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    lab, train, _ = planted(n_users=64, n_items=20)
    m = train.astype(np.float32)
    gpu = small_rbm(device="cuda").fit(lab * train, m)
    assert gpu.device_ == "cuda"
    assert RBM(device="auto")._device() == "cuda"
    p = gpu.predict_proba(lab * train, m)
    assert p.shape == (64, 20) and np.all((p >= 0) & (p <= 1))
    hr, hc = np.nonzero(train)
    assert metrics.mae(lab[hr, hc], p[hr, hc]) < 0.5


@pytest.mark.parametrize("name, cls", [("rbm", RBM), ("dbn", DBN)])
def test_estimator_defaults_are_the_registered_defaults(name: str, cls: type) -> None:
    declared = registry.get_spec(name).schema.defaults()
    params = cls().get_params()
    shared = {key: params[key] for key in params if key in declared}
    # the eleven CD arguments and the architecture (n_components or layers; the DBN also its deep_mix)
    assert len(shared) == (13 if cls is DBN else 12)
    assert shared == {
        key: list(v) if isinstance(v, tuple) else v for key, v in declared.items() if key in shared
    }
    assert next(iter(params)) == ("n_components" if cls is RBM else "layers")  # BernoulliRBM's order


def test_build_network_takes_the_estimator_arguments_from_params() -> None:
    from flowtui.core.recs.rbm_networks import build_network

    rbm = build_network(RBMParams(n_components=7, learning_rate=0.2, max_items=5), implicit_weight=0.1)
    assert type(rbm) is RBM
    assert (rbm.n_components, rbm.learning_rate, rbm.implicit_weight) == (7, 0.2, 0.1)
    dbn = build_network(DBNParams(layers=(6, 3), n_iter=2))
    assert type(dbn) is DBN and tuple(dbn.layers) == (6, 3) and dbn.n_iter == 2
    assert [r.n_components for r in (dbn._layer(0, 6), dbn._layer(1, 3))] == [6, 3]
    assert dbn._layer(1, 3).random_state == 1 and not dbn._layer(1, 3).user_rate


# --- registered models ---------------------------------------------------------------------------
def test_registered_models() -> None:
    assert {"rbm", "dbn", "hybrid"} <= set(registry.model_names())
    assert registry.get_spec("rbm").family == "collaborative"
    assert registry.get_spec("hybrid").family == "hybrid"


@pytest.mark.parametrize("name", ["rbm", "dbn"])
def test_flow_model_fit_predict_save_load(tmp_path: Path, name: str) -> None:
    f = planted_frame(n_users=120, seed=2)
    spec = registry.get_spec(name)
    model = spec.build({"batch_size": 16, "n_iter": 15, "device": "cpu"}, preset="quick")
    model.fit(None, f["is_listened"].to_numpy(), f)
    p = model.predict_proba(None, f)
    assert p.shape == (len(f),) and np.all((p >= 0) & (p <= 1))
    assert metrics.auc(f["is_listened"], p) > 0.7  # training rows: the planted tastes are learnt
    # fallbacks: an unknown user gets the media's rate, an unknown media the user's rate
    known_media = int(f["media_id"].iloc[0])
    q = pd.DataFrame({"user_id": [10_000, 0], "media_id": [known_media, 99_999]})
    fb = model.predict_proba(None, q)
    assert fb[0] == pytest.approx(model.media_fallback_rate_[model.media_fallback_ids_ == known_media][0])
    assert fb[1] == pytest.approx(model.user_fallback_rate_[0])
    model.save(tmp_path)
    assert (tmp_path / "exposure.pt").is_file()  # the exposure network travels with the model
    back = spec.load(tmp_path, spec.params({"batch_size": 16}, "quick"))
    np.testing.assert_allclose(back.predict_proba(None, f), p, rtol=1e-6)
    assert back.exposure_ is not None and back.exposure_.implicit_weight == pytest.approx(0.05)


def test_flow_model_load_refuses_the_wrong_kind(tmp_path: Path) -> None:
    f = planted_frame(n_users=60, seed=2)
    model = registry.get_spec("rbm").build({"n_iter": 1, "device": "cpu"}, preset="quick")
    model.fit(None, f["is_listened"].to_numpy(), f)
    model.save(tmp_path)
    with pytest.raises(RBMFileError):
        registry.get_spec("dbn").load(tmp_path, {})


def test_hybrid_adds_a_leak_free_rbm_feature(tmp_path: Path) -> None:
    from flowtui.core.flow import features

    f = planted_frame(n_users=150, seed=4)
    X, y, rows = features.training_matrix(f)
    spec = registry.get_spec("hybrid")
    model = spec.build({"rbm_batch_size": 32, "rbm_device": "cpu"}, preset="quick")
    model.fit(X, y, rows)
    imp = model.feature_importances()
    assert imp is not None and "rbm_score" in imp.index
    p = model.predict_proba(X, rows)
    assert p.shape == (len(X),)
    model.save(tmp_path)
    back = spec.load(tmp_path, spec.params({"rbm_batch_size": 32, "rbm_device": "cpu"}, "quick"))
    np.testing.assert_allclose(back.predict_proba(X, rows), p, rtol=1e-6)


def test_interaction_matrix_input() -> None:
    f = planted_frame(n_users=80, seed=1)
    m = InteractionMatrix.from_frame(f)
    net = small_rbm(n_iter=2).fit(m)
    assert net.components_.shape == (8, m.shape[1])
    assert 0.0 < net.reconstruction_error(m) < 1.0
    assert net.score(m) == pytest.approx(-net.reconstruction_error(m))


def test_a_users_listen_tendency_conditions_the_predictions() -> None:
    lab, train, _ = planted(n_users=120, n_items=30)
    mask = train.astype(np.float32)
    gaps = {}
    for user_rate in (True, False):
        net = small_rbm(n_iter=15, user_rate=user_rate).fit(lab * train, mask)
        listener = net.predict_proba(np.ones_like(lab), mask)  # same items heard, all listened
        skipper = net.predict_proba(np.zeros_like(lab), mask)  # ... all skipped
        gaps[user_rate] = listener.mean() - skipper.mean()
        state = net.state_dict()
        assert {"context_hidden", "context_visible"} <= set(state)
        assert bool(state["context_visible"].abs().sum() > 0) is user_rate
    # the conditioning input carries the overall tendency straight to every item
    assert gaps[True] > 0.1
    assert gaps[True] > gaps[False] + 0.05

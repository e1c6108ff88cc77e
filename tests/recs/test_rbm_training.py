"""The RBM's training step: the data-parallel seam, the implicit fast path, one-user scoring, and the
registered rbm against popularity on planted tastes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from flowtui.core import metrics, registry
from flowtui.core.recs import rbm_cd
from flowtui.core.recs.evaluation import holdout, relevant
from flowtui.core.recs.interactions import recommender_matrix
from flowtui.core.recs.rbm import RBM
from flowtui.core.recs.rbm_source import Source


def sparse_matrix(n_users: int = 96, n_items: int = 120, per_user: int = 12, seed: int = 0) -> sp.csr_matrix:
    """Users x items with 0/1 labels on `per_user` random entries a user (three taste groups)."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n_users), per_user)
    cols = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    labels = ((cols % 3) == (rows % 3)).astype(np.float32)
    return sp.csr_matrix((labels, (rows, cols)), shape=(n_users, n_items))


def fitted(X: sp.csr_matrix, **kw: object) -> RBM:
    params: dict[str, object] = dict(n_components=8, batch_size=32, n_iter=1, random_state=0, device="cpu")
    params.update(kw)
    return RBM(**params).fit(X)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kw",
    [{}, {"centered": True}, {"implicit_weight": 0.2}, {"implicit_weight": 0.2, "centered": True}],
    ids=["masked", "masked-centered", "implicit", "implicit-centered"],
)
def test_shard_updates_summed_equal_the_whole_batch_update(kw: dict[str, object]) -> None:
    """compute_update on two shards of a batch, summed, is the whole batch's (the all-reduce seam); the
    random draws are the same when the shards draw one after the other from one generator."""
    X = sparse_matrix()
    rbm = fitted(X, **kw)
    src = Source(X, None, float(kw.get("implicit_weight", 0.0)))  # type: ignore[arg-type]
    idx = np.arange(40)
    state = rbm._gen.get_state()
    whole = rbm.compute_update(src.batch(idx, "cpu", transposed=True), 1)
    rbm._gen.set_state(state)
    a = rbm.compute_update(src.batch(idx[:15], "cpu", transposed=True), 1)
    b = rbm.compute_update(src.batch(idx[15:], "cpu", transposed=True), 1)
    assert len(whole) == 7
    for w, x, y in zip(whole, a, b, strict=True):
        assert torch.allclose(w, x + y, rtol=1e-4, atol=1e-4)
    # apply_update on the summed list moves every parameter as one step on the whole batch does
    twin = fitted(X, **kw)
    twin.apply_update([x + y for x, y in zip(a, b, strict=True)])
    rbm.apply_update(whole)
    for p, q in zip(rbm._params(), twin._params(), strict=True):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-5)
    assert not torch.equal(rbm._WT, fitted(X, **kw)._WT)  # the update did move the weights


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("played", [True, False])
def test_implicit_fast_path_matches_the_dense_negative_phase(centered: bool, k: int, played: bool) -> None:
    """The implicit step (dense reconstruction plus sparse corrections) gives the gradients of the plain
    dense negative phase, on played data and on listen/skip labels with weak unseen negatives."""
    X = sparse_matrix(seed=1)
    if played:
        X = sp.csr_matrix((np.ones(X.nnz, np.float32), X.indices, X.indptr), shape=X.shape)
    rbm = fitted(X, implicit_weight=0.3, centered=centered)
    bt = Source(X, None, 0.3).batch(np.arange(X.shape[0]), "cpu", transposed=True)
    state = rbm._gen.get_state()
    dense, err_dense, _ = rbm_cd.dense_negative_step(rbm, bt, bt.r, k)
    rbm._gen.set_state(state)
    fast, err_fast, _ = rbm_cd.implicit_step(rbm, bt, bt.r, k)
    assert err_fast == pytest.approx(err_dense, rel=1e-4)
    for g, f in zip(dense, fast, strict=True):
        assert g is not None and f is not None
        assert torch.allclose(g, f, rtol=1e-3, atol=1e-3 * float(g.abs().max()))


def test_one_user_scorer_matches_the_batch_scores() -> None:
    X = sparse_matrix(seed=2)
    for kw in ({}, {"implicit_weight": 0.1, "user_rate": False}):
        rbm = fitted(X, n_iter=2, **kw)
        proba = rbm.predict_proba(X[:3])
        scorer = rbm.user_scorer()
        for u in range(3):
            lo, hi = X.indptr[u], X.indptr[u + 1]
            z = scorer(X.indices[lo:hi], X.data[lo:hi])
            assert np.allclose(1.0 / (1.0 + np.exp(-2.0 * z)), proba[u], atol=1e-5)


def ndcg(name: str, frame: pd.DataFrame, params: dict[str, object] | None = None) -> float:
    """Held-out NDCG@10 of the registered recommender `name` on a random 20% split of `frame`."""
    m = recommender_matrix(frame)
    train, test = holdout(m, 0.2, "random", seed=4)
    model = registry.get_recommender(name).build(params)
    top, _ = model.fit(train).recommend(train, None, 10)
    return metrics.ndcg_at_k(top, relevant(test), 10)


@pytest.mark.parametrize("implicit", [False, True])
def test_rbm_top_n_beats_popularity_on_planted_tastes(implicit: bool) -> None:
    """The planted-block frame (tests/recs/conftest.py), with one block more popular than the others so
    that popularity is a real baseline: a small, quickly trained RBM must rank the user's own block first
    and beat popularity's NDCG@10 by a clear margin."""
    from tests.recs.conftest import block_frame

    frame = block_frame(n_users=180, implicit=implicit, seed=2)
    extra = block_frame(n_users=180, implicit=implicit, seed=3)
    extra = extra[extra["user_id"] % 3 == 0].copy()  # more users of group 0: block 0 more played
    extra["user_id"] += 1000
    frame = pd.concat([frame, extra], ignore_index=True)
    small = {
        "n_components": 16,
        "exposure_n_components": 16,
        "n_iter": 8,
        "exposure_n_iter": 12,
        "learning_rate": 0.3,
        "device": "cpu",
    }
    rbm, pop = ndcg("rbm", frame, small), ndcg("popularity", frame)
    assert rbm > pop + 0.05, (rbm, pop)


def test_linear_schedule_decays_the_learning_rate_over_the_epochs() -> None:
    X = sparse_matrix()
    seen: list[float] = []

    class Recording(RBM):
        def apply_update(self, updates: list[torch.Tensor]) -> None:
            seen.append(self.epoch_learning_rate())
            super().apply_update(updates)

    net = Recording(
        n_components=8, batch_size=96, n_iter=4, learning_rate=0.4, lr_schedule="linear", device="cpu"
    )
    net.fit(X)  # one batch an epoch: one rate an epoch
    assert seen == pytest.approx([0.4, 0.3, 0.2, 0.1])
    net.partial_fit(X)  # beyond n_iter: the last epoch's rate, never 0 or negative
    assert seen[-1] == pytest.approx(0.1)
    constant = Recording(n_components=8, batch_size=96, n_iter=3, learning_rate=0.4, device="cpu")
    seen.clear()
    constant.fit(X)
    assert seen == pytest.approx([0.4, 0.4, 0.4])


def test_the_schedule_changes_the_training_and_is_saved_with_the_network(tmp_path: object) -> None:
    from pathlib import Path

    from flowtui.core.recs.network_files import load_network, save_network

    X = sparse_matrix()
    const = fitted(X, n_iter=4, learning_rate=0.4)
    linear = fitted(X, n_iter=4, learning_rate=0.4, lr_schedule="linear")
    assert not np.allclose(const.components_, linear.components_)
    path = Path(str(tmp_path)) / "net.pt"
    save_network(linear, path)
    back, _, _ = load_network(path, device="cpu")
    assert back.lr_schedule == "linear" and back.learning_rate == pytest.approx(0.4)


def test_the_exposure_network_gets_its_own_learning_rate_and_schedule() -> None:
    from flowtui.core.recs.evaluation import planted_frame
    from flowtui.core.recs.interactions import InteractionMatrix
    from flowtui.core.recs.rbm_networks import exposure_settings, fit_exposure
    from flowtui.core.recs.rbm_params import RBMParams

    p = RBMParams(exposure_n_components=8, exposure_n_iter=2, exposure_learning_rate=0.3)
    assert exposure_settings(p)["learning_rate"] == 0.3 and exposure_settings(p)["lr_schedule"] == "linear"
    net = fit_exposure(p, InteractionMatrix.from_frame(planted_frame(n_users=60, seed=1)))
    assert net.learning_rate == pytest.approx(0.3) and net.lr_schedule == "linear"
    assert net.n_components == 8 and net.n_iter == 2


@pytest.mark.parametrize("mix", [0.0, 0.5, 1.0])
def test_dbn_scores_mix_the_first_layer_with_the_upper_layers(mix: float, tmp_path: object) -> None:
    """deep_mix 0 scores exactly as the DBN's own first layer; the one-user scorers agree with the batch."""
    from pathlib import Path

    from flowtui.core.recs.dbn import DBN
    from flowtui.core.recs.network_files import load_network, save_network
    from flowtui.core.recs.numpy_net import NumpyNet

    X = sparse_matrix(seed=5)
    dbn = DBN(layers=(8, 4), n_iter=3, batch_size=32, random_state=0, device="cpu", deep_mix=mix).fit(X)
    proba = dbn.predict_proba(X[:4])
    first = dbn.rbms_[0].predict_proba(X[:4])
    if mix == 0.0:
        assert np.allclose(proba, first, atol=1e-6)
    else:
        assert not np.allclose(proba, first, atol=1e-4)
    scorer, numpy_net = dbn.user_scorer(), NumpyNet(dbn)
    for u in range(4):
        lo, hi = X.indptr[u], X.indptr[u + 1]
        for z in (
            scorer(X.indices[lo:hi], X.data[lo:hi]),
            numpy_net.half_logits(X.indices[lo:hi], X.data[lo:hi]),
        ):
            assert np.allclose(1.0 / (1.0 + np.exp(-2.0 * z)), proba[u], atol=1e-5)
    path = Path(str(tmp_path)) / "dbn.pt"
    save_network(dbn, path)
    back, _, _ = load_network(path, device="cpu")
    assert isinstance(back, DBN) and back.deep_mix == mix
    assert np.allclose(back.predict_proba(X[:4]), proba, atol=1e-6)


def test_a_dbn_saved_before_deep_mix_keeps_its_half_mix(tmp_path: object) -> None:
    import json
    from pathlib import Path

    from flowtui.core.recs.dbn import DBN
    from flowtui.core.recs.network_files import load_network, save_network

    X = sparse_matrix(seed=6)
    old = DBN(layers=(8, 4), n_iter=2, batch_size=32, random_state=0, device="cpu", deep_mix=0.5).fit(X)
    path = Path(str(tmp_path)) / "dbn.pt"
    save_network(old, path)
    doc_path = path.with_suffix(".json")
    doc = json.loads(doc_path.read_text())
    del doc["params"]["deep_mix"]  # as written before the parameter existed
    doc_path.write_text(json.dumps(doc))
    back, _, _ = load_network(path, device="cpu")
    assert isinstance(back, DBN) and back.deep_mix == 0.5
    assert np.allclose(back.predict_proba(X[:3]), old.predict_proba(X[:3]), atol=1e-6)

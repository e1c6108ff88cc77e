"""The RBM's catalogue context: item groups in the matrix, leave-one-out positions, the learnt weights'
gradient, every scoring path and the saved file."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from flowtui.core import metrics
from flowtui.core.recs.dbn import DBN
from flowtui.core.recs.evaluation import holdout, relevant
from flowtui.core.recs.interactions import InteractionMatrix, recommender_matrix
from flowtui.core.recs.network_files import RBMFileError, load_network, save_network
from flowtui.core.recs.numpy_net import NumpyNet
from flowtui.core.recs.rbm import RBM
from flowtui.core.recs.rbm_params import RBMParams
from flowtui.core.recs.rbm_recommender import RBMRecommender
from flowtui.core.recs.rbm_source import Source


def album_frame(n_users: int = 240, n_albums: int = 120, per_album: int = 5, seed: int = 0) -> pd.DataFrame:
    """Plays of whole albums: each user picks 4 albums and plays 4 of each one's 5 tracks (plus 3 random
    tracks); albums belong to artists two by two. Far more albums than a small RBM has hidden units."""
    rng = np.random.default_rng(seed)
    users, media = [], []
    n_media = n_albums * per_album
    for u in range(n_users):
        for a in rng.choice(n_albums, 4, replace=False):
            tracks = a * per_album + rng.choice(per_album, per_album - 1, replace=False)
            media.extend(tracks.tolist())
            users.extend([u] * len(tracks))
        noise = rng.choice(n_media, 3, replace=False)
        media.extend(noise.tolist())
        users.extend([u] * 3)
    m = np.asarray(media)
    return pd.DataFrame(
        {
            "user_id": np.asarray(users),
            "media_id": m + 100,
            "album_id": m // per_album + 7000,
            "artist_id": m // (2 * per_album) + 90,
            "ts_listen": np.arange(len(m)) + 1_480_000_000,
            "is_listened": np.ones(len(m), np.int8),
        }
    )


#: A small implicit (exposure-like) network's arguments, shared by the RBM and the DBN below.
SMALL: dict[str, object] = {
    "batch_size": 32,
    "random_state": 0,
    "device": "cpu",
    "implicit_weight": 0.1,
    "user_rate": False,
}


def small_rbm(**kw: object) -> RBM:
    return RBM(**{"n_components": 8, "n_iter": 3, **SMALL, **kw})  # type: ignore[arg-type]


def test_the_matrix_records_artist_and_album_groups_and_keeps_them_through_splits() -> None:
    frame = album_frame(n_users=20, n_albums=6)
    m = recommender_matrix(frame)
    assert set(m.item_groups) == {"artist", "album"}
    media = m.item_ids - 100
    # group indices are dense, and two items share a group exactly when their ids say so
    for name, size in (("album", 5), ("artist", 10)):
        g = m.item_groups[name]
        assert g.min() == 0 and len(np.unique(g)) == g.max() + 1
        same = g[:, None] == g[None, :]
        assert np.array_equal(same, (media // size)[:, None] == (media // size)[None, :])
    train, _ = holdout(m, 0.2, "random", seed=0)
    assert train.item_groups is m.item_groups
    assert train.as_played(0.1).item_groups is m.item_groups


def test_a_level_whose_groups_are_single_items_is_left_out() -> None:
    """An imported log names every item its own artist and album: nothing to condition on."""
    frame = album_frame(n_users=20, n_albums=6)
    frame["artist_id"] = frame["media_id"]
    m = recommender_matrix(frame)
    assert set(m.item_groups) == {"album"}
    assert recommender_matrix(frame.drop(columns=["artist_id", "album_id"])).item_groups == {}


def tiny_matrix(X: sp.csr_matrix, groups: dict[str, np.ndarray]) -> InteractionMatrix:
    n_users, n_items = X.shape
    return InteractionMatrix(
        labels=X,
        mask=X.copy(),
        user_ids=np.arange(n_users),
        item_ids=np.arange(n_items),
        item_counts=np.zeros(n_items, np.int64),
        last_ts=np.zeros(X.nnz, np.int64),
        implicit_weight=0.1,
        item_groups=groups,
    )


def test_the_catalogue_term_leaves_the_entry_itself_out() -> None:
    """Items 0-2 share group 0, item 3 is alone: a user with items 0 and 3 gets items 1 and 2 (item 0 has
    no OTHER item of its group), a user with 0 and 1 gets 0, 1 and 2."""
    X = sp.csr_matrix(np.array([[1, 0, 0, 1], [1, 1, 0, 0]], np.float32))
    rbm = small_rbm(n_iter=1).fit(tiny_matrix(X, {"album": np.array([0, 0, 0, 1])}))
    assert list(rbm.groups_) == ["album"]
    rbm._cat = torch.ones(1)
    term = rbm._add_catalogue(torch.zeros(2, 4), Source(X, None, 0.1).batch(np.arange(2), "cpu"))
    assert term.tolist() == [[0, 1, 1, 0], [1, 1, 1, 0]]
    # a masked (listen/skip) network never learns a catalogue, whatever the matrix names
    listen = small_rbm(n_iter=1, implicit_weight=0.0)
    listen.fit(dataclasses.replace(tiny_matrix(X, {"album": np.array([0, 0, 0, 1])}), implicit_weight=None))
    assert listen.groups_ == {}


def fitted_with_catalogue(weights: tuple[float, float] = (0.7, -0.4)) -> tuple[RBM, InteractionMatrix]:
    m = recommender_matrix(album_frame(n_users=60, n_albums=20)).as_played(0.1)
    rbm = small_rbm(n_iter=1).fit(m)
    assert list(rbm.groups_) == ["artist", "album"]
    rbm._cat = torch.tensor(weights)  # set by hand: every path must add them alike
    return rbm, m


@pytest.mark.parametrize("k, centered, weighted", [(1, False, False), (3, False, True), (2, True, True)])
def test_the_catalogue_gradient_is_the_weighted_spin_difference_at_the_positions(
    k: int, centered: bool, weighted: bool
) -> None:
    """The catalogue weights' gradient from the implicit step equals a plain dense computation: the sum,
    over each level's masked entries, of positive minus negative weighted spins (CD-k, entry weights)."""
    rbm, m = fitted_with_catalogue()
    rbm.centered = centered
    if weighted:
        rng = np.random.default_rng(0)
        m = dataclasses.replace(m, mask=m.mask.copy())
        m.mask.data = rng.uniform(0.3, 2.0, m.nnz).astype(np.float32)
    w = 0.1
    bt = Source(m, None, w).batch(np.arange(24), "cpu", transposed=True)
    state = rbm._gen.get_state()
    ups = rbm.compute_update(bt, k)
    assert len(ups) == 8  # the five parameters, the catalogue weights, hidden sums, stats
    rbm._gen.set_state(state)
    seen = torch.from_numpy(m.labels[:24].toarray()) > 0
    weight = torch.from_numpy(m.mask[:24].toarray())
    s0 = torch.where(seen, weight, torch.full_like(weight, -w))  # every entry a play: spin +1 times m
    masks = []
    for g in rbm.groups_.values():
        same = torch.from_numpy(g[:, None] == g[None, :]).float()
        masks.append(((seen.float() @ same) - seen.float() > 0.5).float())
    cat = sum(a * mk for a, mk in zip(rbm._cat, masks, strict=True))
    h0 = torch.sigmoid(s0 @ rbm._WT + rbm._c)
    h = torch.bernoulli(h0, generator=rbm._gen)
    for step in range(k):
        T = torch.tanh(h @ rbm._W + rbm._b + cat)
        sk = torch.where(seen, weight * T, w * T)
        if step < k - 1:
            h = torch.bernoulli(torch.sigmoid(sk @ rbm._WT + rbm._c), generator=rbm._gen)
    expected = torch.stack([((s0 - sk) * mk).sum() for mk in masks])
    assert torch.allclose(ups[5], expected, rtol=1e-4, atol=1e-3)


def test_every_scoring_path_adds_the_same_catalogue_term() -> None:
    rbm, m = fitted_with_catalogue()
    rows = np.arange(5)
    proba = rbm.predict_proba(m.labels[rows], m.mask[rows])
    plain = dataclasses.replace(rbm)  # a copy whose catalogue is switched off: the term must matter
    plain.__dict__.update(rbm.__dict__)
    plain._set_catalogue({}, torch.zeros(0))
    assert not np.allclose(plain.predict_proba(m.labels[rows], m.mask[rows]), proba, atol=1e-3)
    scorer, numpy_net = rbm.user_scorer(), NumpyNet(rbm)
    for u in rows:
        lo, hi = m.labels.indptr[u], m.labels.indptr[u + 1]
        cols, vals = m.labels.indices[lo:hi], m.labels.data[lo:hi]
        for z in (scorer(cols, vals), numpy_net.half_logits(cols, vals)):
            assert np.allclose(1.0 / (1.0 + np.exp(-2.0 * z)), proba[u], atol=1e-5)
    pr, pc = np.repeat(rows, 7), np.tile(np.arange(0, 70, 10), len(rows))
    assert np.allclose(rbm.predict_pairs(m.labels, pr, pc, m.mask), proba[pr, pc], atol=1e-5)


def test_the_catalogue_is_saved_with_the_network(tmp_path: object) -> None:
    rbm, m = fitted_with_catalogue()
    path = tmp_path / "net.pt"  # type: ignore[operator]
    save_network(rbm, path)
    back, _, _ = load_network(path, device="cpu")
    assert isinstance(back, RBM)
    assert torch.equal(back._cat, rbm._cat)
    assert list(back.groups_) == list(rbm.groups_)
    assert all(np.array_equal(back.groups_[k], rbm.groups_[k]) for k in rbm.groups_)
    rows = np.arange(4)
    assert np.allclose(
        back.predict_proba(m.labels[rows], m.mask[rows]), rbm.predict_proba(m.labels[rows], m.mask[rows])
    )
    # a network saved without a catalogue (older files) loads without one
    state = {k: v for k, v in rbm.state_dict().items() if not k.startswith("catalogue")}
    old = small_rbm().load_state_dict(state)
    assert old.groups_ == {} and old._cat.numel() == 0


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s.update(catalogue_weights=torch.zeros(3)),
        lambda s: s.update(catalogue_groups=s["catalogue_groups"][:, :-1]),
        lambda s: s.update(catalogue_groups=-s["catalogue_groups"] - 1),
        lambda s: s.update(catalogue_groups=s["catalogue_groups"] + 10**9),
        lambda s: s.update(catalogue_levels=torch.tensor([0, 0])),
        lambda s: s.update(catalogue_levels=torch.tensor([0, 7])),
        lambda s: s.update(catalogue_weights=torch.tensor([1.0, float("nan")])),
        lambda s: s.pop("catalogue_levels"),
    ],
    ids=["weights", "items", "negative", "huge", "repeated-level", "unknown-level", "nan", "incomplete"],
)
def test_a_damaged_catalogue_is_refused(edit: object, tmp_path: object) -> None:
    rbm, _ = fitted_with_catalogue()
    state = rbm.state_dict()
    edit(state)  # type: ignore[operator]
    with pytest.raises(ValueError, match="catalogue"):
        small_rbm().load_state_dict(state)
    with pytest.raises(ValueError, match="catalogue"):
        DBN(device="cpu").load_state_dict({f"layer0.{k}": v for k, v in state.items()})
    path = tmp_path / "net.pt"  # type: ignore[operator]
    save_network(rbm, path)
    tensors = torch.load(path, weights_only=True)
    tensors["net.catalogue_weights"] = torch.zeros(5)
    torch.save(tensors, path)
    with pytest.raises(RBMFileError):
        load_network(path)  # the checksum no longer matches


def ndcg(frame: pd.DataFrame, **over: object) -> tuple[float, RBMRecommender]:
    m = recommender_matrix(frame)
    train, test = holdout(m, 0.2, "random", seed=1)
    small = {"exposure_n_components": 8, "exposure_n_iter": 10, "device": "cpu", **over}
    model = RBMRecommender(dataclasses.replace(RBMParams(), **small))
    top, _ = model.fit(train).recommend(train, None, 10)
    return float(metrics.ndcg_at_k(top, relevant(test), 10)), model


def test_the_catalogue_context_recovers_planted_albums() -> None:
    """Users play most tracks of a few albums out of 120: 8 hidden units cannot hold the albums, the
    catalogue context can. It must learn a positive album weight and lift NDCG@10 well above the plain
    RBM's."""
    frame = album_frame()
    with_ctx, model = ndcg(frame)
    without, _ = ndcg(frame, catalogue_context=False)
    assert model.exposure_ is not None
    weights = dict(zip(("artist", "album"), model.exposure_._cat.tolist(), strict=True))
    assert weights["album"] > 0.5, weights
    assert with_ctx > without + 0.2, (with_ctx, without)


def test_a_dbn_scores_with_its_first_layers_catalogue_on_every_path(tmp_path: object) -> None:
    m = recommender_matrix(album_frame(n_users=60, n_albums=20)).as_played(0.1)
    dbn = DBN(layers=(8, 4), n_iter=2, deep_mix=0.5, **SMALL).fit(m)  # type: ignore[arg-type]
    first = dbn.rbms_[0]
    assert list(first.groups_) == ["artist", "album"] and all(not r.groups_ for r in dbn.rbms_[1:])
    first._cat = torch.tensor([0.9, 0.4])
    rows = np.arange(4)
    proba = dbn.predict_proba(m.labels[rows], m.mask[rows])
    path = tmp_path / "dbn.pt"  # type: ignore[operator]
    save_network(dbn, path)
    back, _, _ = load_network(path, device="cpu")
    assert np.allclose(back.predict_proba(m.labels[rows], m.mask[rows]), proba, atol=1e-6)
    numpy_net = NumpyNet(back)
    for u in rows:
        lo, hi = m.labels.indptr[u], m.labels.indptr[u + 1]
        z = numpy_net.half_logits(m.labels.indices[lo:hi], m.labels.data[lo:hi])
        assert np.allclose(1.0 / (1.0 + np.exp(-2.0 * z)), proba[u], atol=1e-5)


def test_further_training_keeps_the_models_own_catalogue() -> None:
    """partial_fit after fit trains with the catalogue the model was fitted with, whatever the new input
    names (here a plain sparse matrix of the same items, which names none)."""
    rbm, m = fitted_with_catalogue()
    before = rbm._cat.clone()
    rbm.partial_fit(sp.csr_matrix(m.labels))
    assert list(rbm.groups_) == ["artist", "album"]
    assert not torch.equal(rbm._cat, before)  # the weights kept learning


def test_a_recommender_saved_before_the_catalogue_says_it_has_none(tmp_path: object) -> None:
    """Networks written before `catalogue_context` existed load without a catalogue, and the loaded
    recommender's parameters say so (today's default is on)."""
    import hashlib
    import json
    from pathlib import Path

    m = recommender_matrix(album_frame(n_users=40, n_albums=10))
    small = {
        "exposure_n_components": 4,
        "exposure_n_iter": 1,
        "n_iter": 1,
        "n_components": 4,
        "device": "cpu",
    }
    model = RBMRecommender(dataclasses.replace(RBMParams(), **small)).fit(m)
    folder = Path(str(tmp_path)) / "rec"
    folder.mkdir()
    model.save(folder)
    for name in ("listen", "exposure"):
        doc_path = folder / f"{name}.json"
        if not doc_path.exists():
            continue
        tensors = torch.load(folder / f"{name}.pt", weights_only=True)
        old = {k: v for k, v in tensors.items() if ".catalogue" not in k}  # as written before
        torch.save(old, folder / f"{name}.pt")
        doc = json.loads(doc_path.read_text())
        del doc["params"]["catalogue_context"]
        doc["sha256"] = hashlib.sha256((folder / f"{name}.pt").read_bytes()).hexdigest()
        doc_path.write_text(json.dumps(doc))
    back = RBMRecommender.load(folder)
    assert back.params.catalogue_context is False
    assert back.exposure_ is not None and back.exposure_.groups_ == {}
    assert model.params.catalogue_context is True and model.exposure_ is not None
    assert list(model.exposure_.groups_) == ["artist", "album"]

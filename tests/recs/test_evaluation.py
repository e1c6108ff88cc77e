"""Held-out recommendation metrics: the split, the baselines, an oracle check of the ranking metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flowtui.core.recs.evaluation import ITEM_MEAN_SMOOTHING, evaluate_recs, planted_frame, split_entries
from flowtui.core.recs.interactions import InteractionMatrix

KEYS = {"model", "mae", "auc", "precision_at_k", "recall_at_k", "ndcg_at_k", "k"}


def test_random_split_keeps_a_training_entry_per_user() -> None:
    m = InteractionMatrix.from_frame(planted_frame(n_users=200, seed=3))
    held = split_entries(m, 0.3, "random", seed=1)
    assert 0.2 < held.mean() < 0.35
    rows = m.entry_rows()
    kept = np.bincount(rows[~held], minlength=m.shape[0])
    assert (kept[np.diff(m.labels.indptr) > 0] >= 1).all()
    assert np.array_equal(held, split_entries(m, 0.3, "random", seed=1))


def test_latest_split_holds_out_each_users_latest_entries() -> None:
    m = InteractionMatrix.from_frame(planted_frame(n_users=50, seed=3))
    held = split_entries(m, 0.25, "latest")
    rows = m.entry_rows()
    for u in range(m.shape[0]):
        mine = rows == u
        if mine.sum() >= 2:
            assert m.last_ts[mine & held].min() >= m.last_ts[mine & ~held].max()
            assert (mine & held).sum() == max(1, math.floor(mine.sum() * 0.25))


def test_rbm_beats_both_baselines_on_planted_tastes() -> None:
    f = planted_frame(n_users=300, seed=0)
    params = {"batch_size": 32, "n_iter": 25, "n_components": 16, "device": "cpu"}
    res = {m: evaluate_recs(f, m, 10, params) for m in ("rbm", "popularity", "item_mean")}
    for r in res.values():
        assert set(r) >= KEYS and r["k"] == 10
    assert res["popularity"]["mae"] is None
    for base in ("popularity", "item_mean"):
        assert res["rbm"]["auc"] > res[base]["auc"] + 0.2
        assert res["rbm"]["ndcg_at_k"] > res[base]["ndcg_at_k"]
    assert res["rbm"]["mae"] < res["item_mean"]["mae"]


def test_ranking_metrics_match_a_brute_force_oracle() -> None:
    f = planted_frame(n_users=60, n_media=30, seed=5)
    k = 5
    got = evaluate_recs(f, "item_mean", k, fraction=0.3, seed=2)
    m = InteractionMatrix.from_frame(f)
    held = split_entries(m, 0.3, "random", seed=2)
    rows, cols, lab = m.entry_rows(), m.labels.indices, m.labels.data
    tr = ~held
    glob = lab[tr].mean()
    n = np.bincount(cols[tr], minlength=m.shape[1])
    s = np.bincount(cols[tr], weights=lab[tr], minlength=m.shape[1])
    score = (s + ITEM_MEAN_SMOOTHING * glob) / (n + ITEM_MEAN_SMOOTHING)
    prec, rec, ndcg = [], [], []
    for u in range(m.shape[0]):
        rel = set(cols[(rows == u) & held & (lab == 1)].tolist())
        if not rel:
            continue
        seen = set(cols[(rows == u) & tr].tolist())
        cand = sorted((c for c in range(m.shape[1]) if c not in seen), key=lambda c: (-score[c], c))[:k]
        hits = [c in rel for c in cand]
        prec.append(sum(hits) / k)
        rec.append(sum(hits) / len(rel))
        dcg = sum(1 / math.log2(i + 2) for i, h in enumerate(hits) if h)
        ndcg.append(dcg / sum(1 / math.log2(i + 2) for i in range(min(len(rel), k))))
    assert got["precision_at_k"] == pytest.approx(np.mean(prec))
    assert got["recall_at_k"] == pytest.approx(np.mean(rec))
    assert got["ndcg_at_k"] == pytest.approx(np.mean(ndcg))
    y = lab[held]
    assert got["mae"] == pytest.approx(np.abs(score[cols[held]] - y).mean(), rel=1e-5)


def test_bad_arguments() -> None:
    f = planted_frame(n_users=20, seed=1)
    with pytest.raises(ValueError, match="unknown recommendation model"):
        evaluate_recs(f, "svd")
    with pytest.raises(ValueError):
        evaluate_recs(f, "popularity", k=0)
    with pytest.raises(ValueError):
        evaluate_recs(f, "popularity", fraction=1.5)

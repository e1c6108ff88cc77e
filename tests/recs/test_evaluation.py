"""Held-out recommendation metrics: the split, the leaderboard, the baselines, an oracle check of the metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flowtui.core import registry
from flowtui.core.errors import ParamError
from flowtui.core.recs.evaluation import (
    METRICS,
    evaluate_recs,
    holdout,
    leaderboard,
    planted_frame,
    split_entries,
)
from flowtui.core.recs.interactions import InteractionMatrix, recommender_matrix
from tests.recs.conftest import block_frame

KEYS = {"model", "mae", "auc", "precision_at_k", "recall_at_k", "ndcg_at_k", "k", "coverage", "fit_seconds"}
ITEM_MEAN_SMOOTHING = 5.0


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
    params = {"batch_size": 32, "n_iter": 12, "n_components": 16, "device": "cpu", "exposure_weight": 0.0}
    res = {
        m: evaluate_recs(f, m, 10, params if m == "rbm" else None) for m in ("rbm", "popularity", "item_mean")
    }
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
    with pytest.raises(ValueError, match="unknown recommender svd"):
        evaluate_recs(f, "svd")
    with pytest.raises(ValueError, match="k must be"):
        evaluate_recs(f, "popularity", k=0)
    with pytest.raises(ValueError, match="fraction"):
        evaluate_recs(f, "popularity", fraction=1.5)
    with pytest.raises(ParamError, match=r"ease\.l2 must be a number > 0"):
        leaderboard(f, ["ease"], params={"ease": {"l2": "-1"}})
    with pytest.raises(ValueError, match="seeds"):
        leaderboard(f, ["popularity"], seeds=0)
    with pytest.raises(ValueError, match="not evaluated"):
        leaderboard(f, ["popularity"], params={"ease": {"l2": "1"}})


def test_leaderboard_compares_every_model_on_the_same_splits_over_seeds() -> None:
    f = block_frame(n_users=90)
    board = leaderboard(f, ["popularity", "ease", "item_knn", "item_mean"], k=5, seeds=3, seed=4)
    doc = board.to_dict()
    assert doc["setup"]["seeds"] == [4, 5, 6] and not doc["setup"]["implicit"]
    assert len(doc["setup"]["n_heldout"]) == 3
    rows = {r["model"]: r for r in doc["leaderboard"]}
    assert set(rows) == {"popularity", "ease", "item_knn", "item_mean"}
    for r in rows.values():
        assert set(METRICS) <= set(r) and len(r["per_seed"]) == 3
        assert r["ndcg_at_k_std"] is not None and r["ndcg_at_k_std"] >= 0
        assert 0 < r["coverage"] <= 1 and r["auc"] is not None
        vals = [s["ndcg_at_k"] for s in r["per_seed"]]
        assert r["ndcg_at_k"] == pytest.approx(np.mean(vals))
    assert rows["ease"]["mae"] is None and rows["item_mean"]["mae"] is not None
    ndcg = [r["ndcg_at_k"] for r in doc["leaderboard"]]
    assert ndcg == sorted(ndcg, reverse=True)  # best first
    assert (
        rows["ease"]["ndcg_at_k"] > rows["popularity"]["ndcg_at_k"] + 3 * rows["popularity"]["ndcg_at_k_std"]
    )


def test_plays_only_data_is_implicit_and_skips_label_models() -> None:
    f = block_frame(n_users=60, implicit=True)
    board = leaderboard(f, ["popularity", "item_mean"], seeds=1)
    assert board.setup["implicit"] and list(board.skipped) == ["item_mean"]
    (row,) = board.rows
    assert row["auc"] is None and row["mae"] is None and row["ndcg_at_k"] is not None
    forced = leaderboard(block_frame(n_users=60), ["popularity"], seeds=1, implicit=True)
    assert forced.setup["implicit"]


def test_validation_split_never_touches_the_test_entries() -> None:
    m = recommender_matrix(block_frame(n_users=60))
    train, test = holdout(m, 0.2, "random", seed=1)
    vtrain, val = holdout(m, 0.2, "random", seed=1, validation=True)
    as_set = lambda x: set(zip(x.entry_rows().tolist(), x.labels.indices.tolist(), strict=True))  # noqa: E731
    assert as_set(vtrain) | as_set(val) == as_set(train)
    assert not (as_set(vtrain) | as_set(val)) & as_set(test)
    assert as_set(val) and not as_set(vtrain) & as_set(val)


def test_every_registered_recommender_is_on_the_default_leaderboard() -> None:
    f = block_frame(n_users=30, per_block=10, plays=6)
    fast = {
        "rbm": {"n_iter": 1, "exposure_n_iter": 1, "device": "cpu"},
        "dbn": {"n_iter": 1, "exposure_n_iter": 1, "device": "cpu"},
    }
    board = leaderboard(f, None, seeds=1, preset="quick", params=fast)
    assert {r["model"] for r in board.rows} == set(registry.recommender_names())

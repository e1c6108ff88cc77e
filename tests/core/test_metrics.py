"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from flowtui.core.metrics import (
    accuracy,
    auc,
    logloss,
    mae,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    roc_curve_points,
    top_k,
)

Y = np.array([0, 0, 1, 1])
P = np.array([0.1, 0.4, 0.35, 0.8])


def test_classification_metrics_by_hand() -> None:
    # Pairs (pos, neg): (0.35 vs 0.1) ok, (0.35 vs 0.4) wrong, (0.8 vs both) ok -> 3/4.
    assert auc(Y, P) == pytest.approx(0.75)
    assert auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)  # ties count half
    want = -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    assert logloss(Y, P) == pytest.approx(want)
    assert accuracy(Y, P) == pytest.approx(0.75)  # 0.1 ok, 0.4 ok, 0.35 wrong, 0.8 ok
    assert accuracy(Y, P, threshold=0.38) == pytest.approx(0.5)  # 0.4 and 0.35 both wrong
    assert mae(Y, P) == pytest.approx((0.1 + 0.4 + 0.65 + 0.2) / 4)


def test_degenerate_inputs() -> None:
    assert math.isnan(auc([1, 1, 1], [0.2, 0.3, 0.9]))
    assert math.isnan(auc([], []))
    assert logloss([1, 0], [1.0, 0.0]) == pytest.approx(0.0, abs=1e-12)  # clipped, finite
    assert math.isfinite(logloss([0, 1], [1.0, 0.0]))
    assert math.isnan(mae([], []))
    with pytest.raises(ValueError):
        auc([0, 1], [0.5])


def test_roc_curve_points() -> None:
    fpr, tpr = roc_curve_points(Y, P, n=5)
    np.testing.assert_allclose(fpr, [0, 0.25, 0.5, 0.75, 1])
    # Thresholds 0.8 -> (0, .5); 0.4 -> (.5, .5); 0.35 -> (.5, 1); 0.1 -> (1, 1).
    np.testing.assert_allclose(tpr, [0.5, 0.5, 1, 1, 1])
    # The area under the sampled curve approaches the AUC.
    f, t = roc_curve_points(Y, P, n=1001)
    assert np.trapezoid(t, f) == pytest.approx(auc(Y, P), abs=0.01)
    assert roc_curve_points([1, 1], [0.1, 0.2])[0].size == 0


def test_top_k_excludes_and_pads() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [0.3, 0.2, 0.1, 0.0]])
    np.testing.assert_array_equal(top_k(scores, 2), [[1, 3], [0, 1]])
    exclude = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 1, 1, 0]]))
    np.testing.assert_array_equal(top_k(scores, 3, exclude=exclude), [[3, 2, 0], [3, -1, -1]])


def test_ranking_metrics_by_hand() -> None:
    top = np.array([[2, 0, 1], [3, 1, -1], [0, 1, 2]])
    relevant = sp.csr_matrix(
        np.array(
            [
                [1, 0, 0, 1],  # user 0: items 0 and 3; hit at rank 2
                [0, 1, 0, 0],  # user 1: item 1; hit at rank 2
                [0, 0, 0, 0],  # user 2: nothing held out -> skipped
            ]
        )
    )
    k = 3
    assert precision_at_k(top, relevant, k) == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert recall_at_k(top, relevant, k) == pytest.approx((1 / 2 + 1) / 2)
    d = 1 / math.log2(3)
    ndcg0 = d / (1 + 1 / math.log2(3))  # ideal: two hits at ranks 1, 2
    ndcg1 = d / 1.0
    assert ndcg_at_k(top, relevant, k) == pytest.approx((ndcg0 + ndcg1) / 2)
    # Dense input gives the same; k=1 only looks at the first column.
    assert ndcg_at_k(top, relevant.toarray(), k) == pytest.approx((ndcg0 + ndcg1) / 2)
    assert precision_at_k(top, relevant, 1) == 0.0
    perfect = np.array([[0, 3, 1], [1, 0, 2], [0, 1, 2]])
    assert ndcg_at_k(perfect, relevant, k) == pytest.approx(1.0)
    assert math.isnan(recall_at_k(top, sp.csr_matrix((3, 4)), k))
    with pytest.raises(ValueError):
        precision_at_k(top, relevant, k=5)

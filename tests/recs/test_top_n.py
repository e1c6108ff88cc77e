"""`top_n`: the shared top-N with exclusions and filters, against a brute-force sort."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from flowtui.core.recs.recommender import top_n


def brute(scores: np.ndarray, n: int, banned: np.ndarray) -> list[list[int]]:
    out = []
    for row, ban in zip(scores, banned, strict=True):
        cand = [c for c in range(len(row)) if not ban[c]]
        out.append(sorted(cand, key=lambda c: (-row[c], c))[:n])
    return out


def test_matches_a_full_sort_with_ties_exclusions_and_filters() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, (40, 30)).astype(np.float32)  # many ties
    exclude = sp.random(40, 30, density=0.3, random_state=1, format="csr")
    allowed = rng.random(30) < 0.7
    banned = (exclude.toarray() != 0) | ~allowed[None, :]
    for n in (1, 5, 12, 30):
        idx, vals = top_n(scores, n, exclude=exclude, allowed=allowed)
        for row, want, v, s in zip(idx, brute(scores, n, banned), vals, scores, strict=True):
            got = row[row >= 0].tolist()
            assert got == want
            assert (row[len(got) :] == -1).all() and np.array_equal(v[: len(got)], s[got])


def test_edge_cases() -> None:
    idx, vals = top_n(np.array([[0.5, np.nan, 0.7]]), 5)
    assert idx.tolist() == [[2, 0, -1]] and vals.tolist()[0][:2] == [np.float32(0.7), 0.5]
    idx, _ = top_n(np.zeros((0, 4)), 3)
    assert idx.shape == (0, 3)
    idx, _ = top_n(np.ones((2, 3)), 0)
    assert idx.shape == (2, 0)
    idx, _ = top_n(np.ones((1, 3)), 2, exclude=np.array([[True, False, False]]))
    assert idx.tolist() == [[1, 2]]

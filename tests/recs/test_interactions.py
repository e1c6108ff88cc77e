"""The sparse user-by-item matrix: labels, masks, vocabulary, index maps, implicit mode."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flowtui.core.errors import DataError
from flowtui.core.recs.interactions import InteractionMatrix, has_labels, recommender_matrix


def _frame(rows: list[tuple[int, int, int, float]]) -> pd.DataFrame:
    u, m, ts, y = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "user_id": u,
            "media_id": m,
            "ts_listen": ts,
            "is_listened": y,
            "artist_id": [x // 10 for x in m],
            "genre_id": [x % 2 for x in m],
            "album_id": [x // 5 for x in m],
        }
    )


ROWS = [
    (1, 10, 3, 1),
    (1, 10, 5, 0),  # latest label of (1, 10) is 0
    (1, 10, 4, 1),
    (1, 11, 1, 0),  # a skip is stored as an explicit 0
    (2, 10, 2, 1),
    (2, 12, 2, 1),
    (3, 13, 9, 1),
]


def dense(m: InteractionMatrix) -> tuple[np.ndarray, np.ndarray]:
    return m.labels.toarray(), m.mask.toarray()


def test_latest_label_and_explicit_zeros() -> None:
    m = InteractionMatrix.from_frame(_frame(ROWS))
    assert list(m.user_ids) == [1, 2, 3]
    assert list(m.item_ids) == [10, 11, 12, 13]
    lab, mask = dense(m)
    assert mask.tolist() == [[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]]
    assert lab[0].tolist() == [0, 0, 0, 0]
    assert lab[1].tolist() == [1, 0, 1, 0]
    # skips survive as stored entries: labels and mask share one structure
    assert m.labels.nnz == m.mask.nnz == 5
    assert np.array_equal(m.labels.indices, m.mask.indices)
    assert m.last_ts[0] == 5  # (1, 10): its latest row


@pytest.mark.parametrize(("rule", "expected"), [("majority", 1.0), ("mean", 2 / 3)])
def test_majority_and_mean_labels(rule: str, expected: float) -> None:
    m = InteractionMatrix.from_frame(_frame(ROWS), label=rule)  # type: ignore[arg-type]
    assert m.labels[0, 0] == pytest.approx(expected)


def test_vocabulary_cap_min_count_and_lookups() -> None:
    m = InteractionMatrix.from_frame(_frame(ROWS), max_items=1)
    assert list(m.item_ids) == [10]  # 4 rows: the most played
    assert m.item_counts.tolist() == [4]
    m2 = InteractionMatrix.from_frame(_frame(ROWS), min_count=2)
    assert list(m2.item_ids) == [10]
    assert m.item_index([10, 99]).tolist() == [0, -1]
    assert m.user_index([3, 1, 7]).tolist() == [2, 0, -1]
    # user 3 rated only a dropped item: kept as an empty row
    assert m.labels[2].nnz == 0


def test_fixed_vocabulary_and_users() -> None:
    m = InteractionMatrix.from_frame(_frame(ROWS), items=np.array([12, 13, 77]), users=np.array([2, 3]))
    assert m.shape == (2, 3)
    _, mask = dense(m)
    assert mask.tolist() == [[1, 0, 0], [0, 1, 0]]
    assert m.item_counts.tolist() == [1, 1, 0]


def test_unlabelled_rows_are_ignored() -> None:
    f = _frame([*ROWS, (4, 10, 1, np.nan)])
    m = InteractionMatrix.from_frame(f)
    assert 4 not in m.user_ids.tolist()


def test_item_levels() -> None:
    m = InteractionMatrix.from_frame(_frame(ROWS), level="artist", label="mean")
    assert list(m.item_ids) == [1]
    assert m.labels[0, 0] == pytest.approx(0.5)  # user 1: 4 rows of artist 1, 2 listened
    with pytest.raises(DataError):
        InteractionMatrix.from_frame(_frame(ROWS), level="track")  # type: ignore[arg-type]


def test_implicit_mode_marks_everything_positive() -> None:
    f = _frame(ROWS).drop(columns="is_listened")
    m = InteractionMatrix.from_frame(f, implicit=True, implicit_weight=0.2)
    assert m.implicit_weight == 0.2
    assert set(m.labels.data.tolist()) == {1.0}
    with pytest.raises(DataError):
        InteractionMatrix.from_frame(f)  # explicit mode needs is_listened


def test_select_entries_partitions_the_matrix() -> None:
    m = InteractionMatrix.from_frame(_frame(ROWS))
    keep = np.array([True, False, True, False, True])
    a, b = m.select_entries(keep), m.select_entries(~keep)
    assert a.nnz + b.nnz == m.nnz
    assert np.array_equal(a.labels.toarray() + b.labels.toarray(), m.labels.toarray())
    assert np.array_equal(a.mask.toarray() + b.mask.toarray(), m.mask.toarray())
    n, s = m.item_stats()
    assert n.tolist() == [2, 1, 1, 1] and s.tolist() == [1, 0, 1, 1]


def test_played_matrix_weighs_skips() -> None:
    m = InteractionMatrix.from_frame(_frame(ROWS))
    labels = m.labels.toarray()
    seen = m.mask.toarray() > 0
    half = m.played(0.5).toarray()
    assert np.array_equal(half[seen], np.where(labels[seen] == 1, 1.0, 0.5))
    assert (half[~seen] == 0).all()
    dropped = m.played(0.0)
    assert dropped.nnz == int((labels[seen] == 1).sum()) and set(dropped.data.tolist()) == {1.0}
    plays = InteractionMatrix.from_frame(_frame(ROWS), implicit=True)
    assert plays.is_implicit and not m.is_implicit
    assert set(plays.played(0.0).data.tolist()) == {1.0} and plays.played(0.0).nnz == plays.nnz


def test_from_entries_builds_a_history_over_a_vocabulary() -> None:
    items = np.array([10, 11, 12, 13])
    h = InteractionMatrix.from_entries(
        items, [0, 0, 1, 0], [2, 0, 3, 2], [1, 0, 1, 0], user_ids=np.array([7, 9])
    )
    assert h.shape == (2, 4) and h.user_ids.tolist() == [7, 9]
    assert (
        h.labels.toarray().tolist() == [[0, 0, 0, 0], [0, 0, 0, 1]] and h.nnz == 3
    )  # a duplicate keeps its last
    assert h.mask.toarray().tolist() == [[1, 0, 1, 0], [0, 0, 0, 1]]
    with pytest.raises(ValueError, match="item columns"):
        InteractionMatrix.from_entries(items, [0], [4])


def test_recommender_matrix_detects_plays_only_logs() -> None:
    f = _frame(ROWS)
    assert has_labels(f) and not recommender_matrix(f).is_implicit
    plays = f.assign(is_listened=1)
    assert not has_labels(plays) and recommender_matrix(plays).is_implicit
    assert not recommender_matrix(plays, implicit=False).is_implicit
    assert recommender_matrix(f, max_items=2).shape[1] == 2


def test_played_without_skips_leaves_the_matrix_whole() -> None:
    """played(0) drops skipped entries into NEW arrays: the labels and mask keep every entry (an in-place
    eliminate_zeros once corrupted the matrix every later model of a leaderboard learnt)."""
    from flowtui.core.recs.evaluation import planted_frame
    from flowtui.core.recs.interactions import recommender_matrix

    m = recommender_matrix(planted_frame(n_users=60, seed=2))
    before = (m.labels.indptr.copy(), m.labels.indices.copy(), m.mask.indptr.copy())
    X = m.played(0.0)
    assert X.nnz == int((m.labels.data == 1).sum()) < m.nnz
    assert all(
        np_equal(a, b)
        for a, b in zip(before, (m.labels.indptr, m.labels.indices, m.mask.indptr), strict=True)
    )
    assert m.labels.has_canonical_format and m.labels.nnz == len(m.labels.data)
    dense = m.labels.toarray()
    assert np_equal(X.toarray() > 0, dense == 1)


def np_equal(a: object, b: object) -> bool:
    import numpy as np

    return bool(np.array_equal(a, b))  # type: ignore[arg-type]

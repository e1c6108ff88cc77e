"""The sparse user-by-item matrix every recommender learns from: 1 listened, 0 skipped, unseen masked.

Each (user, item) pair seen in the log becomes one stored entry; pairs never seen are not stored (masked).
`labels` and `mask` are CSR matrices with the SAME sparsity structure (explicit zeros are kept in
`labels`): `labels[u, i]` is the label, `mask[u, i]` the weight of the entry (1.0 for explicit data).
An implicit log (play counts, likes: every row is a positive) sets `implicit_weight`: the RBM then treats
every unseen entry as a weak negative of that weight, and `is_implicit` tells the other recommenders and
the evaluation that there are no listen/skip labels. `played(skip_weight)` is the matrix the implicit
peers (EASE, ALS, item kNN, popularity) learn: every observed entry a play, a skip weighted `skip_weight`.
`item_groups` maps a catalogue level ("artist", "album") to each item's group index, where the log names
them and some group holds several items (the RBM's catalogue context reads it).
`counts` holds each entry's summed `plays` weight (a train file's optional column: play count, rating,
seconds played) when the frame has one, None otherwise; `played(skip_weight, transform)` and `weigh_rows`
turn it into the weighted matrix X = f(count) of the `TRANSFORMS` (binary: every count 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, get_args

import numpy as np
import pandas as pd
import scipy.sparse as sp

from flowtui.core.data.schema import PLAYS
from flowtui.core.errors import DataError

Level = Literal["media", "artist", "album", "genre"]
LabelRule = Literal["latest", "majority", "mean"]
#: How a play count becomes an entry's weight: 1 (binary), log(1 + count) (log1p), or Okapi BM25 with
#: items as documents and users as terms (bm25, implicit's `bm25_weight`: a count saturates with K1, is
#: damped on items with many plays by B, and weighs less for a user who plays many items).
Transform = Literal["binary", "log1p", "bm25"]
TRANSFORMS: tuple[str, ...] = get_args(Transform)
BM25_K1, BM25_B = 100.0, 0.8
LEVEL_COLUMNS: dict[str, str] = {
    "media": "media_id",
    "artist": "artist_id",
    "album": "album_id",
    "genre": "genre_id",
}


@dataclass
class InteractionMatrix:
    """Users x items, sparse. Row `u` is user `user_ids[u]`, column `i` item `item_ids[i]`."""

    labels: sp.csr_matrix  # float32; 1 listened, 0 skipped (explicit zeros kept), same structure as mask
    mask: sp.csr_matrix  # float32 weights of the observed entries
    user_ids: np.ndarray  # sorted, int64
    item_ids: np.ndarray  # sorted, int64
    item_counts: np.ndarray  # rows per item in the source frame (the vocabulary ranking)
    last_ts: np.ndarray  # latest ts_listen of each stored entry, aligned with labels.data
    level: str = "media"
    implicit_weight: float | None = None
    item_groups: dict[str, np.ndarray] = field(default_factory=dict)
    counts: np.ndarray | None = None  # float64 summed plays of each stored entry, aligned with labels.data

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.user_ids), len(self.item_ids))

    @property
    def nnz(self) -> int:
        return int(self.labels.nnz)

    @property
    def is_implicit(self) -> bool:
        """True for implicit data (every entry a play, no listen/skip labels)."""
        return self.implicit_weight is not None

    def entry_weights(self, transform: str, item_norm: np.ndarray | None = None) -> np.ndarray | None:
        """f(count) of every stored entry (aligned with `labels.data`), float32; None for "binary" or when
        the matrix holds no counts (every transform is then binary). bm25 uses `item_norm` (the training
        matrix's `bm25_item_norm`), this matrix's own when None."""
        if transform == "binary" or self.counts is None:
            return None
        if transform == "bm25" and item_norm is None:
            item_norm = bm25_item_norm(self)
        return count_weights(self.counts, self.labels.indptr, self.labels.indices, transform, item_norm)

    def played(self, skip_weight: float = 1.0, transform: str = "binary") -> sp.csr_matrix:
        """The observed entries as plays, float32 CSR: a listened entry 1, a skipped one `skip_weight`
        (dropped when 0); soft labels (label="mean") interpolate. Implicit data: every entry 1. With counts,
        each entry is then multiplied by f(count) of the `transform` (entries of weight 0 dropped)."""
        if self.is_implicit:
            data = np.ones(self.nnz, np.float32)
        else:
            y = self.labels.data.astype(np.float32)
            data = y + np.float32(skip_weight) * (1.0 - y)
        weights = self.entry_weights(transform)
        if weights is not None:
            data = data * weights
        if (not skip_weight and not self.is_implicit) or weights is not None:
            # filter into new arrays: eliminate_zeros() works in place and would corrupt the structure
            # that `labels` and `mask` share with the result
            keep = data != 0
            indptr = np.zeros(self.shape[0] + 1, np.int64)
            np.cumsum(np.bincount(self.entry_rows()[keep], minlength=self.shape[0]), out=indptr[1:])
            return sp.csr_matrix((data[keep], self.labels.indices[keep], indptr), shape=self.shape)
        return sp.csr_matrix((data, self.labels.indices.copy(), self.labels.indptr.copy()), shape=self.shape)

    @classmethod
    def from_entries(
        cls,
        item_ids: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        labels: np.ndarray | None = None,
        *,
        user_ids: np.ndarray | None = None,
        level: str = "media",
        implicit_weight: float | None = None,
    ) -> InteractionMatrix:
        """A matrix over the vocabulary `item_ids` holding the entries (rows[j], cols[j]) labelled
        `labels[j]` (1 when None); `user_ids` name the rows (0..max(rows) when None). Duplicate entries keep
        their last label. How a new user's stated tastes become a history a model can score."""
        rows = np.asarray(rows, np.int64)
        cols = np.asarray(cols, np.int64)
        y = np.ones(len(rows), np.float32) if labels is None else np.asarray(labels, np.float32)
        n_users = int(rows.max()) + 1 if user_ids is None and len(rows) else 0
        uids = np.arange(n_users, dtype=np.int64) if user_ids is None else np.asarray(user_ids, np.int64)
        n_items = len(item_ids)
        if len(cols) and (cols.min() < 0 or cols.max() >= n_items):
            raise ValueError(f"item columns must lie in 0..{n_items - 1}")
        if len(rows) and (rows.min() < 0 or rows.max() >= len(uids)):
            raise ValueError(f"rows must lie in 0..{len(uids) - 1}")
        key, val, _ = _pair_labels(rows * max(n_items, 1) + cols, y, np.arange(len(rows)), "latest")
        r, c = key // max(n_items, 1), key % max(n_items, 1)
        indptr = np.zeros(len(uids) + 1, np.int64)
        np.cumsum(np.bincount(r, minlength=len(uids)), out=indptr[1:])
        shape = (len(uids), n_items)
        return cls(
            labels=sp.csr_matrix((val.astype(np.float32), c.astype(np.int32), indptr), shape=shape),
            mask=sp.csr_matrix((np.ones(len(val), np.float32), c.astype(np.int32), indptr), shape=shape),
            user_ids=uids,
            item_ids=np.asarray(item_ids, np.int64),
            item_counts=np.zeros(n_items, np.int64),
            last_ts=np.zeros(len(val), np.int64),
            level=level,
            implicit_weight=implicit_weight,
        )

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        level: Level = "media",
        *,
        max_items: int | None = 50_000,
        min_count: int = 1,
        label: LabelRule = "latest",
        items: np.ndarray | None = None,
        users: np.ndarray | None = None,
        implicit: bool = False,
        implicit_weight: float = 0.1,
    ) -> InteractionMatrix:
        """Build the matrix from DSG17 rows (needs user_id, the level's column, is_listened, ts_listen).

        `label` picks the value of a pair seen several times: "latest" (the label of its last row, by
        ts_listen), "majority" (1 when at least half of its rows were listened) or "mean" (the listen rate,
        a soft label in [0, 1]). The vocabulary is the `max_items` items with most rows among those with at
        least `min_count` rows, unless `items` fixes it (rows of other items are dropped). `users` fixes the
        row order likewise (rows of other users are dropped). `implicit=True` reads every row as a positive
        and marks unseen entries as negatives of weight `implicit_weight`.
        """
        user, item, y, ts, plays = _read_rows(frame, level, implicit)
        vocab, counts = _vocabulary(item, items, max_items, min_count)
        uvocab = np.unique(user) if users is None else np.asarray(users, dtype=np.int64)
        icode = _lookup(vocab, item)
        ucode = _lookup(uvocab, user)
        keep_rows = (icode >= 0) & (ucode >= 0)
        icode, ucode, y, ts = icode[keep_rows], ucode[keep_rows], y[keep_rows], ts[keep_rows]

        n_items = len(vocab)
        ukey, val, last_ts = _pair_labels(ucode * max(n_items, 1) + icode, y, ts, label)
        if plays is not None:  # a pair's plays summed over its rows (keys are unique and sorted alike)
            _, inverse = np.unique(ucode * max(n_items, 1) + icode, return_inverse=True)
            plays = np.bincount(inverse, weights=plays[keep_rows], minlength=len(ukey))
        rows = ukey // max(n_items, 1)
        cols = ukey % max(n_items, 1)
        # keys are sorted, so entries are already in CSR order (row, then column)
        indptr = np.zeros(len(uvocab) + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=len(uvocab)), out=indptr[1:])
        shape = (len(uvocab), n_items)
        labels = sp.csr_matrix((val.astype(np.float32), cols.astype(np.int32), indptr), shape=shape)
        mask = sp.csr_matrix((np.ones(len(val), np.float32), cols.astype(np.int32), indptr), shape=shape)
        return cls(
            labels=labels,
            mask=mask,
            user_ids=uvocab,
            item_ids=vocab,
            item_counts=counts,
            last_ts=np.asarray(last_ts, np.int64),
            level=level,
            implicit_weight=implicit_weight if implicit else None,
            item_groups=_item_groups(frame, level, vocab),
            counts=plays,
        )

    def weigh_rows(
        self,
        X: sp.csr_matrix,
        rows: np.ndarray,
        transform: str,
        columns: np.ndarray | None = None,
        item_norm: np.ndarray | None = None,
    ) -> sp.csr_matrix:
        """`X` (the played rows `rows` of this matrix, e.g. from `recommender.played_rows`, with the same
        `columns` map) multiplied by f(count) of its entries (bm25: with the training `item_norm`); `X`
        itself when there are no counts."""
        if transform == "binary" or self.counts is None:
            return X
        W = sp.csr_matrix((self.counts, self.labels.indices, self.labels.indptr), shape=self.shape)[rows]
        if transform == "bm25" and item_norm is None:
            item_norm = bm25_item_norm(self)
        W.data = count_weights(W.data, W.indptr, W.indices, transform, item_norm)
        if columns is not None:
            kept = np.flatnonzero(columns >= 0)
            order = np.empty(len(kept), np.int64)
            order[columns[kept]] = kept
            W = W[:, order]
        out: sp.csr_matrix = sp.csr_matrix(X.multiply(W), dtype=np.float32)
        out.eliminate_zeros()
        return out

    def user_index(self, user_ids: np.ndarray | list[int] | int) -> np.ndarray:
        """Row of each user id, -1 for a user not in the matrix."""
        return _lookup(self.user_ids, np.atleast_1d(np.asarray(user_ids, dtype=np.int64)))

    def item_index(self, item_ids: np.ndarray | list[int] | int) -> np.ndarray:
        """Column of each item id, -1 for an item outside the vocabulary."""
        return _lookup(self.item_ids, np.atleast_1d(np.asarray(item_ids, dtype=np.int64)))

    def select_entries(self, keep: np.ndarray) -> InteractionMatrix:
        """A matrix with the same users and items holding only the entries where `keep` (aligned with
        `labels.data`) is True: how held-out splits are made."""
        keep = np.asarray(keep, bool)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.labels.indptr))[keep]
        indptr = np.zeros(self.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=self.shape[0]), out=indptr[1:])
        cols = self.labels.indices[keep]
        labels = sp.csr_matrix((self.labels.data[keep], cols, indptr), shape=self.shape)
        mask = sp.csr_matrix((self.mask.data[keep], cols, indptr), shape=self.shape)
        counts = None if self.counts is None else self.counts[keep]
        return replace(self, labels=labels, mask=mask, last_ts=self.last_ts[keep], counts=counts)

    def as_played(self, implicit_weight: float) -> InteractionMatrix:
        """The same entries, every one labelled 1 (played), unseen entries weak negatives of that weight:
        the input of an exposure model (what a user plays at all, listened or skipped)."""
        ones = sp.csr_matrix(
            (np.ones(self.nnz, np.float32), self.labels.indices, self.labels.indptr), shape=self.shape
        )
        return replace(self, labels=ones, implicit_weight=implicit_weight)

    def entry_rows(self) -> np.ndarray:
        """The row (user index) of every stored entry, aligned with `labels.data`."""
        return np.repeat(np.arange(self.shape[0]), np.diff(self.labels.indptr))

    def item_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per item: number of stored entries (users who rated it) and sum of their labels."""
        n = np.bincount(self.labels.indices, minlength=self.shape[1]).astype(np.float64)
        s = np.bincount(self.labels.indices, weights=self.labels.data, minlength=self.shape[1])
        return n, s


def _read_rows(
    frame: pd.DataFrame, level: str, implicit: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(user, item, label, ts_listen, plays or None) of each labelled row (every row when `implicit`,
    labelled 1)."""
    if level not in LEVEL_COLUMNS:
        raise DataError(None, f"unknown item level {level!r}", expected=", ".join(LEVEL_COLUMNS))
    col = LEVEL_COLUMNS[level]
    needed = ["user_id", col] + ([] if implicit else ["is_listened"])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(None, "cannot build the interaction matrix", expected=", ".join(missing))
    user = frame["user_id"].to_numpy(np.int64)
    item = frame[col].to_numpy(np.int64)
    ts = (
        frame["ts_listen"].to_numpy(np.int64)
        if "ts_listen" in frame.columns
        else np.arange(len(frame), dtype=np.int64)
    )
    plays = frame[PLAYS].to_numpy(np.float64) if PLAYS in frame.columns else None
    if implicit:
        return user, item, np.ones(len(frame), np.float32), ts, plays
    y = frame["is_listened"].to_numpy(np.float32)
    ok = ~np.isnan(y)  # rows without a label (targets) never contribute
    return user[ok], item[ok], y[ok], ts[ok], None if plays is None else plays[ok]


def _vocabulary(
    item: np.ndarray, items: np.ndarray | None, max_items: int | None, min_count: int
) -> tuple[np.ndarray, np.ndarray]:
    """(sorted item ids, rows of each): `items` when given, else the `max_items` items with most rows among
    those with at least `min_count` rows."""
    all_items, item_rows = np.unique(item, return_counts=True)
    if items is None:
        keep = item_rows >= min_count
        cand, cand_counts = all_items[keep], item_rows[keep]
        if max_items is not None and len(cand) > max_items:
            # most rows first, ties by id so the vocabulary is deterministic
            top = np.lexsort((cand, -cand_counts))[:max_items]
            cand = cand[top]
        vocab = np.sort(cand)
    else:
        vocab = np.asarray(items, dtype=np.int64)
    counts = np.zeros(len(vocab), np.int64)
    pos = np.searchsorted(all_items, vocab)
    pos_ok = pos < len(all_items)
    hit = np.zeros(len(vocab), bool)
    hit[pos_ok] = all_items[pos[pos_ok]] == vocab[pos_ok]
    counts[hit] = item_rows[pos[hit]]
    return vocab, counts


def _pair_labels(
    key: np.ndarray, y: np.ndarray, ts: np.ndarray, label: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One entry per distinct (user, item) `key`: (sorted keys, their label by the `label` rule, latest ts)."""
    order = np.lexsort((ts, key))
    key, y, ts = key[order], y[order], ts[order]
    first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(key)]
    last_ts = ts[ends - 1] if len(key) else np.zeros(0, np.int64)
    if label == "latest":
        val = y[ends - 1] if len(key) else np.zeros(0, np.float32)
    else:
        sums = np.add.reduceat(y, starts) if len(key) else np.zeros(0, np.float32)
        mean = sums / (ends - starts)
        if label == "majority":
            val = (mean >= 0.5).astype(np.float32)
        elif label == "mean":
            val = mean.astype(np.float32)
        else:
            raise DataError(None, f"unknown label rule {label!r}", expected="latest, majority or mean")
    return key[starts], val, last_ts


#: Catalogue levels above a media whose groups the matrix records (see `item_groups`).
GROUP_LEVELS = ("artist", "album")


def _item_groups(frame: pd.DataFrame, level: str, vocab: np.ndarray) -> dict[str, np.ndarray]:
    """Each vocabulary media's group index (0..n_groups-1) per catalogue level the frame names, the group of
    a media's first row; a level is left out when every group holds one item (e.g. an imported log whose
    artist is the item itself), or when some media has no row (a fixed vocabulary)."""
    if level != "media" or len(vocab) == 0 or "media_id" not in frame.columns:
        return {}
    levels = [name for name in GROUP_LEVELS if LEVEL_COLUMNS[name] in frame.columns]
    if not levels:
        return {}
    ids, first = np.unique(frame["media_id"].to_numpy(np.int64), return_index=True)
    pos = _lookup(ids, vocab)
    if (pos < 0).any():
        return {}
    rows = first[pos]  # each vocabulary media's first row
    out: dict[str, np.ndarray] = {}
    for name in levels:
        groups = frame[LEVEL_COLUMNS[name]].to_numpy()[rows]
        _, index = np.unique(groups, return_inverse=True)
        if index.max() + 1 < len(vocab):
            out[name] = index.astype(np.int64)
    return out


def bm25_item_norm(matrix: InteractionMatrix) -> np.ndarray:
    """BM25's length norm of each item (a document): (1 - B) + B * its plays / the mean plays of an item;
    ones without counts."""
    if matrix.counts is None:
        return np.ones(matrix.shape[1], np.float64)
    plays = np.bincount(matrix.labels.indices, weights=matrix.counts, minlength=matrix.shape[1])
    mean = plays.mean() if len(plays) else 0.0
    norm: np.ndarray = (1.0 - BM25_B) + BM25_B * plays / (mean if mean > 0 else 1.0)
    return norm


def count_weights(
    counts: np.ndarray, indptr: np.ndarray, indices: np.ndarray, transform: str, item_norm: np.ndarray | None
) -> np.ndarray:
    """f(count) of CSR entries (rows users, columns items), float32. bm25: count (K1 + 1) / (K1 norm[item] +
    count) times the user's idf, log(n_items) - log(1 + items the user played), never below 0."""
    weights: np.ndarray
    if transform == "log1p":
        weights = np.log1p(counts).astype(np.float32)
        return weights
    if transform == "bm25" and item_norm is not None:
        lengths = np.diff(indptr)
        idf = np.maximum(np.log(max(len(item_norm), 1)) - np.log1p(lengths), 0.0)
        tf = counts * (BM25_K1 + 1.0) / (BM25_K1 * item_norm[indices] + counts)
        weights = (tf * np.repeat(idf, lengths)).astype(np.float32)
        return weights
    raise ValueError(f"unknown count transform {transform!r}; expected one of {', '.join(TRANSFORMS)}")


def count_transform(matrix: InteractionMatrix, transform: str, model: str) -> tuple[str, str | None]:
    """(the transform a model fits with, a note when it falls back): binary when there are no counts."""
    if transform == "binary" or matrix.counts is not None:
        return transform, None
    return "binary", f"{model}: no play counts in the data (no plays column): transform={transform} is binary"


def _lookup(vocab: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Index of each id in the sorted `vocab`, -1 where absent."""
    if len(vocab) == 0:
        return np.full(len(ids), -1, np.int64)
    pos = np.searchsorted(vocab, ids)
    pos = np.minimum(pos, len(vocab) - 1)
    return np.where(vocab[pos] == ids, pos, -1).astype(np.int64)


#: Items the recommenders' matrix keeps by default (the most played).
MAX_ITEMS = 50_000


def has_labels(frame: pd.DataFrame) -> bool:
    """Does the frame hold listen/skip labels (some row skipped)? An imported log of plays only has none."""
    if "is_listened" not in frame.columns:
        return False
    y = frame["is_listened"].to_numpy(np.float64)
    return bool(np.nanmin(y, initial=1.0) < 1.0)


def recommender_matrix(
    frame: pd.DataFrame,
    *,
    implicit: bool | None = None,
    max_items: int | None = MAX_ITEMS,
    min_count: int = 1,
    label: LabelRule = "latest",
    items: np.ndarray | None = None,
) -> InteractionMatrix:
    """The user x media matrix every recommender learns: listen/skip labels when the frame has them
    (`implicit=None` decides: a frame whose rows are all listened is a log of plays), else implicit plays.
    The vocabulary is the `max_items` most played media (or `items`)."""
    if implicit is None:
        implicit = not has_labels(frame)
    return InteractionMatrix.from_frame(
        frame, "media", max_items=max_items, min_count=min_count, label=label, items=items, implicit=implicit
    )

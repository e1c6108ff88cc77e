"""Where the RBM's visible rows come from: a (masked) matrix densified one mini-batch at a time.

Visible units are Bernoulli, one per item; a user's row holds 1 (listened), 0 (skipped) or nothing
(never heard). A batch is handed to torch as spins s = 2 v - 1 on observed entries and 0 on unseen ones
(or -w, a weak negative, in implicit mode). Only a few `batch_size x n_items` float32 buffers are ever dense.
torch is imported lazily: importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from flowtui.core.recs.interactions import InteractionMatrix

if TYPE_CHECKING:
    import torch

#: Pseudo-entries at the overall rate added to each item's mean when initialising the visible biases.
BIAS_PRIOR = 5.0


def resolve_device(device: str = "auto") -> str:
    """ "auto" -> "cuda" when a CUDA device is available, else "cpu"; other values pass through."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@dataclass
class Batch:
    """A densified batch: spins `s0`; either the observed entries' flat positions `flat` (explicit data,
    all weights 1) or dense weights `m` (implicit or weighted data); None for both = fully observed."""

    s0: torch.Tensor
    m: torch.Tensor | None
    flat: torch.Tensor | None
    weight: float
    r: torch.Tensor | None = None  # each row's mean observed spin (the user's listen tendency), (B,)


class Source:
    """Rows of a (masked) visible matrix, densified one batch at a time as torch tensors."""

    def __init__(self, X: Any, mask: Any = None, implicit_weight: float = 0.0) -> None:
        if isinstance(X, InteractionMatrix):
            mask = X.mask if mask is None else mask
            if not implicit_weight and X.implicit_weight:
                implicit_weight = X.implicit_weight
            X = X.labels
        self.implicit_weight = float(implicit_weight or 0.0)
        if sp.issparse(X):
            self.sparse = True
            self.values = sp.csr_matrix(X, dtype=np.float32)
            # a sparse input without a mask: its stored entries are the observed ones
            self.mask = self.values if mask is None else sp.csr_matrix(mask, dtype=np.float32)
            if self.mask.nnz != self.values.nnz or not np.array_equal(self.mask.indices, self.values.indices):
                raise ValueError("mask and values must share one sparsity structure")
        else:
            self.sparse = False
            arr = X.detach().cpu().numpy() if hasattr(X, "detach") else np.asarray(X)
            self.dense = np.ascontiguousarray(arr, dtype=np.float32)
            self.dense_mask = None if mask is None else np.ascontiguousarray(mask, dtype=np.float32)
            if self.dense_mask is not None:
                self.dense = self.dense * (self.dense_mask > 0)  # unseen values can never leak in
        n_rows, n_features = X.shape
        self.n_rows, self.n_features = int(n_rows), int(n_features)
        self._bufs: dict[tuple[str, tuple[int, int], str], torch.Tensor] = {}

    def _buffer(self, name: str, shape: tuple[int, int], device: str) -> torch.Tensor:
        """A reused dense buffer: fresh 100 MB allocations cost page faults on every batch."""
        import torch

        key = (name, shape, device)
        buf = self._bufs.get(key)
        if buf is None:
            if len(self._bufs) > 4:
                self._bufs.clear()
            buf = self._bufs[key] = torch.empty(shape, dtype=torch.float32, device=device)
        return buf

    def batches(self, batch_size: int, device: str) -> Iterator[tuple[np.ndarray, Batch]]:
        """(row indices, batch) of consecutive rows, `batch_size` at a time (see `batch`)."""
        for start in range(0, self.n_rows, batch_size):
            idx = np.arange(start, min(start + batch_size, self.n_rows))
            yield idx, self.batch(idx, device)

    def batch(self, idx: np.ndarray, device: str) -> Batch:
        """The rows `idx` as weighted spins s0 = (2 v - 1) * m: +-1 observed, 0 unseen (-w in implicit mode).

        The returned tensors may be reused by the next call: consume them first."""
        import torch

        n = self.n_features
        if not self.sparse:
            v0 = torch.from_numpy(self.dense[idx]).to(device)
            if self.dense_mask is None:
                s0 = v0.mul_(2.0).sub_(1.0)
                return Batch(s0, None, None, float(s0.numel()), s0.mean(1))
            m = torch.from_numpy(self.dense_mask[idx]).to(device)
            s0 = v0.mul_(2.0).sub_(1.0).mul_(m)
            r = s0.sum(1) / (m > 0).sum(1).clamp_(min=1)
            return Batch(s0, m, None, float(m.sum()), r)
        sub_v = self.values[idx]
        rows = np.repeat(np.arange(len(idx), dtype=np.int64), np.diff(sub_v.indptr))
        flat = torch.from_numpy(rows * n + sub_v.indices.astype(np.int64)).to(device)
        spins = torch.from_numpy(sub_v.data.astype(np.float32)).to(device).mul_(2.0).sub_(1.0)
        w = None if self.mask is self.values else np.asarray(self.mask[idx].data, np.float32)
        wt = None if w is None or np.all(w == 1.0) else torch.from_numpy(np.ascontiguousarray(w)).to(device)
        counts = np.diff(sub_v.indptr)
        r_np = np.bincount(rows, weights=2.0 * sub_v.data - 1.0, minlength=len(idx)) / np.maximum(counts, 1)
        r = torch.from_numpy(r_np.astype(np.float32)).to(device)
        if wt is not None:
            spins.mul_(wt)
        # scatter the spins straight into one dense buffer: no dense copy of v itself
        s0 = self._buffer("s0", (len(idx), n), device).fill_(-self.implicit_weight)
        s0.view(-1)[flat] = spins
        if not self.implicit_weight and wt is None:
            return Batch(s0, None, flat, float(len(flat)), r)
        m = self._buffer("m", (len(idx), n), device).fill_(self.implicit_weight)
        m.view(-1)[flat] = wt if wt is not None else 1.0
        return Batch(s0, m, None, float(m.sum()), r)

    def visible_means(self) -> np.ndarray:
        """Smoothed mean label of each feature over its observed entries (the visible biases' start)."""
        if self.sparse:
            w = self.mask.data
            n = np.bincount(self.values.indices, weights=w, minlength=self.n_features)
            s = np.bincount(self.values.indices, weights=self.values.data * w, minlength=self.n_features)
            if self.implicit_weight:
                n = n + self.implicit_weight * (
                    self.n_rows - np.bincount(self.values.indices, minlength=self.n_features)
                )
        else:
            m = np.ones_like(self.dense) if self.dense_mask is None else self.dense_mask
            n = m.sum(0).astype(np.float64)
            s = (self.dense * m).sum(0).astype(np.float64)
        # shrunk towards the overall rate by BIAS_PRIOR pseudo-entries: most items have only a few entries
        overall = float(s.sum() / n.sum()) if n.sum() > 0 else 0.5
        return (s + BIAS_PRIOR * overall) / (n + BIAS_PRIOR)

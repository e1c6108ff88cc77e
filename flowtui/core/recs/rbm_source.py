"""Where the RBM's visible rows come from: a (masked) matrix handed to torch one mini-batch at a time.

Visible units are Bernoulli, one per item; a user's row holds 1 (listened), 0 (skipped) or nothing
(never heard). Units are spins s = 2 v - 1, weighted by the entry's mask weight m. A batch is kept
SPARSE: the observed entries' spins (a CSR structure), plus `fill`, the weight w of the unseen entries:
0 for masked (explicit) data, whose unseen entries are not part of the user's RBM at all, or w > 0 in
implicit mode, where every unseen entry is a weak negative (spin -w). Only a fully observed dense input
(no mask, e.g. a DBN's upper layers) travels as a dense batch.
`groups` (catalogue level -> each item's group index, e.g. artist and album) travel with the source to
the RBM that learns from it (its catalogue context, computed on the device from each batch's entries).
torch is imported lazily: importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from flowtui.core.errors import ParamError
from flowtui.core.recs.interactions import InteractionMatrix

if TYPE_CHECKING:
    import torch

#: Pseudo-entries at the overall rate added to each item's mean when initialising the visible biases.
BIAS_PRIOR = 5.0


def resolve_device(device: str = "auto") -> str:
    """ "auto" -> "cuda" when a CUDA device is available, else "cpu"; "cuda" or "mps" must exist here
    (ParamError naming the devices this machine has, not torch's RuntimeError mid-fit)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    check_device(device)
    return device


def devices_here() -> list[str]:
    """The torch devices this machine offers: "cpu", then "cuda:N (name)" and "mps" where present."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        found.append("mps")
    return found


def check_device(device: str, where: str = "device") -> None:
    """ParamError unless `device` ("cpu", "cuda", "mps", "auto") can be used on this machine."""
    if device in ("cpu", "auto"):
        return
    import torch

    ok = (
        torch.cuda.is_available()
        if device == "cuda"
        else device == "mps" and torch.backends.mps.is_available()
    )
    if not ok:
        build = "a CPU-only build" if device == "cuda" and torch.version.cuda is None else "no device visible"
        raise ParamError(
            f"{where} is {device!r}, but this machine has no {device.upper()} device (torch {torch.__version__}, "
            f"{build}); devices here: {', '.join(devices_here())} (or 'auto')"
        )


def device_preflight(params: Mapping[str, object], name: str) -> None:
    """A registry preflight: every `device` (or `*_device`) parameter of `name` names a device that exists."""
    for key, value in params.items():
        if (key == "device" or key.endswith("_device")) and isinstance(value, str):
            check_device(value, f"{name}.{key}")


@dataclass
class Batch:
    """A mini-batch of `n` rows.

    Sparse (`dense` is None): the observed entries in CSR order, `crow` (n + 1), `col` and `row` (nnz, the
    local row of each entry), `s0` their weighted spins m (2 v - 1), `m` their weights (None: all 1);
    `fill` is the weight w of every unseen entry (0: masked). `colT`, `rowT`, `perm` give the same entries
    in column order (host numpy arrays), for the transposed product of the gradient on the CPU.
    Dense (`dense` set): fully observed spins (n, n_features), no mask.
    `r` is each row's mean observed spin (the user's listen tendency), `weight` the summed entry weights."""

    n: int
    n_features: int
    r: torch.Tensor
    weight: float
    crow: torch.Tensor | None = None
    col: torch.Tensor | None = None
    row: torch.Tensor | None = None
    s0: torch.Tensor | None = None
    m: torch.Tensor | None = None
    fill: float = 0.0
    colT: np.ndarray | None = None
    rowT: np.ndarray | None = None
    perm: np.ndarray | None = None
    dense: torch.Tensor | None = None

    @property
    def is_dense(self) -> bool:
        return self.dense is not None

    def csr(self, values: torch.Tensor) -> torch.Tensor:
        """A torch CSR tensor (n, n_features) with the batch's observed structure and `values`."""
        import torch

        assert self.crow is not None and self.col is not None
        return torch.sparse_csr_tensor(
            self.crow, self.col, values, (self.n, self.n_features), check_invariants=False
        )

    def to_dense(self) -> torch.Tensor:
        """The weighted spins as a dense (n, n_features) tensor (-w on unseen entries in implicit mode)."""
        import torch

        if self.dense is not None:
            return self.dense
        assert self.s0 is not None and self.row is not None and self.col is not None
        out = torch.full((self.n, self.n_features), -self.fill, dtype=self.s0.dtype, device=self.s0.device)
        out[self.row, self.col] = self.s0
        return out


class Source:
    """Rows of a (masked) visible matrix, handed to torch one batch at a time."""

    def __init__(
        self,
        X: Any,
        mask: Any = None,
        implicit_weight: float = 0.0,
        groups: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.groups: dict[str, np.ndarray] = {k: np.asarray(g, np.int64) for k, g in (groups or {}).items()}
        if isinstance(X, InteractionMatrix):
            mask = X.mask if mask is None else mask
            if not implicit_weight and X.implicit_weight:
                implicit_weight = X.implicit_weight
            X = X.labels
        self.implicit_weight = float(implicit_weight or 0.0)
        self.dense: np.ndarray | None = None
        if sp.issparse(X):
            values = sp.csr_matrix(X, dtype=np.float32)
            # a sparse input without a mask: its stored entries are the observed ones
            weights = None
            if mask is not None:
                mk = sp.csr_matrix(mask, dtype=np.float32)
                if mk.nnz != values.nnz or not np.array_equal(mk.indices, values.indices):
                    raise ValueError("mask and values must share one sparsity structure")
                weights = mk.data
            if not values.has_sorted_indices:  # torch's CSR wants sorted columns: sort both alike
                order = sp.csr_matrix((np.arange(values.nnz, dtype=np.int64), values.indices, values.indptr))
                order.sort_indices()
                values = sp.csr_matrix((values.data[order.data], order.indices, order.indptr), values.shape)
                weights = None if weights is None else weights[order.data]
        else:
            arr = X.detach().cpu().numpy() if hasattr(X, "detach") else np.asarray(X)
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            if mask is None:
                self.dense = arr  # fully observed
                values, weights = sp.csr_matrix(arr.shape, dtype=np.float32), None
            else:
                mk = np.asarray(mask, dtype=np.float32)
                rr, cc = np.nonzero(mk > 0)  # unseen values can never leak in
                values = sp.csr_matrix((arr[rr, cc], (rr, cc)), shape=arr.shape, dtype=np.float32)
                values.has_canonical_format = True
                weights = mk[rr, cc].astype(np.float32)
        if weights is not None and np.all(weights == 1.0):
            weights = None
        self.values: sp.csr_matrix = values
        self.weights: np.ndarray | None = weights
        n_rows, n_features = X.shape
        self.n_rows, self.n_features = int(n_rows), int(n_features)

    @property
    def nnz(self) -> int:
        return self.n_rows * self.n_features if self.dense is not None else int(self.values.nnz)

    def batches(self, batch_size: int, device: str) -> Iterator[tuple[np.ndarray, Batch]]:
        """(row indices, batch) of consecutive rows, `batch_size` at a time (see `batch`)."""
        for start in range(0, self.n_rows, batch_size):
            idx = np.arange(start, min(start + batch_size, self.n_rows))
            yield idx, self.batch(idx, device)

    def batch(self, idx: np.ndarray, device: str, transposed: bool = False) -> Batch:
        """The rows `idx` (sorted) as weighted spins m (2 v - 1); `transposed` adds the column-order view."""
        import torch

        n = len(idx)
        if self.dense is not None:
            s = torch.from_numpy(self.dense[idx]).to(device).mul_(2.0).sub_(1.0)
            return Batch(n, self.n_features, s.mean(1), float(s.numel()), dense=s)
        sub = self.values[idx]
        counts = np.diff(sub.indptr)
        row_np = np.repeat(np.arange(n, dtype=np.int64), counts)
        spins = 2.0 * sub.data.astype(np.float32) - 1.0
        r_np = np.bincount(row_np, weights=spins, minlength=n) / np.maximum(counts, 1)
        w_np = None
        if self.weights is not None:
            lo = self.values.indptr[idx]
            pos = np.repeat(lo - sub.indptr[:-1], counts) + np.arange(sub.nnz)
            w_np = self.weights[pos]
            spins = spins * w_np
        w = self.implicit_weight
        weight = float(sub.nnz if w_np is None else w_np.sum()) + w * (n * self.n_features - sub.nnz)

        def dev(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(device)

        bt = Batch(
            n,
            self.n_features,
            dev(r_np.astype(np.float32)),
            weight,
            crow=dev(sub.indptr.astype(np.int64)),
            col=dev(sub.indices.astype(np.int64)),
            row=dev(row_np),
            s0=dev(spins.astype(np.float32)),
            m=None if w_np is None else dev(w_np.astype(np.float32)),
            fill=w,
        )
        if transposed:
            # column order of the entries: a CSC conversion whose data is each entry's CSR position
            pos_csr = sp.csr_matrix((np.arange(sub.nnz, dtype=np.int64), sub.indices, sub.indptr), sub.shape)
            csc = pos_csr.tocsc()
            bt.colT, bt.rowT, bt.perm = csc.indptr.astype(np.int64), csc.indices, csc.data
        return bt

    def visible_means(self) -> np.ndarray:
        """Smoothed mean label of each feature over its observed entries (the visible biases' start)."""
        if self.dense is not None:
            n = np.full(self.n_features, float(self.n_rows))
            s = self.dense.sum(0).astype(np.float64)
        else:
            w = np.ones(self.values.nnz) if self.weights is None else self.weights
            n = np.bincount(self.values.indices, weights=w, minlength=self.n_features)
            s = np.bincount(self.values.indices, weights=self.values.data * w, minlength=self.n_features)
            if self.implicit_weight:
                n = n + self.implicit_weight * (
                    self.n_rows - np.bincount(self.values.indices, minlength=self.n_features)
                )
        # shrunk towards the overall rate by BIAS_PRIOR pseudo-entries: most items have only a few entries
        overall = float(s.sum() / n.sum()) if n.sum() > 0 else 0.5
        return np.asarray((s + BIAS_PRIOR * overall) / (n + BIAS_PRIOR))

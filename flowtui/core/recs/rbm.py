"""A PyTorch Restricted Boltzmann Machine and Deep Belief Network for collaborative filtering.

Visible units are Bernoulli, one per item; a user's row holds 1 (listened), 0 (skipped) or nothing
(never heard). Unseen entries are masked: they feed neither the hidden units nor the reconstruction nor
the gradient, so each user trains the sub-network of the items they rated (Salakhutdinov et al. 2007).
In implicit mode (`implicit_weight > 0`) unseen entries count as negatives of that weight.

Mini-batches of users are densified one at a time from the sparse matrix, so memory stays at a few
`batch_size x n_items` float32 buffers. torch is imported lazily: importing this module is cheap.
Names follow scikit-learn's BernoulliRBM (`components_` is `n_components x n_features`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from flowtui.core import events as ev
from flowtui.core.data.schema import DataError
from flowtui.core.recs.interactions import InteractionMatrix

if TYPE_CHECKING:
    import torch

FORMAT_VERSION = 1
#: Pseudo-entries at the overall rate added to each item's mean when initialising the visible biases.
BIAS_PRIOR = 5.0


class RBMFileError(DataError):
    """A model file that is corrupted, truncated or from an incompatible version."""


def resolve_device(device: str = "auto") -> str:
    """ "auto" -> "cuda" when a CUDA device is available, else "cpu"; other values pass through."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@dataclass
class _Batch:
    """A densified batch: spins `s0`; either the observed entries' flat positions `flat` (explicit data,
    all weights 1) or dense weights `m` (implicit or weighted data); None for both = fully observed."""

    s0: torch.Tensor
    m: torch.Tensor | None
    flat: torch.Tensor | None
    weight: float
    r: torch.Tensor | None = None  # each row's mean observed spin (the user's listen tendency), (B,)


class _Source:
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
            self.unit_weights = bool(mask is None or np.all(self.mask.data == 1.0))
            if mask is None:
                self.unit_weights = True
        else:
            self.sparse = False
            arr = X.detach().cpu().numpy() if hasattr(X, "detach") else np.asarray(X)
            self.dense = np.ascontiguousarray(arr, dtype=np.float32)
            self.dense_mask = None if mask is None else np.ascontiguousarray(mask, dtype=np.float32)
            if self.dense_mask is not None:
                self.dense = self.dense * (self.dense_mask > 0)  # unseen values can never leak in
            self.unit_weights = self.dense_mask is None or bool(
                np.all((self.dense_mask == 0) | (self.dense_mask == 1))
            )
        self.n_rows, self.n_features = X.shape
        self._bufs: dict[tuple[str, tuple[int, int], str], Any] = {}

    @property
    def has_mask(self) -> bool:
        return self.sparse or self.dense_mask is not None

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

    def batch(self, idx: np.ndarray, device: str) -> _Batch:
        """The rows `idx` as weighted spins s0 = (2 v - 1) * m: +-1 observed, 0 unseen (-w in implicit mode).

        The returned tensors may be reused by the next call: consume them first."""
        import torch

        n = self.n_features
        if not self.sparse:
            v0 = torch.from_numpy(self.dense[idx]).to(device)
            if self.dense_mask is None:
                s0 = v0.mul_(2.0).sub_(1.0)
                return _Batch(s0, None, None, float(s0.numel()), s0.mean(1))
            m = torch.from_numpy(self.dense_mask[idx]).to(device)
            s0 = v0.mul_(2.0).sub_(1.0).mul_(m)
            r = s0.sum(1) / (m > 0).sum(1).clamp_(min=1)
            return _Batch(s0, m, None, float(m.sum()), r)
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
            return _Batch(s0, None, flat, float(len(flat)), r)
        m = self._buffer("m", (len(idx), n), device).fill_(self.implicit_weight)
        m.view(-1)[flat] = wt if wt is not None else 1.0
        return _Batch(s0, m, None, float(m.sum()), r)

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


class _Scorer:
    """Scoring shared by RBM and DBN: up-pass to the top hidden layer, down-pass to the visible layer."""

    batch_size: int
    device: str

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (JSON-ready: sequences become lists), read from `__init__`'s signature."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        params = {}
        for name in names:
            value = getattr(self, name)
            params[name] = list(value) if isinstance(value, (tuple, list)) else value
        return params

    def _check_fitted(self) -> None:
        if not getattr(self, "_fitted", False):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call fit first.")

    def _up(self, s: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def _down(self, h: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def _device(self) -> str:
        return getattr(self, "device_", None) or resolve_device(self.device)

    def iter_visible(
        self, X: Any, mask: Any = None, batch_size: int | None = None
    ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Yield (row indices, visible probabilities as a torch tensor) for consecutive batches of rows."""
        import torch

        self._check_fitted()
        src = _Source(X, mask, getattr(self, "implicit_weight", 0.0))
        dev = self._device()
        bs = batch_size or self.batch_size
        with torch.no_grad():
            for start in range(0, src.n_rows, bs):
                idx = np.arange(start, min(start + bs, src.n_rows))
                bt = src.batch(idx, dev)
                yield idx, self._down(self._up(bt.s0, bt.r), bt.r)

    def transform(self, X: Any, mask: Any = None) -> np.ndarray:
        """Hidden (top-layer) probabilities of each row, shape (n_rows, n_hidden)."""
        import torch

        self._check_fitted()
        src = _Source(X, mask, getattr(self, "implicit_weight", 0.0))
        dev = self._device()
        out = []
        with torch.no_grad():
            for start in range(0, src.n_rows, self.batch_size):
                idx = np.arange(start, min(start + self.batch_size, src.n_rows))
                bt = src.batch(idx, dev)
                out.append(self._up(bt.s0, bt.r).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def predict_proba(self, X: Any, mask: Any = None) -> np.ndarray:
        """Visible probabilities P(listened) of every (row, item), dense (n_rows, n_items).

        Dense output: score a few users at a time (see `iter_visible` or `predict_pairs` for many)."""
        parts = [p.cpu().numpy() for _, p in self.iter_visible(X, mask)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def predict_pairs(self, X: Any, rows: np.ndarray, cols: np.ndarray, mask: Any = None) -> np.ndarray:
        """P(listened) of the (row, item) pairs only, without a dense (n_rows, n_items) array."""
        import torch

        self._check_fitted()
        rows = np.asarray(rows, np.int64)
        cols = np.asarray(cols, np.int64)
        out = np.zeros(len(rows), np.float32)
        if len(rows) == 0:
            return out
        src = _Source(X, mask, getattr(self, "implicit_weight", 0.0))
        dev = self._device()
        need = np.unique(rows)
        W, b, e = self._visible_layer()
        with torch.no_grad():
            for start in range(0, len(need), self.batch_size):
                idx = need[start : start + self.batch_size]
                bt = src.batch(idx, dev)
                h = self._top_down_to_last_hidden(self._up(bt.s0, bt.r))
                sel = np.flatnonzero(np.isin(rows, idx))
                local = torch.from_numpy(np.searchsorted(idx, rows[sel])).to(dev)
                c = torch.from_numpy(cols[sel]).to(dev)
                logits = (h[local] * W[:, c].t()).sum(1) + b[c]
                if bt.r is not None:
                    logits += bt.r[local] * e[c]
                out[sel] = torch.sigmoid(2.0 * logits).cpu().numpy()
        return out

    def _visible_layer(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W, b, e) of the layer next to the visible units: logits = W'h + b + r e."""
        raise NotImplementedError

    def _top_down_to_last_hidden(self, h: torch.Tensor) -> torch.Tensor:
        return h

    def reconstruction_error(self, X: Any, mask: Any = None) -> float:
        """Mean absolute difference between observed entries and their reconstruction (the RBM 'test loss')."""
        import torch

        self._check_fitted()
        src = _Source(X, mask, 0.0)
        dev = self._device()
        err, wsum = 0.0, 0.0
        with torch.no_grad():
            for start in range(0, src.n_rows, self.batch_size):
                idx = np.arange(start, min(start + self.batch_size, src.n_rows))
                bt = src.batch(idx, dev)
                sp_ = self._down(self._up(bt.s0, bt.r), bt.r).mul_(2.0).sub_(1.0)
                if bt.m is not None:
                    sp_.mul_(bt.m)
                elif bt.flat is not None:
                    sp_, s0 = sp_.view(-1)[bt.flat], bt.s0.view(-1)[bt.flat]
                    err += float((s0 - sp_).abs().sum()) / 2.0
                    wsum += bt.weight
                    continue
                # |s0 - s| = 2 |v - p| on each observed entry
                err += float((bt.s0 - sp_).abs().sum()) / 2.0
                wsum += bt.weight
        return err / max(wsum, 1.0)

    def score(self, X: Any, mask: Any = None) -> float:
        """Negative masked reconstruction MAE (greater is better, as scikit-learn expects of `score`)."""
        return -self.reconstruction_error(X, mask)


class RBM(_Scorer):
    """Bernoulli RBM trained by (masked) contrastive divergence CD-k with momentum and weight decay.

    `k_schedule` (one k per epoch, the last repeated) grows k during training, e.g. (1, 1, 3, 5).
    """

    name = "rbm"

    def __init__(
        self,
        n_components: int = 256,
        learning_rate: float = 0.05,
        batch_size: int = 512,
        n_iter: int = 20,
        k: int = 1,
        k_schedule: Sequence[int] | None = None,
        momentum: float = 0.5,
        weight_decay: float = 1e-4,
        random_state: int | None = None,
        device: str = "auto",
        implicit_weight: float = 0.0,
        user_rate: bool = True,
    ) -> None:
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.k = k
        self.k_schedule = k_schedule
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device
        self.implicit_weight = implicit_weight
        self.user_rate = user_rate

    # --- training -----------------------------------------------------------------------------
    def _init(self, src: _Source) -> None:
        import torch

        self.device_ = resolve_device(self.device)
        if self.random_state is None:
            seed = int(np.random.default_rng().integers(2**31))
        else:
            seed = int(self.random_state)
        self._rng = np.random.default_rng(seed)
        self._gen = torch.Generator(device=self.device_)
        self._gen.manual_seed(seed)
        w = self._rng.normal(0.0, 0.01, size=(self.n_components, src.n_features)).astype(np.float32)
        p = np.clip(src.visible_means(), 1e-3, 1 - 1e-3)
        # visible biases at half the item log-odds (spin units): untrained, the RBM predicts the item mean
        b = (0.5 * np.log(p / (1 - p))).astype(np.float32)
        P = np.vstack([w, b[None, :], np.zeros((1, src.n_features), np.float32)])
        self._set_params(torch.from_numpy(P), torch.zeros(2, self.n_components))
        self.n_features_in_ = src.n_features
        self.n_iter_ = 0
        self._fitted = True

    def _set_params(self, P: torch.Tensor, Q: torch.Tensor) -> None:
        """W, the visible biases b and the visible context weights e are the rows of one (n_components + 2,
        n_features) matrix P; the hidden biases c and context weights d the rows of Q (2, n_components)."""
        import torch

        self._P = P.to(self.device_).contiguous()
        self._W, self._b, self._e = self._P[:-2], self._P[-2], self._P[-1]
        self._Q = Q.to(self.device_).contiguous()
        self._c, self._d = self._Q[0], self._Q[1]
        self._vP = torch.zeros_like(self._P)
        self._vQ = torch.zeros_like(self._Q)
        self._bufs: dict[Any, torch.Tensor] = {}

    def _k_for(self, epoch: int) -> int:
        if self.k_schedule:
            return int(self.k_schedule[min(epoch, len(self.k_schedule) - 1)])
        return int(self.k)

    def _cd_step(self, bt: _Batch, k: int) -> tuple[float, float]:
        """One masked CD-k update on a batch of spins; returns (sum of |v - p| on observed entries, weight).

        Visible units are spins s = 2v - 1 (E[s | h] = tanh(W'h + b + r e)), so a skip pushes the hidden units
        the other way from a listen while an unseen entry (s = 0) does not push at all. r, the user's mean
        observed spin, is a conditioning input (a conditional RBM): a user's overall listen tendency reaches
        every hidden unit (d) and visible unit (e) directly. W, b and e are rows of one matrix P, so one
        matmul with [h, 1, r] yields all three gradients."""
        import torch

        W, b = self._W, self._b
        s0 = bt.s0
        n = s0.shape[0]
        r = bt.r if self.user_rate else None
        h0 = self._up(s0, r)
        h = torch.bernoulli(h0, generator=self._gen)
        hk = h0
        sk = s0
        recon = self._buf("recon", s0.shape)
        for step in range(k):
            torch.addmm(b, h, W, out=recon)
            if r is not None:
                recon.addr_(r, self._e)
            recon.tanh_()
            if bt.flat is not None:  # unseen units are not part of this user's RBM
                sk = self._buf("sk", s0.shape).zero_()
                sk.view(-1)[bt.flat] = recon.view(-1)[bt.flat]
            elif bt.m is not None:
                sk = recon.mul_(bt.m)
            else:
                sk = recon
            hk = self._up(sk, r)
            if step < k - 1:
                h = torch.bernoulli(hk, generator=self._gen)
        lr = self.learning_rate / n
        ones = torch.ones(n, 1, dtype=s0.dtype, device=s0.device)
        rc = r[:, None] if r is not None else torch.zeros_like(ones)
        self._vP.addmm_(torch.cat([h0, ones, rc], 1).t(), s0, beta=self.momentum, alpha=lr)
        self._vP.addmm_(torch.cat([hk, ones, rc], 1).t(), sk, alpha=-lr)
        self._vP[:-2].add_(W, alpha=-self.learning_rate * self.weight_decay)
        dh = h0 - hk
        self._vQ.mul_(self.momentum).add_(torch.cat([ones, rc], 1).t() @ dh, alpha=lr)
        self._P.add_(self._vP)
        self._Q.add_(self._vQ)
        if bt.flat is not None:
            err = float((s0.view(-1)[bt.flat] - sk.view(-1)[bt.flat]).abs_().sum()) / 2.0
        else:
            err = float((s0 - sk).abs_().sum()) / 2.0
        return err, bt.weight

    def _buf(self, name: str, shape: Any) -> torch.Tensor:
        import torch

        key = (name, tuple(shape))
        buf = self._bufs.get(key)
        if buf is None:
            if len(self._bufs) > 4:
                self._bufs.clear()
            buf = self._bufs[key] = torch.empty(tuple(shape), dtype=torch.float32, device=self.device_)
        return buf

    def _epoch(self, src: _Source, epoch: int, cancel: threading.Event | None) -> float:
        import torch

        k = self._k_for(epoch)
        order = self._rng.permutation(src.n_rows)
        err, wsum = 0.0, 0.0
        with torch.no_grad():
            for start in range(0, src.n_rows, self.batch_size):
                ev.check_cancel(cancel)
                idx = np.sort(order[start : start + self.batch_size])
                e, w = self._cd_step(src.batch(idx, self.device_), k)
                err += e
                wsum += w
        self.n_iter_ += 1
        return err / max(wsum, 1.0)

    def _sync(self) -> None:
        self.components_ = self._W.detach().cpu().numpy()
        self.intercept_hidden_ = self._c.detach().cpu().numpy()
        self.intercept_visible_ = self._b.detach().cpu().numpy()

    def fit(
        self,
        X: Any,
        mask: Any = None,
        *,
        on_event: ev.EventCallback | None = None,
        cancel: threading.Event | None = None,
        name: str | None = None,
        epoch_offset: int = 0,
        total_epochs: int | None = None,
    ) -> RBM:
        """Train on X (InteractionMatrix, scipy sparse whose stored entries are observed, or dense + mask).

        Emits AfterEpoch(loss = masked reconstruction MAE) per epoch; raises events.Cancelled on cancel."""
        src = _Source(X, mask, self.implicit_weight)
        self._init(src)
        label = name or self.name
        total = total_epochs or self.n_iter
        t0 = time.perf_counter()
        standalone = total_epochs is None  # inside a DBN, the DBN announces the start and the end
        if standalone:
            ev.emit(on_event, ev.BeforeFit(label, total))
        try:
            for epoch in range(self.n_iter):
                loss = self._epoch(src, epoch, cancel)
                ev.emit(
                    on_event,
                    ev.AfterEpoch(
                        label, epoch_offset + epoch + 1, total, loss, None, time.perf_counter() - t0
                    ),
                )
        except ev.Cancelled:
            if standalone:
                ev.emit(on_event, ev.AfterFit(label, time.perf_counter() - t0, cancelled=True))
            raise
        self._sync()
        if standalone:
            ev.emit(on_event, ev.AfterFit(label, time.perf_counter() - t0))
        return self

    def partial_fit(
        self,
        X: Any,
        mask: Any = None,
        *,
        on_event: ev.EventCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> RBM:
        """Train one more epoch (initialising on the first call)."""
        src = _Source(X, mask, self.implicit_weight)
        if not getattr(self, "_fitted", False):
            self._init(src)
        elif src.n_features != self.n_features_in_:
            raise ValueError(f"X has {src.n_features} items, the RBM was fitted on {self.n_features_in_}")
        t0 = time.perf_counter()
        loss = self._epoch(src, self.n_iter_, cancel)
        ev.emit(
            on_event,
            ev.AfterEpoch(self.name, self.n_iter_, self.n_iter_, loss, None, time.perf_counter() - t0),
        )
        self._sync()
        return self

    # --- scoring ------------------------------------------------------------------------------
    def _up(self, s: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        """P(h = 1 | spins s, context r)."""
        import torch

        pre = torch.addmm(self._c, s, self._W.t())
        if r is not None and self.user_rate:
            pre.addr_(r, self._d)
        return pre.sigmoid_()

    def _down(self, h: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        """P(v = 1 | h, context r) = sigmoid(2 (W'h + b + r e))."""
        import torch

        z = torch.addmm(self._b, h, self._W)
        if r is not None and self.user_rate:
            z.addr_(r, self._e)
        return z.mul_(2.0).sigmoid_()

    def _visible_layer(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        e = self._e if self.user_rate else self._e.new_zeros(self._e.shape)
        return self._W, self._b, e

    # --- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights as CPU tensors (scikit-learn names)."""
        self._check_fitted()
        return {
            "components": self._W.detach().cpu().clone(),
            "intercept_hidden": self._c.detach().cpu().clone(),
            "intercept_visible": self._b.detach().cpu().clone(),
            "context_hidden": self._d.detach().cpu().clone(),
            "context_visible": self._e.detach().cpu().clone(),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> RBM:
        """Restore weights from `state_dict()` output (onto this RBM's device)."""
        import torch

        W, c, b = state["components"], state["intercept_hidden"], state["intercept_visible"]
        if W.ndim != 2 or c.shape != (W.shape[0],) or b.shape != (W.shape[1],):
            raise ValueError("inconsistent RBM weight shapes")
        self.device_ = resolve_device(self.device)
        e = state.get("context_visible", torch.zeros_like(b))
        d = state.get("context_hidden", torch.zeros_like(c))
        if e.shape != b.shape or d.shape != c.shape:
            raise ValueError("inconsistent RBM context weight shapes")
        self._set_params(torch.cat([W, b[None, :], e[None, :]]).float(), torch.stack([c, d]).float())
        self.n_components = int(W.shape[0])
        self.n_features_in_ = int(W.shape[1])
        self.n_iter_ = getattr(self, "n_iter_", 0)
        seed = 0 if self.random_state is None else int(self.random_state)
        self._rng = np.random.default_rng(seed)
        self._gen = torch.Generator(device=self.device_)
        self._gen.manual_seed(seed)
        self._fitted = True
        self._sync()
        return self


class DBN(_Scorer):
    """A stack of RBMs trained greedily, layer by layer; scores by an up-pass to the top and back down."""

    name = "dbn"

    def __init__(
        self,
        layers: Sequence[int] = (256, 64),
        learning_rate: float = 0.05,
        batch_size: int = 512,
        n_iter: int = 20,
        k: int = 1,
        k_schedule: Sequence[int] | None = None,
        momentum: float = 0.5,
        weight_decay: float = 1e-4,
        random_state: int | None = None,
        device: str = "auto",
        implicit_weight: float = 0.0,
        user_rate: bool = True,
    ) -> None:
        self.layers = layers
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.k = k
        self.k_schedule = k_schedule
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device
        self.implicit_weight = implicit_weight
        self.user_rate = user_rate

    def _layer(self, i: int, n_hidden: int) -> RBM:
        seed = None if self.random_state is None else int(self.random_state) + i
        return RBM(
            n_components=n_hidden,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            n_iter=self.n_iter,
            k=self.k,
            k_schedule=self.k_schedule,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            random_state=seed,
            device=self.device,
            implicit_weight=self.implicit_weight if i == 0 else 0.0,
            user_rate=self.user_rate and i == 0,  # the context conditions the visible layer only
        )

    def fit(
        self,
        X: Any,
        mask: Any = None,
        *,
        on_event: ev.EventCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> DBN:
        """Train layer 1 on X (masked), each next layer on the hidden probabilities of the one below."""
        if not self.layers:
            raise ValueError("a DBN needs at least one layer")
        total = self.n_iter * len(self.layers)
        ev.emit(on_event, ev.BeforeFit(self.name, total))
        self.rbms_: list[RBM] = []
        data, data_mask = X, mask
        t0 = time.perf_counter()
        try:
            self._fit_layers(data, data_mask, total, on_event, cancel)
        except ev.Cancelled:
            ev.emit(on_event, ev.AfterFit(self.name, time.perf_counter() - t0, cancelled=True))
            raise
        self.device_ = self.rbms_[0].device_
        self.n_features_in_ = self.rbms_[0].n_features_in_
        self._fitted = True
        ev.emit(on_event, ev.AfterFit(self.name, time.perf_counter() - t0))
        return self

    def _fit_layers(
        self,
        data: Any,
        data_mask: Any,
        total: int,
        on_event: ev.EventCallback | None,
        cancel: threading.Event | None,
    ) -> None:
        for i, n_hidden in enumerate(self.layers):
            rbm = self._layer(i, int(n_hidden))
            rbm.fit(
                data,
                data_mask,
                on_event=on_event,
                cancel=cancel,
                name=self.name,
                epoch_offset=i * self.n_iter,
                total_epochs=total,
            )
            self.rbms_.append(rbm)
            if i + 1 < len(self.layers):
                data, data_mask = rbm.transform(data, data_mask), None

    def _up(self, s: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        h = self.rbms_[0]._up(s, r)
        for rbm in self.rbms_[1:]:
            h = rbm._up(h * 2.0 - 1.0)  # each layer sees the one below as spins
        return h

    def _down(self, h: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        for rbm in reversed(self.rbms_[1:]):
            h = rbm._down(h)
        return self.rbms_[0]._down(h, r)

    def _top_down_to_last_hidden(self, h: torch.Tensor) -> torch.Tensor:
        for rbm in reversed(self.rbms_[1:]):
            h = rbm._down(h)
        return h

    def _visible_layer(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.rbms_[0]._visible_layer()

    @property
    def components_(self) -> np.ndarray:
        """The first layer's weights (n_hidden_1 x n_items)."""
        self._check_fitted()
        return self.rbms_[0].components_

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every layer's weights, keys `layer{i}.{name}`."""
        self._check_fitted()
        return {f"layer{i}.{k}": t for i, r in enumerate(self.rbms_) for k, t in r.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> DBN:
        """Restore every layer from `state_dict()` output."""
        n = len({k.split(".")[0] for k in state})
        self.rbms_ = []
        for i in range(n):
            sub = {k.split(".", 1)[1]: t for k, t in state.items() if k.startswith(f"layer{i}.")}
            self.rbms_.append(self._layer(i, int(sub["components"].shape[0])).load_state_dict(sub))
        for lower, upper in zip(self.rbms_, self.rbms_[1:], strict=False):
            if upper.n_features_in_ != lower.n_components:
                raise ValueError("DBN layer sizes do not chain")
        self.layers = tuple(r.n_components for r in self.rbms_)
        self.device_ = self.rbms_[0].device_
        self.n_features_in_ = self.rbms_[0].n_features_in_
        self._fitted = True
        return self


# --- files ------------------------------------------------------------------------------------
def save_network(
    net: RBM | DBN,
    path: str | Path,
    arrays: dict[str, np.ndarray] | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    """Write `path` (.pt: weights and `arrays` as tensors) and `path.json` (kind, params, versions, checksum).

    Both writes are atomic; the JSON records the .pt file's SHA-256 so a torn pair is detected on load."""
    import torch

    from flowtui.core.data.io import atomic_path

    path = Path(path)
    tensors = {f"net.{k}": v for k, v in net.state_dict().items()}
    for k, a in (arrays or {}).items():
        tensors[f"array.{k}"] = torch.from_numpy(np.ascontiguousarray(a))
    with atomic_path(path) as tmp:
        torch.save(tensors, tmp)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    doc = {
        "format": "flowtui-rbm",
        "format_version": FORMAT_VERSION,
        "kind": net.name,
        "params": net.get_params(),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "sha256": digest,
        "meta": meta or {},
    }
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(doc, indent=2))


def load_network(
    path: str | Path, device: str = "auto"
) -> tuple[RBM | DBN, dict[str, np.ndarray], dict[str, Any]]:
    """Read a pair written by `save_network`: (network, arrays, meta). RBMFileError on any damage."""
    import torch

    path = Path(path)
    jpath = path.with_suffix(".json")
    try:
        doc = json.loads(jpath.read_text())
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise RBMFileError(exc.filename, "model file missing") from None
    except (OSError, ValueError) as exc:
        raise RBMFileError(jpath, f"unreadable model description ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != "flowtui-rbm":
        raise RBMFileError(jpath, "not a flowtui RBM model description")
    if doc.get("format_version") != FORMAT_VERSION:
        raise RBMFileError(
            jpath,
            "incompatible model format",
            expected=str(FORMAT_VERSION),
            found=str(doc.get("format_version")),
        )
    if hashlib.sha256(raw).hexdigest() != doc.get("sha256"):
        raise RBMFileError(path, "corrupted model file (checksum mismatch)")
    try:
        tensors = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RBMFileError(path, f"corrupted model file ({type(exc).__name__})") from None
    if not isinstance(tensors, dict):
        raise RBMFileError(path, "not a flowtui RBM weight file")
    params = dict(doc.get("params") or {})
    params["device"] = device
    state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
    arrays = {k[6:]: v.numpy() for k, v in tensors.items() if k.startswith("array.")}
    try:
        net: RBM | DBN = DBN(**params) if doc.get("kind") == "dbn" else RBM(**params)
        net.load_state_dict(state)
    except (KeyError, TypeError, ValueError) as exc:
        raise RBMFileError(path, f"incompatible model weights ({exc})") from None
    return net, arrays, dict(doc.get("meta") or {})

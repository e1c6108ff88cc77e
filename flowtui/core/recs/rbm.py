"""A PyTorch Restricted Boltzmann Machine for collaborative filtering, trained by masked CD-k.

Visible units are Bernoulli, one per item, handled as spins s = 2 v - 1 (0 when unseen, see
`rbm_source`); each user's mean observed spin conditions the hidden and visible units (a conditional RBM).
Names follow scikit-learn's BernoulliRBM (`components_` is `n_components x n_features`); the constructor
arguments and their defaults are `Network`'s plus `n_components` (defaults from `RBMParams`).
torch is imported lazily: importing this module is cheap.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from flowtui.core import events as ev
from flowtui.core.recs.network import Network
from flowtui.core.recs.rbm_params import RBMParams
from flowtui.core.recs.rbm_source import Batch, Source, resolve_device

if TYPE_CHECKING:
    import torch

__all__ = ["RBM", "resolve_device"]

_RBM = RBMParams()


@dataclass(eq=False, kw_only=True)
class RBM(Network):
    """Bernoulli RBM trained by (masked) contrastive divergence CD-k with momentum and weight decay.

    `k_schedule` (one k per epoch, the last repeated) grows k during training, e.g. (1, 1, 3, 5).
    """

    name: ClassVar[str] = "rbm"

    n_components: int = _RBM.n_components

    # --- training -----------------------------------------------------------------------------
    def _init(self, src: Source) -> None:
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
        self._bufs: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}

    def _k_for(self, epoch: int) -> int:
        if self.k_schedule:
            return int(self.k_schedule[min(epoch, len(self.k_schedule) - 1)])
        return int(self.k)

    def _cd_step(self, bt: Batch, k: int) -> tuple[float, float]:
        """One masked CD-k update on a batch of spins; returns (sum of |v - p| on observed entries, weight).

        Visible units are spins s = 2v - 1 (E[s | h] = tanh(W'h + b + r e)), so a skip pushes the hidden units
        the other way from a listen while an unseen entry (s = 0) does not push at all. r, the user's mean
        observed spin, is a conditioning input (a conditional RBM): a user's overall listen tendency reaches
        every hidden unit (d) and visible unit (e) directly. W, b and e are rows of one matrix P, so one
        matmul with [h, 1, r] yields all three gradients."""
        import torch

        W = self._W
        s0 = bt.s0
        n = s0.shape[0]
        r = bt.r if self.user_rate else None
        h0 = self._up(s0, r)
        hk, sk = self._gibbs_chain(bt, h0, r, k)
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

    def _gibbs_chain(
        self, bt: Batch, h0: torch.Tensor, r: torch.Tensor | None, k: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The negative phase: k Gibbs steps from h0, each visible reconstruction restricted to the observed
        entries (dense weights for implicit data); returns (hidden probabilities, spins) of the last step."""
        import torch

        W, b, s0 = self._W, self._b, bt.s0
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
        return hk, sk

    def _buf(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        import torch

        key = (name, tuple(shape))
        buf = self._bufs.get(key)
        if buf is None:
            if len(self._bufs) > 4:
                self._bufs.clear()
            buf = self._bufs[key] = torch.empty(tuple(shape), dtype=torch.float32, device=self.device_)
        return buf

    def _epoch(self, src: Source, epoch: int, cancel: threading.Event | None) -> float:
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
        src = Source(X, mask, self.implicit_weight)
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
        src = Source(X, mask, self.implicit_weight)
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

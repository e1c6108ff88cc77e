"""A PyTorch Restricted Boltzmann Machine for collaborative filtering, trained by masked CD-k.

Visible units are Bernoulli, one per item, handled as spins s = 2 v - 1 (0 when unseen, see
`rbm_source`); each user's mean observed spin conditions the hidden and visible units (a conditional RBM).
Names follow scikit-learn's BernoulliRBM (`components_` is `n_components x n_features`); the constructor
arguments and their defaults are `Network`'s plus `n_components` (defaults from `RBMParams`).

Training touches only what the model reads. On masked (explicit) data every product runs over the
observed entries alone: the up-pass is a sparse x dense product, the reconstruction is computed at the
observed entries only (a sampled product), and the weight gradient is a transposed sparse product, so an
epoch costs O(entries x hidden) instead of O(users x items x hidden). In implicit mode (unseen entries
are weak negatives of weight w) the up-pass stays sparse (the unseen entries' share is one column sum)
and only the negative phase is dense: the reconstruction T is the one dense array, and every product with
the weighted negative spins is w times a dense product with T plus a sparse correction at the observed
entries (`rbm_cd.implicit_step`), in float32 with mean-field visible units (no visible sampling).

Catalogue context (`catalogue_context`, implicit mode): the visible units are also conditioned on the
catalogue: item i's logit gains a_l for each level l (artist, album) at which the user has an entry for
ANOTHER item of i's group (a conditional RBM whose conditioning input is the user's own catalogue
neighbourhood, one learnt weight per level). A bottleneck of 128 hidden units cannot hold thousands of
albums; this term lets the hidden units model taste while the catalogue says "more of the same album".
Each batch lists the tracks of every group a row has an entry in (`rbm_catalogue`: sparse, as a user's
artists and albums hold few tracks); an entry alone in its group does not count for itself.
It lifted the rbm recommender's validation NDCG@10 on the synthetic data from 0.058 to 0.102 (docs/RECS.md).

The module holds the estimator (parameters, passes, the update, the fit loop, persistence); the CD-k
steps' gradients are `rbm_cd`, the catalogue context `rbm_catalogue`.

Data-parallel seam: `compute_update(batch)` returns the batch's CD statistics as sums, `apply_update`
applies them; a wrapper all-reduces (sums) the lists between the two calls (see `compute_update`).
torch is imported lazily: importing this module is cheap.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from flowtui.core import events as ev
from flowtui.core.recs.network import Network
from flowtui.core.recs.rbm_catalogue import CatalogueContext, catalogue_from_state
from flowtui.core.recs.rbm_cd import dense_negative_step, implicit_step, masked_step
from flowtui.core.recs.rbm_params import RBMParams
from flowtui.core.recs.rbm_source import Batch, Source, resolve_device

if TYPE_CHECKING:
    import torch

__all__ = ["RBM", "resolve_device"]

_RBM = RBMParams()
_WARNED = False
#: Rate of the running mean of the hidden units that centres them (the hidden offsets lambda).
LAMBDA_RATE = 0.01
#: The catalogue weights' learning rate relative to the others': their gradient sums over every position of
#: a played group in the batch (hundreds per user), so the common rate makes them swing (validation: 1.0
#: oscillated between -9 and +11 over the epochs; 0.1 and 0.01 settled on the same weights).
CATALOGUE_RATE = 0.01


def _quiet_sparse() -> None:
    """torch warns once per process that sparse CSR support is in beta: take that warning here, silently."""
    global _WARNED
    if not _WARNED:
        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.sparse_csr_tensor(
                torch.tensor([0, 0]), torch.zeros(0, dtype=torch.int64), torch.zeros(0), (1, 1)
            )
        _WARNED = True


class Monitor(Protocol):
    """What `RBM.fit` calls after each epoch (see `early_stopping.EarlyStopping`)."""

    def __call__(self, net: RBM, epoch: int) -> tuple[float | None, bool]: ...

    def restore_best(self, net: RBM, epoch: int) -> None: ...


@dataclass(eq=False, kw_only=True)
class RBM(CatalogueContext, Network):
    """Bernoulli RBM trained by (masked) contrastive divergence CD-k with momentum and weight decay.

    `k_schedule` (one k per epoch, the last repeated) grows k during training, e.g. (1, 1, 3, 5).
    """

    name: ClassVar[str] = "rbm"

    n_components: int = _RBM.n_components

    # --- parameters ---------------------------------------------------------------------------
    def _init(self, src: Source) -> None:
        import torch

        if self.lr_schedule not in ("constant", "linear"):
            raise ValueError(f"lr_schedule must be 'constant' or 'linear', got {self.lr_schedule!r}")
        _quiet_sparse()
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
        self._set_params(
            torch.from_numpy(np.ascontiguousarray(w.T)),
            torch.from_numpy(b),
            torch.zeros(src.n_features),
            torch.zeros(self.n_components),
            torch.zeros(self.n_components),
        )
        self.n_features_in_ = src.n_features
        self.n_iter_ = 0
        self._fitted = True
        # centring offsets (Melchior et al. 2016): the items' mean spin and a running mean of the hidden units
        self._o = torch.from_numpy((2.0 * p - 1.0).astype(np.float32)).to(self.device_)
        self._lam = torch.full((self.n_components,), 0.5, device=self.device_)
        if not self.centered:
            self._o.zero_()
            self._lam.zero_()
        groups = src.groups if src.implicit_weight else {}
        self._set_catalogue(groups, torch.zeros(len(groups)))

    def _set_params(
        self, WT: torch.Tensor, b: torch.Tensor, e: torch.Tensor, c: torch.Tensor, d: torch.Tensor
    ) -> None:
        """The weights, stored items-major: WT (n_features, n_components) so that a user's observed items
        are contiguous rows; b the visible biases, e the visible context weights, c the hidden biases, d the
        hidden context weights. `_W` is the (n_components, n_features) view scikit-learn's names expect."""
        import torch

        dev = self.device_

        def put(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to(dev, torch.float32).contiguous()

        self._WT, self._b, self._e, self._c, self._d = put(WT), put(b), put(e), put(c), put(d)
        self._W = self._WT.t()
        self._vel = [torch.zeros_like(t) for t in (self._WT, self._b, self._e, self._c, self._d)]

    def _k_for(self, epoch: int) -> int:
        if self.k_schedule:
            return int(self.k_schedule[min(epoch, len(self.k_schedule) - 1)])
        return int(self.k)

    # --- the passes -----------------------------------------------------------------------------
    def _hidden_pre(self, bt: Batch, values: torch.Tensor, r: torch.Tensor | None) -> torch.Tensor:
        """Hidden pre-activations c + W s + r d of a sparse batch whose observed entries hold `values`
        (weighted spins); unseen entries are 0, or -fill in implicit mode (one column sum of W)."""
        if bt.fill:
            pre = bt.csr(values + bt.fill) @ self._WT
            pre.sub_(self._WT.sum(0), alpha=bt.fill).add_(self._c)
        else:
            pre = (bt.csr(values) @ self._WT).add_(self._c)
        if r is not None:
            pre.addr_(r, self._d)
        return pre

    def _hidden(self, bt: Batch) -> torch.Tensor:
        """P(h = 1 | the batch's spins, context): sparse or dense batch."""
        r = bt.r if self.user_rate else None
        if bt.dense is not None:
            return self._up(bt.dense, r)
        assert bt.s0 is not None
        return self._hidden_pre(bt, bt.s0, r).sigmoid_()

    def _up(self, s: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        """P(h = 1 | dense spins s, context r)."""
        import torch

        pre = torch.addmm(self._c, s, self._WT)
        if r is not None and self.user_rate:
            pre.addr_(r, self._d)
        return pre.sigmoid_()

    def _half_logits(self, h: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        """W'h + b + r e, dense (n_rows, n_features): P(v = 1 | h) = sigmoid(2 x this)."""
        import torch

        z = torch.addmm(self._b, h, self._W)
        if r is not None and self.user_rate:
            z.addr_(r, self._e)
        return z

    def _down(self, h: torch.Tensor, r: torch.Tensor | None = None, bt: Batch | None = None) -> torch.Tensor:
        """P(v = 1 | h, context r) = sigmoid(2 (W'h + b + r e)), plus the catalogue term of batch `bt`."""
        z = self._half_logits(h, r)
        if bt is not None and self._groups_t:
            self._add_catalogue(z, bt)
        return z.mul_(2.0).sigmoid_()

    def _visible_layer(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        e = self._e if self.user_rate else self._e.new_zeros(self._e.shape)
        return self._W, self._b, e

    def _up_batch(self, bt: Batch) -> torch.Tensor:
        return self._hidden(bt)

    # --- training -----------------------------------------------------------------------------
    def _cd_step(self, bt: Batch, k: int) -> tuple[float, float]:
        """One CD-k update on a batch; returns (sum of |v - p| over the modelled entries, their weight)."""
        updates = self.compute_update(bt, k)
        self.apply_update(updates)
        return float(updates[-1][1]), float(updates[-1][2])

    def compute_update(self, bt: Batch, k: int | None = None) -> list[torch.Tensor]:
        """The CD-k statistics of one batch, every tensor a SUM over the batch's rows, nothing applied.

        Returns [gW (n_features, n_components), gb, ge (n_features), gc, gd (n_components), then, when the
        catalogue context is learnt, gcat (one per level), hsum (n_components, the summed hidden
        probabilities), stats ([rows, reconstruction error, weight])]. The
        data-parallel seam: each worker calls this on its shard of a batch, a wrapper sums the lists over
        the workers (e.g. `torch.distributed.all_reduce(t, SUM)` on each tensor, or one flat buffer), and
        every worker then calls `apply_update` with the summed list, so all replicas stay identical. `bt`
        comes from `rbm_source.Source(X).batch(rows, device, transposed=True)`; `k` defaults to the
        epoch's (`k_schedule`) k.

        Visible units are spins s = 2v - 1 (E[s | h] = tanh(W'h + b + r e)), so a skip pushes the hidden
        units the other way from a listen while an unseen entry (s = 0) does not push at all. r, the user's
        mean observed spin, is a conditioning input (a conditional RBM): a user's overall listen tendency
        reaches every hidden unit (d) and visible unit (e) directly."""
        import torch

        if k is None:
            k = self._k_for(self.n_iter_)
        r = bt.r if self.user_rate else None
        if bt.dense is not None:
            grads, err, h0 = dense_negative_step(self, bt, r, k)
        elif bt.fill:
            grads, err, h0 = implicit_step(self, bt, r, k)
        else:
            grads, err, h0 = masked_step(self, bt, r, k)
        if self.centered:  # the centred gradient mapped back onto the plain parameters
            gW, gb, gc = grads[0], grads[1], grads[3]
            assert gW is not None and gb is not None and gc is not None
            gb.sub_(gW @ self._lam)
            gc.sub_(self._o @ gW)
        out = [
            g if g is not None else torch.zeros_like(p)
            for g, p in zip(grads[:5], self._params(), strict=True)
        ]
        out.extend(g for g in grads[5:] if g is not None)  # the catalogue weights' gradient, when learnt
        out.append(h0.sum(0))
        out.append(torch.tensor([float(bt.n), err, bt.weight], device=h0.device))
        return out

    def apply_update(self, updates: list[torch.Tensor]) -> None:
        """Apply `compute_update`'s statistics (summed over every worker's shard of the batch): momentum,
        weight decay and the learning rate divided by the summed row count; moves the hidden offsets."""
        n = max(float(updates[-1][0]), 1.0)
        if self.centered:
            self._lam.mul_(1.0 - LAMBDA_RATE).add_(updates[-2], alpha=LAMBDA_RATE / n)
        rate = self.epoch_learning_rate()
        lr = rate / n
        grads = updates[:-2]
        for i, (p, v, g) in enumerate(zip(self._params(), self._vel, grads[:5], strict=True)):
            v.mul_(self.momentum)
            v.add_(g, alpha=lr)
            if i == 0 and self.weight_decay:
                v.add_(p, alpha=-rate * self.weight_decay)
            p.add_(v)
        if len(grads) > 5:
            self._cat_vel.mul_(self.momentum).add_(grads[5], alpha=lr * CATALOGUE_RATE)
            self._cat.add_(self._cat_vel)

    def epoch_learning_rate(self) -> float:
        """The learning rate of the epoch under way (`n_iter_` epochs done): constant, or with
        `lr_schedule="linear"` learning_rate x (1 - n_iter_ / n_iter), at least learning_rate / n_iter
        (the last epoch's, kept by `partial_fit` beyond n_iter). Annealing lets the last epochs settle
        instead of ending on a noisy step (exposure network on MovieLens: validation NDCG@10 +4-5%)."""
        if self.lr_schedule != "linear":
            return float(self.learning_rate)
        n = max(int(self.n_iter), 1)
        return float(self.learning_rate) * max(1.0 - getattr(self, "n_iter_", 0) / n, 1.0 / n)

    def _params(self) -> tuple[torch.Tensor, ...]:
        return self._WT, self._b, self._e, self._c, self._d

    def _epoch(self, src: Source, epoch: int, cancel: threading.Event | None) -> float:
        import torch

        k = self._k_for(epoch)
        order = self._rng.permutation(src.n_rows)
        err, wsum = 0.0, 0.0
        with torch.no_grad():
            for start in range(0, src.n_rows, self.batch_size):
                ev.check_cancel(cancel)
                idx = np.sort(order[start : start + self.batch_size])
                e, w = self._cd_step(src.batch(idx, self.device_, transposed=True), k)
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
        monitor: Monitor | None = None,
    ) -> RBM:
        """Train on X (InteractionMatrix, scipy sparse whose stored entries are observed, or dense + mask).

        Emits AfterEpoch(loss = masked reconstruction MAE, metric = the monitor's score) per epoch; raises
        events.Cancelled on cancel. `monitor(self, epoch)` (e.g. `early_stopping.EarlyStopping`), called
        after each epoch, returns (a validation score or None, stop now?) and may restore its best weights
        when training ends (`restore_best`)."""
        src = Source(X, mask, self.implicit_weight, self.catalogue_source_groups(X))
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
                score, stop = monitor(self, epoch + 1) if monitor is not None else (None, False)
                ev.emit(
                    on_event,
                    ev.AfterEpoch(
                        label, epoch_offset + epoch + 1, total, loss, score, time.perf_counter() - t0
                    ),
                )
                if stop:
                    break
        except ev.Cancelled:
            if standalone:
                ev.emit(on_event, ev.AfterFit(label, time.perf_counter() - t0, cancelled=True))
            raise
        if monitor is not None:
            monitor.restore_best(self, self.n_iter_)
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
        src = Source(X, mask, self.implicit_weight, self.catalogue_source_groups(X))
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

    # --- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights as CPU tensors (scikit-learn names)."""
        self._check_fitted()
        return {
            "components": self._W.detach().cpu().contiguous().clone(),
            "intercept_hidden": self._c.detach().cpu().clone(),
            "intercept_visible": self._b.detach().cpu().clone(),
            "context_hidden": self._d.detach().cpu().clone(),
            "context_visible": self._e.detach().cpu().clone(),
            **self._catalogue_state(),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> RBM:
        """Restore weights from `state_dict()` output (onto this RBM's device)."""
        import torch

        _quiet_sparse()
        W, c, b = state["components"], state["intercept_hidden"], state["intercept_visible"]
        if W.ndim != 2 or c.shape != (W.shape[0],) or b.shape != (W.shape[1],):
            raise ValueError("inconsistent RBM weight shapes")
        self.device_ = resolve_device(self.device)
        e = state.get("context_visible", torch.zeros_like(b))
        d = state.get("context_hidden", torch.zeros_like(c))
        if e.shape != b.shape or d.shape != c.shape:
            raise ValueError("inconsistent RBM context weight shapes")
        self._set_params(W.t(), b, e, c, d)
        self._set_catalogue(*catalogue_from_state(state, int(W.shape[1])))
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

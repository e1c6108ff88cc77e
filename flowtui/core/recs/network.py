"""What the RBM and the DBN share: their training arguments and the scoring of rows.

`Network` is a keyword-only dataclass: its fields are the estimator's constructor arguments, stored
unvalidated as scikit-learn asks, and their defaults are read from `CDParams`, the one declaration of the
registered defaults. Subclasses add their architecture (`RBM.n_components`, `DBN.layers`) and implement the
up-pass (`_up`), the down-pass (`_down`) and the layer next to the visible units (`_visible_layer`).
Unseen entries are masked: they feed neither the hidden units nor the reconstruction nor the gradient
(Salakhutdinov et al. 2007). torch is imported lazily: importing this module is cheap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from sklearn.exceptions import NotFittedError

from flowtui.core.recs.rbm_params import CDParams
from flowtui.core.recs.rbm_source import Batch, Source, resolve_device

if TYPE_CHECKING:
    import torch

_CD = CDParams()


@dataclass(eq=False, kw_only=True)
class Network:
    """Masked CD-k training arguments (BernoulliRBM's names) and scoring shared by RBM and DBN.

    `implicit_weight > 0` counts unseen entries as negatives of that weight (implicit data); `user_rate`
    feeds each user's mean observed spin to the visible layer as a conditioning input; `catalogue_context`
    (implicit data whose matrix names artists and albums) conditions each visible unit on the user's other
    items of its artist and album (see `rbm`).
    """

    name: ClassVar[str] = "network"

    learning_rate: float = _CD.learning_rate
    batch_size: int = _CD.batch_size
    n_iter: int = _CD.n_iter
    k: int = _CD.k
    k_schedule: Sequence[int] | None = _CD.k_schedule
    lr_schedule: str = _CD.lr_schedule
    momentum: float = _CD.momentum
    weight_decay: float = _CD.weight_decay
    random_state: int | None = _CD.random_state
    device: str = _CD.device
    implicit_weight: float = 0.0
    user_rate: bool = True
    centered: bool = False
    catalogue_context: bool = _CD.catalogue_context

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, the subclass's own first (JSON-ready: sequences become lists)."""
        fields = dataclasses.fields(self)
        shared = {f.name for f in dataclasses.fields(Network)}
        ordered = [f for f in fields if f.name not in shared] + [f for f in fields if f.name in shared]
        params: dict[str, Any] = {}
        for f in ordered:
            value = getattr(self, f.name)
            params[f.name] = list(value) if isinstance(value, (tuple, list)) else value
        return params

    def _check_fitted(self) -> None:
        if not getattr(self, "_fitted", False):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call fit first.")

    # -- the passes (subclasses) ---------------------------------------------------------------
    def _up_batch(self, bt: Batch) -> torch.Tensor:
        """P(top hidden = 1 | a batch's spins and context), sparse or dense batch."""
        raise NotImplementedError

    def _down(self, h: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        """P(v = 1 | top hidden h, context r)."""
        raise NotImplementedError

    def _visible_layer(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W, b, e) of the layer next to the visible units: logits = W'h + b + r e."""
        raise NotImplementedError

    def _top_down_to_last_hidden(self, h: torch.Tensor) -> torch.Tensor:
        """The hidden layer next to the visible units, from the top hidden layer (identity for an RBM)."""
        return h

    def _scoring_hidden(self, bt: Batch) -> torch.Tensor:
        """The hidden layer next to the visible units from which a batch's rows are scored (an RBM: its
        hidden probabilities; a DBN mixes them with their reconstruction from the top layer)."""
        return self._top_down_to_last_hidden(self._up_batch(bt))

    def _visible_from(self, h: torch.Tensor, bt: Batch) -> torch.Tensor:
        """P(v = 1) of the batch `bt` from the hidden layer next to the visible units."""
        first: Any = self._rbm_layers()[0]
        out: torch.Tensor = first._down(h, bt.r, bt)
        return out

    def _catalogue(self) -> tuple[list[np.ndarray], np.ndarray]:
        """(item groups per catalogue level, their weights) of the layer next to the visible units."""
        first: Any = self._rbm_layers()[0]
        groups: list[np.ndarray] = list(getattr(first, "groups_", {}).values())
        weights = first._cat.detach().cpu().numpy() if groups else np.zeros(0, np.float32)
        return groups, weights

    def _device(self) -> str:
        fitted: str | None = getattr(self, "device_", None)
        return fitted or resolve_device(self.device)

    def _source(self, X: Any, mask: Any, implicit_weight: float | None = None) -> Source:
        self._check_fitted()
        weight = self.implicit_weight if implicit_weight is None else implicit_weight
        return Source(X, mask, weight)

    def _map_rows(self, X: Any, mask: Any, fn: Callable[[Batch], torch.Tensor]) -> np.ndarray:
        """`fn` of each batch of consecutive rows, concatenated as numpy ((0, 0) when there are no rows)."""
        import torch

        src = self._source(X, mask)
        out = []
        with torch.no_grad():
            for _, bt in src.batches(self.batch_size, self._device()):
                out.append(fn(bt).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    # -- scoring -------------------------------------------------------------------------------
    def iter_visible(
        self, X: Any, mask: Any = None, batch_size: int | None = None
    ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Yield (row indices, visible probabilities as a torch tensor) for consecutive batches of rows."""
        import torch

        src = self._source(X, mask)
        with torch.no_grad():
            for idx, bt in src.batches(batch_size or self.batch_size, self._device()):
                yield idx, self._visible_from(self._scoring_hidden(bt), bt)

    def transform(self, X: Any, mask: Any = None) -> np.ndarray:
        """Hidden (top-layer) probabilities of each row, shape (n_rows, n_hidden)."""
        return self._map_rows(X, mask, self._up_batch)

    def hidden_next_to_visible(self, X: Any, mask: Any = None) -> np.ndarray:
        """Each row's hidden probabilities in the layer next to the visible units, from which it is scored
        (`_scoring_hidden`: the RBM's hidden layer; a DBN's first layer mixed with its reconstruction from
        the top), shape (n_rows, n_hidden_1)."""
        return self._map_rows(X, mask, self._scoring_hidden)

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
        src = self._source(X, mask)
        dev = self._device()
        need = np.unique(rows)
        W, b, e = self._visible_layer()
        first: Any = self._rbm_layers()[0]
        with torch.no_grad():
            for start in range(0, len(need), self.batch_size):
                idx = need[start : start + self.batch_size]
                bt = src.batch(idx, dev)
                h = self._scoring_hidden(bt)
                sel = np.flatnonzero(np.isin(rows, idx))
                local = torch.from_numpy(np.searchsorted(idx, rows[sel])).to(dev)
                c = torch.from_numpy(cols[sel]).to(dev)
                logits = (h[local] * W[:, c].t()).sum(1) + b[c]
                if bt.r is not None:
                    logits += bt.r[local] * e[c]
                if first._groups_t:
                    logits += first._catalogue_pairs(bt, local, c)
                out[sel] = torch.sigmoid(2.0 * logits).cpu().numpy()
        return out

    def _rbm_layers(self) -> list[Any]:
        """The RBMs from the visible layer up (the RBM itself for an RBM)."""
        return [self]

    def user_scorer(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """A numpy scorer of ONE user: `f(cols, labels) -> z`, the half-logits of every item (P(v = 1) =
        sigmoid(2 z)) given the user's observed item columns and their labels (1 listened, 0 skipped).

        For one user, torch's per-call overheads exceed the arithmetic: this is `NumpyNet`, float32 numpy
        copies of the weights taken once (call it again after further training)."""
        from flowtui.core.recs.numpy_net import NumpyNet

        self._check_fitted()
        return NumpyNet(self).half_logits  # type: ignore[arg-type]

    def reconstruction_error(self, X: Any, mask: Any = None) -> float:
        """Mean absolute difference between observed entries and their reconstruction (the RBM 'test loss')."""
        import torch

        src = self._source(X, mask, 0.0)
        err, wsum = 0.0, 0.0
        with torch.no_grad():
            for _, bt in src.batches(self.batch_size, self._device()):
                p = self._visible_from(self._scoring_hidden(bt), bt)
                if bt.dense is not None:  # |s0 - s| = 2 |v - p| on each entry
                    err += float((bt.dense - p.mul_(2.0).sub_(1.0)).abs_().sum()) / 2.0
                else:
                    assert bt.s0 is not None and bt.row is not None and bt.col is not None
                    s = p[bt.row, bt.col].mul_(2.0).sub_(1.0)
                    if bt.m is not None:
                        s.mul_(bt.m)
                    err += float((bt.s0 - s).abs_().sum()) / 2.0
                wsum += bt.weight
        return err / max(wsum, 1.0)

    def score(self, X: Any, mask: Any = None) -> float:
        """Negative masked reconstruction MAE (greater is better, as scikit-learn expects of `score`)."""
        return -self.reconstruction_error(X, mask)

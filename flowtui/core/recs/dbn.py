"""A Deep Belief Network: RBMs stacked and trained greedily, layer by layer.

The first layer learns the (masked) user x item matrix, each next layer the hidden probabilities of the one
below; a row is scored from its first-layer hidden probabilities mixed half and half with their
reconstruction by an up-pass to the top layer and a down-pass back (`_scoring_hidden`). The
constructor arguments are `Network`'s plus `layers` (defaults from `DBNParams`); every layer is an `RBM`
with those arguments. torch is imported lazily: importing this module is cheap.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from flowtui.core import events as ev
from flowtui.core.recs.network import Network
from flowtui.core.recs.rbm import RBM, Monitor
from flowtui.core.recs.rbm_params import DBNParams
from flowtui.core.recs.rbm_source import Batch

if TYPE_CHECKING:
    import torch

_DBN = DBNParams()


@dataclass(eq=False, kw_only=True)
class DBN(Network):
    """A stack of RBMs trained greedily, layer by layer; scores by an up-pass to the top and back down."""

    name: ClassVar[str] = "dbn"

    layers: Sequence[int] = _DBN.layers
    deep_mix: float = _DBN.deep_mix

    def _layer(self, i: int, n_hidden: int) -> RBM:
        seed = None if self.random_state is None else int(self.random_state) + i
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(Network)}
        shared.update(
            random_state=seed,
            implicit_weight=self.implicit_weight if i == 0 else 0.0,
            user_rate=self.user_rate and i == 0,  # the context conditions the visible layer only
        )
        return RBM(n_components=n_hidden, **shared)

    def fit(
        self,
        X: Any,
        mask: Any = None,
        *,
        on_event: ev.EventCallback | None = None,
        cancel: threading.Event | None = None,
        monitor: Monitor | None = None,
    ) -> DBN:
        """Train layer 1 on X (masked), each next layer on the hidden probabilities of the one below.
        `monitor` (see `RBM.fit`) watches, and may stop early, the first layer."""
        if not self.layers:
            raise ValueError("a DBN needs at least one layer")
        total = self.n_iter * len(self.layers)
        ev.emit(on_event, ev.BeforeFit(self.name, total))
        self.rbms_: list[RBM] = []
        data, data_mask = X, mask
        t0 = time.perf_counter()
        try:
            self._fit_layers(data, data_mask, total, on_event, cancel, monitor)
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
        monitor: Monitor | None = None,
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
                monitor=monitor if i == 0 else None,
            )
            self.rbms_.append(rbm)
            if i + 1 < len(self.layers):
                data, data_mask = rbm.transform(data, data_mask), None

    def _up_batch(self, bt: Batch) -> torch.Tensor:
        return self._up_from_first(self.rbms_[0]._hidden(bt))

    def _down(self, h: torch.Tensor, r: torch.Tensor | None = None) -> torch.Tensor:
        for rbm in reversed(self.rbms_[1:]):
            h = rbm._down(h)
        return self.rbms_[0]._down(h, r)

    def _top_down_to_last_hidden(self, h: torch.Tensor) -> torch.Tensor:
        for rbm in reversed(self.rbms_[1:]):
            h = rbm._down(h)
        return h

    def _scoring_hidden(self, bt: Batch) -> torch.Tensor:
        """The first layer's hidden probabilities, mixed by `deep_mix` with their reconstruction from the
        top layer (the top-down pass alone squeezes every row through the narrowest layer; see docs/RECS.md,
        "Experiment history of the RBM defaults", for why the default mix is 0)."""
        h1 = self.rbms_[0]._hidden(bt)
        mix = float(self.deep_mix)
        if not mix or len(self.rbms_) < 2:
            return h1
        return h1.mul(1.0 - mix).add_(self._top_down_to_last_hidden(self._up_from_first(h1)), alpha=mix)

    def _up_from_first(self, h: torch.Tensor) -> torch.Tensor:
        for rbm in self.rbms_[1:]:
            h = rbm._up(h * 2.0 - 1.0)  # each layer sees the one below as spins
        return h

    def _visible_layer(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.rbms_[0]._visible_layer()

    def _rbm_layers(self) -> list[Any]:
        return list(self.rbms_)

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

"""The RBM and the DBN as registered recommenders (the `RecommenderBase` interface).

On listen/skip data a listen network learns P(listened | played) (masked) and, when `exposure_weight`
> 0, an exposure network learns P(played) on the played matrix (unseen entries weak negatives of that
weight); items are ranked by P(played) x P(listened | played)^listen_power (power 1: the expected
listens; the default 0.1 was chosen on validation, see docs/RECS.md). On implicit data (plays only) the
exposure network alone is learnt and ranks. The networks are the Flow models' (`rbm_networks.build_network`,
`fit_exposure`: same parameters, `RBMParams`/`DBNParams`); the matrix keys of those parameters (max_items,
min_count, label) apply to the Flow models only, as a recommender learns the matrix it is given.
A model saved by `flowtui train --model rbm` becomes a recommender with `network_recommender`.
Nothing here imports torch at module import.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.exceptions import NotFittedError

from flowtui.core import events as ev
from flowtui.core.events import EventCallback
from flowtui.core.recs.dbn import DBN
from flowtui.core.recs.interactions import InteractionMatrix
from flowtui.core.recs.network_files import RBMFileError, load_network, save_network
from flowtui.core.recs.numpy_net import NumpyNet
from flowtui.core.recs.rbm import RBM
from flowtui.core.recs.rbm_networks import (
    EXPOSURE_FILE,
    CollaborativeModel,
    build_network,
    fit_exposure,
    params_as_saved,
)
from flowtui.core.recs.rbm_params import DBN_QUICK, RBM_QUICK, DBNParams, RBMParams
from flowtui.core.recs.rbm_source import device_preflight
from flowtui.core.recs.recommender import RecommenderBase
from flowtui.core.registry import RecommenderSpec, register

__all__ = ["DBNRecommender", "NetworkRecommender", "RBMRecommender", "network_recommender"]

LISTEN_FILE = "listen.pt"
#: Weight of unseen entries as negatives when implicit data meets exposure_weight = 0.
IMPLICIT_WEIGHT = 0.05


class NetworkRecommender(RecommenderBase):
    """rbm / dbn as a recommender: P(played) x P(listened | played)^listen_power (power 1: expected
    listens)."""

    name: ClassVar[str] = "rbm"
    params_cls: ClassVar[type] = RBMParams
    params: RBMParams | DBNParams
    has_listen_proba = True
    net_: RBM | DBN | None  # the listen network (None on implicit data)
    exposure_: RBM | DBN | None  # the exposure network (None when exposure_weight is 0)

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._numpy_nets: dict[int, NumpyNet] = {}

    def _layers(self) -> int:
        return len(self.params.layers) if isinstance(self.params, DBNParams) else 1

    def _n_epochs(self, matrix: InteractionMatrix) -> int:
        p = self.params
        expo = p.exposure_n_iter * self._layers() if (p.exposure_weight or matrix.is_implicit) else 0
        if p.validation_fraction:
            expo *= 2  # at most: the early-stopped search, then the refit for its best epoch count
        return expo + (0 if matrix.is_implicit else p.n_iter * self._layers())

    def _relay(self, on_event: EventCallback | None, offset: int, total: int) -> EventCallback | None:
        """The networks' events as this recommender's: one count of epochs over both networks."""
        if on_event is None:
            return None

        def relay(e: ev.Event) -> None:
            assert on_event is not None
            if isinstance(e, ev.AfterEpoch):
                self._after_epoch(on_event, offset + e.epoch, total, e.loss)
            elif not isinstance(e, (ev.BeforeFit, ev.AfterFit)):
                on_event(e)

        return relay

    def _fit(
        self, matrix: InteractionMatrix, on_event: EventCallback | None, cancel: threading.Event | None
    ) -> None:
        total = self._n_epochs(matrix)
        self.net_, self.exposure_ = None, None
        self._numpy_nets = {}
        if matrix.is_implicit:
            p = self.params
            if not p.exposure_weight:
                p = dataclasses.replace(p, exposure_weight=IMPLICIT_WEIGHT)
            self.exposure_ = fit_exposure(p, matrix, self._relay(on_event, 0, total), cancel, self.notes)
            return
        net = build_network(self.params)
        net.fit(matrix, on_event=self._relay(on_event, 0, total), cancel=cancel)
        self.net_ = net
        if self.params.exposure_weight:
            offset = self.params.n_iter * self._layers()
            self.exposure_ = fit_exposure(
                self.params, matrix, self._relay(on_event, offset, total), cancel, self.notes
            )

    def _visible(self, net: RBM | DBN, labels: sp.csr_matrix, mask: sp.csr_matrix) -> np.ndarray:
        """P(v = 1) of every item for each row of `labels` (observed entries; `mask` their weights).

        One row (a user's list, a new user) goes through numpy copies of the layers (`NumpyNet`): for a
        single row, torch's thread pool costs more than the arithmetic (25 ms against 10 ms per network for
        50,000 items on a busy 2-core machine). Both give the same probabilities."""
        if labels.shape[0] == 1:
            key = id(net)
            if key not in self._numpy_nets:
                self._numpy_nets = {key: NumpyNet(net), **self._numpy_nets}
            z = self._numpy_nets[key].half_logits(labels.indices, labels.data)
            one: np.ndarray = expit(2.0 * z.astype(np.float64)).astype(np.float32)[None, :]
            return one
        parts = [p.cpu().numpy() for _, p in net.iter_visible(labels, mask, batch_size=labels.shape[0])]
        if not parts:
            return np.zeros((0, net.n_features_in_), np.float32)
        return np.concatenate(parts).astype(np.float32, copy=False)

    def _score(self, history: InteractionMatrix, rows: np.ndarray) -> np.ndarray:
        labels, mask = history.labels[rows], history.mask[rows]
        p = None if self.net_ is None else self._visible(self.net_, labels, mask)
        if self.exposure_ is None:
            assert p is not None
            return p
        ones = sp.csr_matrix(
            (np.ones(labels.nnz, np.float32), labels.indices, labels.indptr), shape=labels.shape
        )
        played = self._visible(self.exposure_, ones, mask)
        if p is None:
            return played
        power = float(getattr(self.params, "listen_power", 1.0))
        ranked: np.ndarray = played * (p if power == 1.0 else np.power(p, np.float32(power)))
        return ranked

    def listen_proba(
        self, history: InteractionMatrix, rows: np.ndarray | Sequence[int] | None = None
    ) -> np.ndarray | None:
        """P(listened | played) from the listen network (None on implicit data)."""
        self.check_fitted()
        self._check_history(history)
        if self.net_ is None:
            return None
        idx = np.arange(history.shape[0]) if rows is None else np.atleast_1d(np.asarray(rows, np.int64))
        return self._visible(self.net_, history.labels[idx], history.mask[idx])

    def save(self, folder: str | Path) -> None:
        """state.npz and state.json, plus listen.pt/.json and exposure.pt/.json (torch tensors)."""
        super().save(folder)
        folder = Path(folder)
        if self.net_ is not None:
            save_network(self.net_, folder / LISTEN_FILE)
        if self.exposure_ is not None:
            save_network(self.exposure_, folder / EXPOSURE_FILE)

    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _restore(self, arrays: dict[str, np.ndarray], folder: Path) -> None:
        self.net_, self.exposure_ = None, None
        self._numpy_nets = {}
        n_items = len(arrays["item_ids"])
        for attr, name in (("net_", LISTEN_FILE), ("exposure_", EXPOSURE_FILE)):
            if not (folder / name).is_file():
                continue
            net, _, _ = load_network(folder / name, device=self.params.device)
            if net.name != self.name or net.n_features_in_ != n_items:
                raise RBMFileError(folder / name, f"does not hold a {self.name} over {n_items} items")
            setattr(self, attr, net)
            self.params = params_as_saved(self.params, net)
        if self.net_ is None and self.exposure_ is None:
            raise RBMFileError(folder, f"no {self.name} network in the folder")


class RBMRecommender(NetworkRecommender):
    """One RBM (listen) and one RBM (exposure) over the user x media matrix."""

    name = "rbm"
    params_cls = RBMParams


class DBNRecommender(NetworkRecommender):
    """DBNs (stacked RBMs) for listens and exposure over the user x media matrix."""

    name = "dbn"
    params_cls = DBNParams


def network_recommender(model: CollaborativeModel) -> NetworkRecommender:
    """The recommender of fitted networks, e.g. a Flow `rbm`/`dbn` model loaded from a `flowtui train`
    folder: the same networks and item vocabulary, no copy."""
    if not hasattr(model, "user_hidden_"):
        raise NotFittedError(f"{model.kind} is not fitted yet; call fit first")
    cls: type[NetworkRecommender] = DBNRecommender if model.kind == "dbn" else RBMRecommender
    rec = cls(model.params)
    rec.net_ = model.net_
    rec.exposure_ = model.exposure_
    rec.item_ids_ = np.asarray(model.item_ids_, np.int64)
    rec.implicit_ = False
    rec.n_users_ = len(model.user_ids_)
    rec.fit_seconds_ = 0.0
    rec.notes = list(model.notes)
    return rec


register(
    RecommenderSpec(
        name="rbm",
        description="RBM: listen and exposure networks, ranked by P(played) x P(listened | played)^power (torch)",
        params_cls=RBMParams,
        factory=RBMRecommender,
        loader=RBMRecommender.load,
        quick=RBM_QUICK,
        preflight=device_preflight,
    )
)
register(
    RecommenderSpec(
        name="dbn",
        description="DBN (stacked RBMs): listen and exposure networks, ranked as the rbm",
        params_cls=DBNParams,
        factory=DBNRecommender,
        loader=DBNRecommender.load,
        quick=DBN_QUICK,
        preflight=device_preflight,
    )
)

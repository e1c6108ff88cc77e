"""The listen and exposure networks of the RBM and the DBN, fitted on a user x item matrix.

What the recommenders (`rbm_recommender`) and the Flow models `rbm`/`dbn` (`flowtui.core.flow.rbm_classifier`)
share: `build_network` (an `RBM` or `DBN` from `RBMParams`/`DBNParams`), `fit_exposure` (the exposure network,
early-stopped when asked), and `CollaborativeModel`, the networks fitted on a matrix with each user's hidden
state, from which a (user, item) pair is scored by one dot product. Nothing here imports torch at module
import.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, ClassVar

import numpy as np
from sklearn.exceptions import NotFittedError

from flowtui.core import events as ev
from flowtui.core.events import EventCallback
from flowtui.core.recs.dbn import DBN
from flowtui.core.recs.early_stopping import StopAfter, ranking_split
from flowtui.core.recs.interactions import InteractionMatrix
from flowtui.core.recs.rbm import RBM
from flowtui.core.recs.rbm_params import DBNParams, RBMParams

__all__ = [
    "EXPOSURE_FILE",
    "CollaborativeModel",
    "build_network",
    "exposure_settings",
    "fit_exposure",
    "params_as_saved",
    "renamed_events",
    "user_rates",
]

#: The exposure network's file in a model folder (a Flow model's and a recommender's alike).
EXPOSURE_FILE = "exposure.pt"


def build_network(params: RBMParams | DBNParams, **overrides: Any) -> RBM | DBN:
    """An unfitted `RBM` (from RBMParams) or `DBN` (from DBNParams): the estimator's arguments are taken from
    `params` (the matrix keys are not the estimator's), then `overrides` applied."""
    cls: type[RBM] | type[DBN] = DBN if isinstance(params, DBNParams) else RBM
    kwargs: dict[str, Any] = {
        f.name: getattr(params, f.name) for f in dataclasses.fields(cls) if hasattr(params, f.name)
    }
    return cls(**{**kwargs, **overrides})


def kind_of(params: RBMParams | DBNParams) -> str:
    """ "dbn" for DBNParams, else "rbm"."""
    return "dbn" if isinstance(params, DBNParams) else "rbm"


def params_as_saved(params: RBMParams | DBNParams, net: RBM | DBN) -> RBMParams | DBNParams:
    """`params` with the scoring settings the loaded network carries (a DBN saved before `deep_mix` existed
    scores with 0.5, a network saved before `catalogue_context` existed has none, whatever today's
    defaults), so that the model's parameters say how it scores."""
    if isinstance(params, DBNParams) and isinstance(net, DBN) and params.deep_mix != net.deep_mix:
        params = dataclasses.replace(params, deep_mix=float(net.deep_mix))
    if params.catalogue_context != bool(net.catalogue_context):
        params = dataclasses.replace(params, catalogue_context=bool(net.catalogue_context))
    return params


def exposure_settings(params: RBMParams | DBNParams) -> dict[str, Any]:
    """The estimator arguments of the exposure network that differ from the listen network's."""
    # every played entry is a 1, so each user's mean spin (the context input) is the constant 1: no context
    sized: dict[str, Any] = {
        "implicit_weight": float(params.exposure_weight or 0.0),
        "n_iter": params.exposure_n_iter,
        "learning_rate": params.exposure_learning_rate,
        "lr_schedule": params.exposure_lr_schedule,
        "user_rate": False,
        "catalogue_context": bool(params.catalogue_context),
    }
    if isinstance(params, RBMParams):
        sized["n_components"] = params.exposure_n_components
    return sized


def fit_exposure(
    params: RBMParams | DBNParams,
    matrix: InteractionMatrix,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
    notes: list[str] | None = None,
) -> RBM | DBN:
    """The exposure network: the same architecture on the played matrix (every entry 1, unseen entries weak
    negatives of weight `exposure_weight`), so its visible probability is P(the user plays the item).
    With `validation_fraction` > 0 it trains on the rest of the played entries and stops early on their
    validation NDCG@10 (`early_stopping`), keeping its best weights; a line saying so goes to `notes`.

    The listen network is masked and models P(listened | played); a top-N list of unheard items needs both
    (`recommend` and `rec_eval` rank by their product, the expected listens)."""
    kind = kind_of(params)
    w = float(params.exposure_weight or 0.0)
    sized = exposure_settings(params)
    played = matrix.as_played(w)
    split = ranking_split(played, params.validation_fraction, params.random_state, params.patience)
    label = f"{kind} exposure"
    if split is None:
        net = build_network(params, **sized)
        net.fit(played, on_event=renamed_events(on_event, label), cancel=cancel)
        return net
    # search: train on the rest, stop early on validation NDCG@10; then refit on every entry, stopped after
    # the best epoch count (the search's own weights miss the validation entries: 3% lower NDCG@10 on
    # MovieLens). The refit keeps the search's n_iter, so a learning-rate schedule runs alike in both.
    # A DBN's search is its first layer alone: the monitor watches that layer, the upper ones would be waste.
    train, stopper = split
    stopper.cancel = cancel
    search_sized = {**sized, "layers": tuple(params.layers[:1])} if isinstance(params, DBNParams) else sized
    events = _TwoPhaseEvents(on_event, label)
    build_network(params, **search_sized).fit(train, on_event=events.search, cancel=cancel, monitor=stopper)
    net = build_network(params, **sized)
    best = stopper.best_epoch
    net.fit(played, on_event=events.refit, cancel=cancel, monitor=StopAfter(best) if best else None)
    if notes is not None:
        notes.append(stopper.summary())
    return net


def renamed_events(on_event: EventCallback | None, model: str) -> EventCallback | None:
    """`on_event` with the fit events (BeforeFit, AfterEpoch, AfterFit, Saved) renamed to `model`."""
    if on_event is None:
        return None
    target = on_event

    def relay(e: ev.Event) -> None:
        if isinstance(e, (ev.BeforeFit, ev.AfterEpoch, ev.AfterFit, ev.Saved)):
            e = dataclasses.replace(e, model=model)
        target(e)

    return relay


class _TwoPhaseEvents:
    """The events of an early-stopped search and its refit as ONE fit of `model`: one BeforeFit announcing
    at most twice the search's epochs, the refit's epochs numbered after the search's, one AfterFit."""

    def __init__(self, on_event: EventCallback | None, model: str) -> None:
        self._out = renamed_events(on_event, model)
        self._searched = 0
        self._total = 0
        self._t0 = time.perf_counter()

    def search(self, e: ev.Event) -> None:
        if self._out is None:
            return
        if isinstance(e, ev.BeforeFit):
            self._total = 2 * (e.n_epochs or 0)
            self._t0 = time.perf_counter()
            e = dataclasses.replace(e, n_epochs=self._total or None)
        elif isinstance(e, ev.AfterEpoch):
            self._searched = e.epoch
            e = dataclasses.replace(e, n_epochs=max(self._total, e.epoch))
        elif isinstance(e, ev.AfterFit) and not e.cancelled:
            return
        self._out(e)

    def refit(self, e: ev.Event) -> None:
        if self._out is None or isinstance(e, ev.BeforeFit):
            return
        if isinstance(e, ev.AfterEpoch):
            epoch = self._searched + e.epoch
            e = dataclasses.replace(e, epoch=epoch, n_epochs=max(self._total, epoch), metric=None)
        elif isinstance(e, ev.AfterFit):
            e = dataclasses.replace(e, seconds=time.perf_counter() - self._t0)
        self._out(e)


def user_rates(matrix: InteractionMatrix) -> np.ndarray:
    """Each user's mean observed spin (2 * label - 1): the context input of the conditional RBM."""
    n = np.diff(matrix.labels.indptr)
    s = np.bincount(matrix.entry_rows(), weights=2.0 * matrix.labels.data - 1.0, minlength=matrix.shape[0])
    rates: np.ndarray = (s / np.maximum(n, 1)).astype(np.float32)
    return rates


class CollaborativeModel:
    """The rbm (one RBM) or dbn (stacked RBMs) networks fitted on a user x item matrix: the listen network
    `net_`, the exposure network `exposure_` (None without `exposure_weight`), the matrix's vocabulary and
    each user's hidden state next to the visible layer. The Flow models `rbm`/`dbn` add the rows they learn
    from and their fallbacks (`flowtui.core.flow.rbm_classifier`); `rbm_recommender.network_recommender`
    turns a fitted one into a recommender."""

    kind: ClassVar[str] = "rbm"
    net_: RBM | DBN
    exposure_: RBM | DBN | None = None
    user_ids_: np.ndarray
    item_ids_: np.ndarray
    item_counts_: np.ndarray
    user_hidden_: np.ndarray
    user_rate_: np.ndarray

    def __init__(self, params: RBMParams | DBNParams | None = None) -> None:
        cls = DBNParams if self.kind == "dbn" else RBMParams
        self.params = params if params is not None else cls()
        if not isinstance(self.params, cls):
            raise TypeError(f"{self.kind} takes {cls.__name__}, got {type(params).__name__}")
        self.notes: list[str] = []
        self.name = self.kind

    def flat_params(self) -> dict[str, Any]:
        """The parameters as a plain dict (the `params` of model.json)."""
        return dataclasses.asdict(self.params)

    def fit_matrix(
        self, matrix: InteractionMatrix, on_event: EventCallback | None, cancel: threading.Event | None
    ) -> None:
        """Fit the networks on `matrix` and keep its vocabulary and each user's hidden state."""
        self._fit_networks(matrix, on_event, cancel)
        self.user_ids_ = matrix.user_ids
        self.item_ids_ = matrix.item_ids
        self.item_counts_ = matrix.item_counts
        # Each user's hidden state under the training matrix, next to the visible layer: a pair's score is
        # then one dot product, and a saved model needs no training data to predict.
        self.user_hidden_ = self.net_.hidden_next_to_visible(matrix).astype(np.float32)
        self.user_rate_ = user_rates(matrix)

    def _fit_networks(
        self, matrix: InteractionMatrix, on_event: EventCallback | None, cancel: threading.Event | None
    ) -> None:
        """Fit `net_` on `matrix`, and `exposure_` (None without `exposure_weight`): the one step of
        `fit_matrix` that a distributed model does its own way."""
        self.net_ = build_network(self.params)
        self.net_.fit(matrix, on_event=on_event, cancel=cancel)
        self.exposure_ = None
        if self.params.exposure_weight:
            self.exposure_ = fit_exposure(self.params, matrix, on_event, cancel, self.notes)

    def _check_fitted(self) -> None:
        if not hasattr(self, "user_hidden_"):
            raise NotFittedError(f"{self.kind} is not fitted yet; call fit first")

    def pair_scores(self, user_rows: np.ndarray, item_cols: np.ndarray) -> np.ndarray:
        """P(listened) of (user row, item column) pairs from the stored hidden states (no fallback)."""
        W, b, e = self.visible_weights()
        logits = np.einsum("nh,hn->n", self.user_hidden_[user_rows], W[:, item_cols]) + b[item_cols]
        if hasattr(self, "user_rate_"):
            logits += self.user_rate_[user_rows] * e[item_cols]
        p: np.ndarray = 1.0 / (1.0 + np.exp(-2.0 * logits.astype(np.float64)))  # spin visible units
        return p

    def visible_weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(components of the layer next to the visible units, visible biases, visible context weights)."""
        W, b, e = self.net_._visible_layer()
        return W.detach().cpu().numpy(), b.detach().cpu().numpy(), e.detach().cpu().numpy()

"""The RBM and the DBN as registered Flow models.

`rbm`/`dbn` learn the user x media matrix of the training rows and score a row by the predicted listen
probability of that user for that media; an unknown media falls back to the user's smoothed listen rate,
an unknown user to the media's smoothed listen rate (the population rate when both are unknown).
Their parameters are `RBMParams`/`DBNParams` (`rbm_params.py`). Nothing here imports torch at module
import (registering the models stays cheap). The LightGBM + RBM hybrid is `flowtui.core.flow.hybrid`;
the same networks as recommenders are `flowtui.core.recs.rbm_recommender`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from flowtui.core import events as ev
from flowtui.core.events import EventCallback
from flowtui.core.recs.dbn import DBN
from flowtui.core.recs.early_stopping import StopAfter, ranking_split
from flowtui.core.recs.interactions import InteractionMatrix, _lookup
from flowtui.core.recs.network_files import RBMFileError, load_network, save_network
from flowtui.core.recs.rbm import RBM
from flowtui.core.recs.rbm_params import (
    DBN_QUICK,
    DEVICES,
    RBM_QUICK,
    CDParams,
    DBNParams,
    NetParams,
    RBMParams,
)
from flowtui.core.registry import ModelSpec, register

__all__ = [
    "DBN_QUICK",
    "DEVICES",
    "RBM_QUICK",
    "CDParams",
    "CollaborativeModel",
    "DBNModel",
    "DBNParams",
    "NetParams",
    "RBMModel",
    "RBMParams",
    "build_network",
    "exposure_settings",
    "fit_exposure",
    "user_rates",
]

NET_FILE = "rbm.pt"
EXPOSURE_FILE = "exposure.pt"
MODEL_JSON = "model.json"
#: Prior weight (pseudo-rows) of the smoothed user and media listen rates used as fallbacks.
FALLBACK_SMOOTHING = 10.0


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
        net.fit(played, on_event=_renamed(on_event, label), cancel=cancel)
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


def _renamed(on_event: EventCallback | None, model: str) -> EventCallback | None:
    """`on_event` with the fit events renamed to `model`."""
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
        self._out = _renamed(on_event, model)
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
    """A FlowModel over the user x media matrix: `rbm` (one RBM) or `dbn` (stacked RBMs)."""

    kind: ClassVar[str] = "rbm"
    net_: RBM | DBN
    exposure_: RBM | DBN | None = None
    user_ids_: np.ndarray
    item_ids_: np.ndarray
    item_counts_: np.ndarray
    user_hidden_: np.ndarray
    user_rate_: np.ndarray
    user_fallback_ids_: np.ndarray
    user_fallback_rate_: np.ndarray
    media_fallback_ids_: np.ndarray
    media_fallback_rate_: np.ndarray
    global_rate_: float

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

    # -- fitting ---------------------------------------------------------------------------------
    def fit(
        self,
        X: pd.DataFrame | None,
        y: np.ndarray,
        rows: pd.DataFrame,
        *,
        on_event: EventCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> CollaborativeModel:
        """Learn the matrix of `rows` labelled by `y` (X is not used)."""
        ev.check_cancel(cancel)
        keep = ("user_id", "media_id", "ts_listen", "artist_id", "album_id")
        frame = rows[[c for c in keep if c in rows.columns]].copy()
        frame["is_listened"] = np.asarray(y, dtype=np.float32)
        if len(frame) == 0:
            raise ValueError(f"{self.kind}: no training rows")
        matrix = InteractionMatrix.from_frame(
            frame,
            "media",
            max_items=self.params.max_items,
            min_count=self.params.min_count,
            label=self.params.label,
        )
        self.notes = []
        if matrix.shape[1] < len(np.unique(frame["media_id"].to_numpy())):
            self.notes.append(
                f"item vocabulary capped at {matrix.shape[1]:,} media (max_items, min_count); others use fallbacks"
            )
        self._fit_networks(matrix, on_event, cancel)
        self._fit_fallbacks(frame)
        self.user_ids_ = matrix.user_ids
        self.item_ids_ = matrix.item_ids
        self.item_counts_ = matrix.item_counts
        # Each user's hidden state under the training matrix, next to the visible layer: a row's score is
        # then one dot product, and a saved model needs no training data to predict.
        self.user_hidden_ = self.net_.hidden_next_to_visible(matrix).astype(np.float32)
        self.user_rate_ = user_rates(matrix)
        return self

    def _fit_networks(
        self, matrix: InteractionMatrix, on_event: EventCallback | None, cancel: threading.Event | None
    ) -> None:
        """Fit `net_` on `matrix`, and `exposure_` (None without `exposure_weight`): the one step of `fit`
        that a distributed model does its own way."""
        self.net_ = build_network(self.params)
        self.net_.fit(matrix, on_event=on_event, cancel=cancel)
        self.exposure_ = None
        if self.params.exposure_weight:
            self.exposure_ = fit_exposure(self.params, matrix, on_event, cancel, self.notes)

    def _fit_fallbacks(self, frame: pd.DataFrame) -> None:
        y = frame["is_listened"].to_numpy(np.float64)
        self.global_rate_ = float(y.mean())
        m = FALLBACK_SMOOTHING
        for col, attr in (("user_id", "user"), ("media_id", "media")):
            ids, inv = np.unique(frame[col].to_numpy(np.int64), return_inverse=True)
            n = np.bincount(inv).astype(np.float64)
            s = np.bincount(inv, weights=y)
            setattr(self, f"{attr}_fallback_ids_", ids)
            setattr(
                self, f"{attr}_fallback_rate_", ((s + m * self.global_rate_) / (n + m)).astype(np.float32)
            )

    # -- predicting ------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "user_hidden_"):
            raise NotFittedError(f"{self.kind} is not fitted yet; call fit first")

    def predict_proba(self, X: pd.DataFrame | None, rows: pd.DataFrame) -> np.ndarray:
        """P(listened) of each row's (user, media) pair; fallbacks for unknown users or media."""
        self._check_fitted()
        user = rows["user_id"].to_numpy(np.int64)
        media = rows["media_id"].to_numpy(np.int64)
        u = _lookup(self.user_ids_, user)
        i = _lookup(self.item_ids_, media)
        out = np.full(len(rows), self.global_rate_, np.float64)
        fu = _lookup(self.user_fallback_ids_, user)
        fm = _lookup(self.media_fallback_ids_, media)
        out[fu >= 0] = self.user_fallback_rate_[fu[fu >= 0]]
        out[(fu < 0) & (fm >= 0)] = self.media_fallback_rate_[fm[(fu < 0) & (fm >= 0)]]
        both = (u >= 0) & (i >= 0)
        if both.any():
            out[both] = self.pair_scores(u[both], i[both])
        return np.clip(out, 0.0, 1.0)

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

    def feature_importances(self) -> pd.Series | None:
        return None

    # -- persistence -----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write `rbm.pt` (weights, vocabulary, hidden states, fallbacks as arrays), `rbm.json` and `model.json`."""
        self._check_fitted()
        folder = Path(folder)
        arrays = {
            "user_ids": self.user_ids_,
            "item_ids": self.item_ids_,
            "item_counts": self.item_counts_,
            "user_hidden": self.user_hidden_,
            "user_rate": self.user_rate_,
            "user_fallback_ids": self.user_fallback_ids_,
            "user_fallback_rate": self.user_fallback_rate_,
            "media_fallback_ids": self.media_fallback_ids_,
            "media_fallback_rate": self.media_fallback_rate_,
        }
        save_network(self.net_, folder / NET_FILE, arrays, {"global_rate": self.global_rate_})
        if self.exposure_ is not None:
            save_network(self.exposure_, folder / EXPOSURE_FILE)
        doc = {"model": self.kind, "params": self.flat_params(), "notes": self.notes}
        (folder / MODEL_JSON).write_text(json.dumps(doc, indent=2))

    @classmethod
    def load(cls, folder: Path, params: RBMParams | DBNParams) -> CollaborativeModel:
        """Rebuild a fitted model from `folder` (RBMFileError on a damaged file)."""
        folder = Path(folder)
        model = cls(params)
        net, arrays, meta = load_network(folder / NET_FILE, device=params.device)
        if net.name != cls.kind:
            raise RBMFileError(folder / NET_FILE, f"holds a {net.name}, expected a {cls.kind}")
        model._restore(net, arrays, meta, folder)
        model.params = params_as_saved(params, net)
        if (folder / EXPOSURE_FILE).is_file():
            model.exposure_, _, _ = load_network(folder / EXPOSURE_FILE, device=params.device)
            if model.exposure_.n_features_in_ != net.n_features_in_:
                raise RBMFileError(
                    folder / EXPOSURE_FILE, "exposure network does not match the model's items"
                )
        return model

    def _restore(
        self, net: RBM | DBN, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path
    ) -> None:
        missing = [k for k in ("user_ids", "item_ids", "user_hidden", "user_rate") if k not in arrays]
        if missing:
            raise RBMFileError(folder / NET_FILE, "model file lacks arrays", expected=", ".join(missing))
        self.net_ = net
        for k, v in arrays.items():
            setattr(self, f"{k}_", v)
        self.global_rate_ = float(meta.get("global_rate", 0.5))
        if self.user_hidden_.shape[0] != len(self.user_ids_) or len(self.item_ids_) != net.n_features_in_:
            raise RBMFileError(folder / NET_FILE, "model arrays do not match the network's shape")
        doc_path = folder / MODEL_JSON
        if doc_path.is_file():
            self.notes = [str(n) for n in json.loads(doc_path.read_text()).get("notes", [])]


class RBMModel(CollaborativeModel):
    """One RBM over the user x media matrix."""

    kind = "rbm"


class DBNModel(CollaborativeModel):
    """A DBN (stacked RBMs) over the user x media matrix."""

    kind = "dbn"


register(
    ModelSpec(
        name="rbm",
        description="RBM over the user x media matrix (masked CD-k, torch)",
        params_cls=RBMParams,
        factory=RBMModel,
        loader=RBMModel.load,
        quick=RBM_QUICK,
        family="collaborative",
    )
)
register(
    ModelSpec(
        name="dbn",
        description="DBN of stacked RBMs over the user x media matrix",
        params_cls=DBNParams,
        factory=DBNModel,
        loader=DBNModel.load,
        quick=DBN_QUICK,
        family="collaborative",
    )
)

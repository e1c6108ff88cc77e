"""The RBM and the DBN as registered Flow models: a thin adapter over the recommender-side networks.

`rbm`/`dbn` learn the user x media matrix of the training rows (`rbm_networks.CollaborativeModel`) and score
a row by the predicted listen probability of that user for that media; an unknown media falls back to the
user's smoothed listen rate, an unknown user to the media's smoothed listen rate (the population rate when
both are unknown). Their parameters are `RBMParams`/`DBNParams` (`recs.rbm_params`); the matrix keys
(max_items, min_count, label) say how the rows become the matrix. Nothing here imports torch at module
import (registering the models stays cheap). The LightGBM + RBM hybrid is `flowtui.core.flow.hybrid`; the
same networks as recommenders are `flowtui.core.recs.rbm_recommender`.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flowtui.core import events as ev
from flowtui.core.events import EventCallback
from flowtui.core.recs.dbn import DBN
from flowtui.core.recs.interactions import InteractionMatrix, _lookup
from flowtui.core.recs.network_files import RBMFileError, load_network, save_network
from flowtui.core.recs.rbm import RBM
from flowtui.core.recs.rbm_networks import EXPOSURE_FILE, CollaborativeModel, params_as_saved
from flowtui.core.recs.rbm_params import DBN_QUICK, RBM_QUICK, DBNParams, RBMParams
from flowtui.core.recs.rbm_source import device_preflight
from flowtui.core.registry import ModelSpec, register

__all__ = ["DBNModel", "RBMModel"]

NET_FILE = "rbm.pt"
MODEL_JSON = "model.json"
#: Prior weight (pseudo-rows) of the smoothed user and media listen rates used as fallbacks.
FALLBACK_SMOOTHING = 10.0
#: The raw columns a model keeps from the training rows.
ROW_COLUMNS = ("user_id", "media_id", "ts_listen", "artist_id", "album_id")


class RBMModel(CollaborativeModel):
    """A FlowModel over the user x media matrix: one RBM (`dbn`: stacked RBMs, `DBNModel`)."""

    kind = "rbm"
    user_fallback_ids_: np.ndarray
    user_fallback_rate_: np.ndarray
    media_fallback_ids_: np.ndarray
    media_fallback_rate_: np.ndarray
    global_rate_: float

    # -- fitting ---------------------------------------------------------------------------------
    def fit(
        self,
        X: pd.DataFrame | None,
        y: np.ndarray,
        rows: pd.DataFrame,
        *,
        on_event: EventCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> RBMModel:
        """Learn the matrix of `rows` labelled by `y` (X is not used)."""
        ev.check_cancel(cancel)
        frame = rows[[c for c in ROW_COLUMNS if c in rows.columns]].copy()
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
        self.fit_matrix(matrix, on_event, cancel)
        self._fit_fallbacks(frame)
        return self

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
    def load(cls, folder: Path, params: RBMParams | DBNParams) -> RBMModel:
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


class DBNModel(RBMModel):
    """The Flow model `dbn`: a DBN (stacked RBMs) over the user x media matrix, fitted and scored as `rbm`."""

    kind = "dbn"


register(
    ModelSpec(
        name="rbm",
        description="RBM over the user x media matrix (masked CD-k, torch)",
        params_cls=RBMParams,
        factory=RBMModel,
        loader=RBMModel.load,
        quick=RBM_QUICK,
        preflight=device_preflight,
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
        preflight=device_preflight,
        family="collaborative",
    )
)

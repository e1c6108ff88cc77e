"""The RBM, the DBN and the LightGBM + RBM hybrid as registered Flow models.

`rbm`/`dbn` learn the user x media matrix of the training rows and score a row by the predicted listen
probability of that user for that media; an unknown media falls back to the user's smoothed listen rate,
an unknown user to the media's smoothed listen rate (the population rate when both are unknown).
`hybrid` is LightGBM with that score as one more feature, computed leak-free: each training row's score
comes from an RBM fitted on the other folds of rows, the targets' score from an RBM fitted on all rows.
Nothing here imports torch at module import (registering the models stays cheap).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from flowtui.core import events as ev
from flowtui.core.events import EventCallback
from flowtui.core.flow.classifiers import LightGBMModel, LightGBMParams
from flowtui.core.params import Value, param
from flowtui.core.recs.interactions import InteractionMatrix
from flowtui.core.registry import ModelSpec, register

NET_FILE = "rbm.pt"
MODEL_JSON = "model.json"
#: Prior weight (pseudo-rows) of the smoothed user and media listen rates used as fallbacks.
FALLBACK_SMOOTHING = 10.0
SCORE_FEATURE = "rbm_score"

DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class NetParams:
    """What the RBM and the DBN share: training of the network and the matrix it learns."""

    learning_rate: float = param(0.3, "CD learning rate", low=0.0, low_open=True, high=100.0)
    batch_size: int = param(256, "users per mini-batch", low=1, high=1_000_000)
    n_iter: int = param(5, "epochs (per layer for a DBN)", low=1, high=100_000)
    k: int = param(1, "Gibbs steps of contrastive divergence (CD-k)", low=1, high=1000)
    k_schedule: tuple[int, ...] | None = param(
        None, "k per epoch, the last repeated, e.g. [1,1,3]", low=1, high=1000
    )
    momentum: float = param(0.5, "momentum of the updates", low=0.0, high=0.999)
    weight_decay: float = param(1e-4, "L2 weight decay", low=0.0, high=1.0)
    random_state: int | None = param(0, "seed (null: a fresh seed each fit)", low=0, high=2**32 - 1)
    device: str = param("auto", "torch device (auto: CUDA when available)", choices=DEVICES)
    max_items: int = param(50_000, "items kept, those with most rows", low=1, high=100_000_000)
    min_count: int = param(1, "rows an item needs to be kept", low=1, high=1_000_000_000)
    label: Literal["latest", "majority", "mean"] = param("latest", "label of a pair seen several times")
    exposure_weight: float = param(
        0.05,
        "weight of unseen entries as negatives in the exposure network (0: no exposure network)",
        low=0.0,
        high=1.0,
    )
    # the exposure network learns what users play at all: a denser target that wants a bigger, longer-trained
    # network than the listen network (whose held-out AUC suffers from long training)
    exposure_n_components: int = param(128, "hidden units of the exposure network (rbm)", low=1, high=65_536)
    exposure_n_iter: int = param(20, "epochs of the exposure network", low=1, high=100_000)


@dataclass(frozen=True)
class RBMParams(NetParams):
    n_components: int = param(64, "hidden units", low=1, high=65_536)


@dataclass(frozen=True)
class DBNParams(NetParams):
    layers: tuple[int, ...] = param((128, 32), "hidden units of each layer, bottom first", low=1, high=65_536)


RBM_QUICK: dict[str, Value] = {
    "n_components": 32,
    "n_iter": 3,
    "max_items": 20_000,
    "exposure_n_components": 32,
    "exposure_n_iter": 5,
}
DBN_QUICK: dict[str, Value] = {"layers": (32, 8), "n_iter": 3, "max_items": 20_000, "exposure_n_iter": 5}
_MATRIX_KEYS = (
    "max_items",
    "min_count",
    "label",
    "exposure_weight",
    "exposure_n_components",
    "exposure_n_iter",
)
EXPOSURE_FILE = "exposure.pt"


def build_network(kind: str, params: dict[str, Any]) -> Any:
    """An unfitted `RBM` ("rbm") or `DBN` ("dbn") from flowtui parameters (matrix keys ignored)."""
    from flowtui.core.recs.rbm import DBN, RBM

    net_params = {k: v for k, v in params.items() if k not in _MATRIX_KEYS}
    if kind == "dbn":
        net_params.pop("n_components", None)
        net_params["layers"] = tuple(net_params.get("layers") or (128, 32))
        return DBN(**net_params)
    net_params.pop("layers", None)
    return RBM(**net_params)


def fit_exposure(
    kind: str,
    params: dict[str, Any],
    matrix: InteractionMatrix,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> Any:
    """The exposure network: the same architecture on the played matrix (every entry 1, unseen entries weak
    negatives of weight `exposure_weight`), so its visible probability is P(the user plays the item).

    The listen network is masked and models P(listened | played); a top-N list of unheard items needs both
    (`recommend` and `rec_eval` rank by their product, the expected listens)."""
    w = float(params.get("exposure_weight") or 0.0)
    sized = {"implicit_weight": w, "n_iter": params.get("exposure_n_iter") or params.get("n_iter", 20)}
    if kind == "rbm":
        sized["n_components"] = params.get("exposure_n_components") or params.get("n_components", 128)
    net = build_network(kind, {**params, **sized})

    def relabel(e: ev.Event) -> None:
        if on_event is not None:
            on_event(dataclasses.replace(e, model=f"{kind} exposure") if hasattr(e, "model") else e)  # type: ignore[call-arg]

    net.fit(matrix.as_played(w), on_event=relabel, cancel=cancel)
    return net


def user_rates(matrix: InteractionMatrix) -> np.ndarray:
    """Each user's mean observed spin (2 * label - 1): the context input of the conditional RBM."""
    n = np.diff(matrix.labels.indptr)
    s = np.bincount(matrix.entry_rows(), weights=2.0 * matrix.labels.data - 1.0, minlength=matrix.shape[0])
    return (s / np.maximum(n, 1)).astype(np.float32)


class CollaborativeModel:
    """A FlowModel over the user x media matrix: `rbm` (one RBM) or `dbn` (stacked RBMs)."""

    kind: ClassVar[str] = "rbm"
    net_: Any
    exposure_: Any = None
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
        """The parameters as the flat dict `build_network` and `fit_exposure` take."""
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
        frame = rows[[c for c in ("user_id", "media_id", "ts_listen") if c in rows.columns]].copy()
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
        self.net_ = build_network(self.kind, self.flat_params())
        self.net_.fit(matrix, on_event=on_event, cancel=cancel)
        self.exposure_ = None
        if self.params.exposure_weight:
            self.exposure_ = fit_exposure(self.kind, self.flat_params(), matrix, on_event, cancel)
        self._fit_fallbacks(frame)
        self.user_ids_ = matrix.user_ids
        self.item_ids_ = matrix.item_ids
        self.item_counts_ = matrix.item_counts
        # Each user's hidden state under the training matrix, next to the visible layer: a row's score is
        # then one dot product, and a saved model needs no training data to predict.
        self.user_hidden_ = self._hidden_next_to_visible(matrix)
        self.user_rate_ = user_rates(matrix)
        return self

    def _hidden_next_to_visible(self, matrix: InteractionMatrix) -> np.ndarray:
        import torch

        net = self.net_
        out = []
        with torch.no_grad():
            from flowtui.core.recs.rbm import _Source

            src = _Source(matrix, None, getattr(net, "implicit_weight", 0.0))
            dev = net._device()
            for start in range(0, src.n_rows, net.batch_size):
                idx = np.arange(start, min(start + net.batch_size, src.n_rows))
                bt = src.batch(idx, dev)
                h = net._top_down_to_last_hidden(net._up(bt.s0, bt.r))
                out.append(h.cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)

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
        from flowtui.core.recs.interactions import _lookup

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
        return 1.0 / (1.0 + np.exp(-2.0 * logits.astype(np.float64)))  # spin visible units

    def visible_weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(components of the layer next to the visible units, visible biases, visible context weights)."""
        W, b, e = self.net_._visible_layer()
        return W.detach().cpu().numpy(), b.detach().cpu().numpy(), e.detach().cpu().numpy()

    def feature_importances(self) -> pd.Series | None:
        return None

    # -- persistence -----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write `rbm.pt` (weights, vocabulary, hidden states, fallbacks as arrays), `rbm.json` and `model.json`."""
        from flowtui.core.recs.rbm import save_network

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
        from flowtui.core.recs.rbm import RBMFileError, load_network

        folder = Path(folder)
        model = cls(params)
        net, arrays, meta = load_network(folder / NET_FILE, device=params.device)
        if net.name != cls.kind:
            raise RBMFileError(folder / NET_FILE, f"holds a {net.name}, expected a {cls.kind}")
        model._restore(net, arrays, meta, folder)
        if (folder / EXPOSURE_FILE).is_file():
            model.exposure_, _, _ = load_network(folder / EXPOSURE_FILE, device=params.device)
            if model.exposure_.n_features_in_ != net.n_features_in_:
                raise RBMFileError(
                    folder / EXPOSURE_FILE, "exposure network does not match the model's items"
                )
        return model

    def _restore(self, net: Any, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> None:
        from flowtui.core.recs.rbm import RBMFileError

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


@dataclass(frozen=True)
class HybridParams(LightGBMParams):
    rbm_folds: int = param(3, "folds of the out-of-fold RBM scores", low=2, high=20)
    # the hybrid needs listen probabilities only: no exposure network
    rbm: RBMParams = RBMParams(exposure_weight=0.0)


class HybridModel(LightGBMModel):
    """LightGBM plus the RBM's score as a feature, out-of-fold for training rows (leak-free)."""

    name = "hybrid"
    params_cls: ClassVar[type] = HybridParams
    params: HybridParams

    def _rbm_params(self) -> RBMParams:
        return self.params.rbm

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        rows: pd.DataFrame,
        *,
        on_event: EventCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> HybridModel:
        """Out-of-fold RBM scores for the training rows, an RBM on all rows for later rows, then LightGBM."""
        y = np.asarray(y)
        n_folds = self.params.rbm_folds
        rng = np.random.default_rng(self.random_state)
        fold = rng.integers(0, n_folds, len(rows))
        score = np.zeros(len(rows), np.float64)
        t0 = time.perf_counter()
        for f in range(n_folds):
            ev.check_cancel(cancel)
            ev.emit(on_event, ev.Progress("hybrid: out-of-fold RBM scores", f, n_folds))
            inside = fold != f
            rbm = RBMModel(self._rbm_params()).fit(None, y[inside], rows[inside], cancel=cancel)
            score[~inside] = rbm.predict_proba(None, rows[~inside])
        ev.emit(on_event, ev.Progress("hybrid: out-of-fold RBM scores", n_folds, n_folds))
        self.rbm_ = RBMModel(self._rbm_params()).fit(None, y, rows, cancel=cancel)
        ev.emit(on_event, ev.Log(f"hybrid: {n_folds + 1} RBMs fitted in {time.perf_counter() - t0:.1f}s"))
        super().fit(
            X.assign(**{SCORE_FEATURE: score.astype(np.float32)}), y, rows, on_event=on_event, cancel=cancel
        )
        self.notes.append(f"{SCORE_FEATURE}: out-of-fold ({n_folds} folds) RBM scores for training rows")
        return self

    def predict_proba(self, X: pd.DataFrame, rows: pd.DataFrame | None = None) -> np.ndarray:
        """LightGBM's probability with the full-data RBM's score of each row added."""
        if rows is None:
            raise ValueError("hybrid needs the raw rows (user_id, media_id) to score")
        if not hasattr(self, "rbm_"):
            raise NotFittedError("hybrid is not fitted yet; call fit first")
        s = self.rbm_.predict_proba(None, rows).astype(np.float32)
        return super().predict_proba(X.assign(**{SCORE_FEATURE: s}), rows)

    def _save_files(self, folder: Path) -> None:
        super()._save_files(folder)
        sub = Path(folder) / "rbm"
        sub.mkdir()
        self.rbm_.save(sub)

    def _load_files(self, folder: Path, state: dict[str, Any]) -> None:
        super()._load_files(folder, state)
        self.rbm_ = RBMModel.load(Path(folder) / "rbm", self._rbm_params())


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
register(
    ModelSpec(
        name="hybrid",
        description="LightGBM with the out-of-fold RBM score as an extra feature",
        params_cls=HybridParams,
        factory=HybridModel,
        loader=HybridModel.load,
        quick={
            "n_estimators": 100,
            "learning_rate": 0.1,
            "min_child_samples": 10,
            "early_stopping_rounds": 20,
            "rbm_folds": 2,
            "rbm_n_iter": 5,
            "rbm_n_components": 64,
        },
        family="hybrid",
    )
)

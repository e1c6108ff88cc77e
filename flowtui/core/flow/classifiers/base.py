"""What every classifier of the Flow question shares: fit events and cancel, features, notes, JSON state.

A model's parameters are its params dataclass (`params.py`), stored as `self.params`; persistence never
uses bare pickle: JSON for small state, LightGBM's text model, and skops against an explicit list of
trusted types for scikit-learn estimators.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from flowtui.core import events as ev
from flowtui.core.events import EventCallback
from flowtui.core.params import param

MODEL_JSON = "model.json"

#: Types a saved scikit-learn model may contain beyond skops' defaults; anything else is refused at load.
TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.tree._tree.Tree",
)

#: Upper bound of any row count a user may ask for (far above any real log; refuses typos like 1e18).
MAX_ROWS = 10**10


@dataclass(frozen=True)
class SeedParams:
    """The parameter every model has."""

    random_state: int | None = param(
        0, "seed of every random choice (null: a fresh seed each fit)", low=0, high=2**32 - 1
    )


def now() -> float:
    """A monotonic clock in seconds."""
    return time.perf_counter()


def feature_array(X: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The model's feature columns as one float32 array (missing values stay NaN)."""
    missing = [f for f in features if f not in X.columns]
    if missing:
        raise ValueError(f"feature matrix lacks columns the model was trained on: {', '.join(missing)}")
    return X[features].to_numpy(dtype=np.float32, na_value=np.nan)


def sample_index(n: int, max_rows: int | None, random_state: int | None) -> np.ndarray | None:
    """Sorted random row positions when `n` exceeds `max_rows`, else None (use all rows)."""
    if max_rows is None or n <= max_rows:
        return None
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=int(max_rows), replace=False))


@dataclass(frozen=True)
class FitContext:
    """What a fit reports to and listens to: the event callback, the cancel flag, its start time."""

    on_event: EventCallback | None
    cancel: threading.Event | None
    start: float

    def epoch(self, model: str, epoch: int, n_epochs: int, metric: float | None = None) -> None:
        """Report one finished epoch (tree, round...) and stop here when cancelled."""
        ev.emit(
            self.on_event, ev.AfterEpoch(model, epoch, n_epochs, metric=metric, elapsed=now() - self.start)
        )


class BaseFlowModel:
    """Shared plumbing: fit events and cancellation, feature bookkeeping, notes and JSON state.

    Subclasses set `name` and `params_cls` and implement `_fit` and `_predict`.
    """

    name: ClassVar[str] = "base"
    params_cls: ClassVar[type] = SeedParams
    params: SeedParams

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.params_cls()
        if not isinstance(self.params, self.params_cls):
            raise TypeError(f"{self.name} takes {self.params_cls.__name__}, got {type(params).__name__}")
        self.random_state: int | None = self.params.random_state
        self.notes: list[str] = []
        self.features_: list[str] | None = None

    # -- fitting ---------------------------------------------------------------------------------
    def n_epochs(self) -> int | None:
        """Number of AfterEpoch steps a fit will report (None when it reports none)."""
        return None

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        rows: pd.DataFrame,
        *,
        on_event: EventCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> BaseFlowModel:
        """Fit on feature matrix `X`, labels `y` and the aligned raw `rows`; returns self."""
        ev.check_cancel(cancel)
        y = np.asarray(y, dtype=np.int8)
        if len(X) != len(y):
            raise ValueError(f"{self.name}: X has {len(X)} rows but y has {len(y)}")
        if len(y) == 0:
            raise ValueError(f"{self.name}: no training rows")
        self.notes = []
        self.features_ = [str(c) for c in X.columns]
        ev.emit(on_event, ev.BeforeFit(self.name, n_epochs=self.n_epochs()))
        start = now()
        try:
            self._fit(X, y, rows, FitContext(on_event, cancel, start))
        except BaseException as exc:
            self.features_ = None  # a half-fitted model must not predict
            if isinstance(exc, ev.Cancelled):
                ev.emit(on_event, ev.AfterFit(self.name, now() - start, cancelled=True))
            raise
        ev.emit(on_event, ev.AfterFit(self.name, now() - start))
        return self

    def _fit(self, X: pd.DataFrame, y: np.ndarray, rows: pd.DataFrame, ctx: FitContext) -> None:
        raise NotImplementedError  # abstract hook

    def _note(self, on_event: EventCallback | None, message: str) -> None:
        self.notes.append(message)
        ev.emit(on_event, ev.Log(f"{self.name}: {message}"))

    def _check_fitted(self) -> list[str]:
        if self.features_ is None:
            raise NotFittedError(f"{self.name} is not fitted yet; call fit first")
        return self.features_

    # -- predicting ------------------------------------------------------------------------------
    def predict_proba(self, X: pd.DataFrame, rows: pd.DataFrame | None = None) -> np.ndarray:
        """P(is_listened = 1) for each row of `X`."""
        features = self._check_fitted()
        p = self._predict(X, features) if len(X) else np.empty(0)
        return np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)

    def _predict(self, X: pd.DataFrame, features: list[str]) -> np.ndarray:
        raise NotImplementedError  # abstract hook

    def feature_importances(self) -> pd.Series | None:
        """Importance per feature (sorted, largest first), or None when the model has none."""
        return None

    # -- persistence -----------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {}

    def save(self, folder: Path) -> None:
        """Write `model.json` (features, notes, small state) and the model's own files into `folder`."""
        features = self._check_fitted()
        folder = Path(folder)
        doc = {"model": self.name, "features": features, "notes": self.notes, "state": self._state()}
        (folder / MODEL_JSON).write_text(json.dumps(doc, indent=2))
        self._save_files(folder)

    def _save_files(self, folder: Path) -> None:
        pass

    @classmethod
    def load(cls, folder: Path, params: Any) -> BaseFlowModel:
        """Rebuild a fitted model from a folder written by `save` (raises on a bad folder)."""
        folder = Path(folder)
        doc = json.loads((folder / MODEL_JSON).read_text())
        if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
            raise ValueError(f"{folder / MODEL_JSON}: not a flowtui model description")
        model = cls(params)
        model.features_ = [str(f) for f in doc["features"]]
        model.notes = [str(n) for n in doc.get("notes", [])]
        model._load_files(folder, doc.get("state") or {})
        return model

    def _load_files(self, folder: Path, state: dict[str, Any]) -> None:
        pass


def load_skops(path: Path) -> Any:
    """Load a skops file, refusing any type outside skops' defaults and `TRUSTED_TYPES`."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if t not in TRUSTED_TYPES]
    if refused:
        raise ValueError(f"{path}: refuses to load untrusted types {', '.join(refused)}")
    return sio.load(path, trusted=untrusted)

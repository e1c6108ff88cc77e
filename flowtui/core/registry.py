"""One registry of every model flowtui can train for the Flow-track question.

A model implements `FlowModel`: it is fitted on training rows (their feature matrix `X`, the labels `y`
and the raw DSG17 `rows` the features came from, aligned) and predicts the listen probability of other
rows. Feature-based models use `X`; collaborative models (rbm, dbn) use `rows` (user_id, media_id, ...).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from flowtui.core.events import EventCallback


@runtime_checkable
class FlowModel(Protocol):
    """What every registered model provides."""

    #: Notes the user should see about how the model was trained (a sample used, an approximation).
    notes: list[str]

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        rows: pd.DataFrame,
        *,
        on_event: EventCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> FlowModel: ...

    def predict_proba(self, X: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
        """P(is_listened = 1) for each row, a float array of len(X)."""
        ...

    def save(self, folder: Path) -> None:
        """Write the fitted model into `folder` (no pickle), which exists and is empty."""
        ...

    def feature_importances(self) -> pd.Series | None:
        """Importance per feature name, when the model has them."""
        ...


@dataclass(frozen=True)
class ModelSpec:
    """How to build, describe and reload one registered model."""

    name: str
    description: str
    factory: Callable[..., FlowModel]  # factory(**params) -> unfitted model
    loader: Callable[[Path, dict[str, Any]], FlowModel]  # loader(folder, params) -> fitted model
    defaults: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)  # overrides of the "quick" preset
    baseline: bool = False  # always shown on the leaderboard
    family: str = "classifier"  # "baseline" | "classifier" | "collaborative" | "hybrid"

    def build(self, params: dict[str, Any] | None = None, preset: str = "full") -> FlowModel:
        """A fresh model with defaults, preset overrides and `params` applied in that order."""
        merged = {**self.defaults, **(self.quick if preset == "quick" else {}), **(params or {})}
        return self.factory(**merged)

    def params(self, params: dict[str, Any] | None = None, preset: str = "full") -> dict[str, Any]:
        """The effective parameters `build` would use."""
        return {**self.defaults, **(self.quick if preset == "quick" else {}), **(params or {})}


_REGISTRY: dict[str, ModelSpec] = {}
_MODULES = ("flowtui.core.flow.classifiers", "flowtui.core.recs.rbm_models")
_loaded = False


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry (modules call this at import time)."""
    _REGISTRY[spec.name] = spec
    return spec


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for mod in _MODULES:
        importlib.import_module(mod)
    _loaded = True


def model_names() -> list[str]:
    """Every registered model name, in registration order."""
    _load()
    return list(_REGISTRY)


def baseline_names() -> list[str]:
    """Models that are always reported beside the others."""
    _load()
    return [n for n, s in _REGISTRY.items() if s.baseline]


def get_spec(name: str) -> ModelSpec:
    """The spec of `name`; KeyError with the known names when it does not exist."""
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(_REGISTRY)}") from None

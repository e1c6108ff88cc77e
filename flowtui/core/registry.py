"""The registries of every model flowtui can train: Flow-question models and recommenders.

A Flow model implements `FlowModel`: it is fitted on training rows (their feature matrix `X`, the labels
`y` and the raw DSG17 `rows` the features came from, aligned) and predicts the listen probability of other
rows. Feature-based models use `X`; collaborative models (rbm, dbn) use `rows` (user_id, media_id, ...).

A recommender implements `flowtui.core.recs.recommender.RecommenderBase` (fit on an interaction matrix,
score users over all items, top-N, cold start, save/load) and is registered with a `RecommenderSpec`
(`register_recommender`, `recommender_names()`, `get_recommender(name)`). Both kinds of spec declare their
parameters with one params dataclass (`params.py`), so `--set`, validation and help come from it.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from flowtui.core.errors import ParamError
from flowtui.core.events import EventCallback
from flowtui.core.params import PRESETS, Schema, Value, schema_of

if TYPE_CHECKING:
    from flowtui.core.recs.recommender import RecommenderBase


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


Family = Literal["baseline", "classifier", "collaborative", "hybrid"]


@dataclass(frozen=True)
class _Spec:
    """What both kinds of spec share: a name, a description, the params dataclass (the one declaration of
    the parameters, see `params.py`), a factory, a loader and the quick preset's overrides."""

    name: str
    description: str
    params_cls: type
    factory: Callable[[Any], Any]  # factory(params object) -> unfitted model
    loader: Callable[[Path, Any], Any]  # loader(folder, params object) -> fitted model
    quick: Mapping[str, Value] = field(default_factory=dict)

    @property
    def schema(self) -> Schema:
        """The flat parameter schema of this model."""
        return schema_of(self.params_cls)

    def params(self, overrides: Mapping[str, object] | None = None, preset: str = "full") -> dict[str, Value]:
        """Every parameter with defaults, the preset's and then `overrides` applied; ParamError when invalid."""
        if preset not in PRESETS:
            raise ParamError(f"preset {preset!r}: expected one of {', '.join(PRESETS)}")
        merged = {**(self.quick if preset == "quick" else {}), **(overrides or {})}
        return self.schema.resolve(merged, self.name)


@dataclass(frozen=True)
class ModelSpec(_Spec):
    """How to build, describe and reload one registered Flow model.

    `params_cls` is the model's params dataclass (see `params.py`): the one declaration of its parameters,
    from which defaults, `--set`, the TUI form and error messages derive. `quick` holds the overrides of
    the quick preset (checked at registration).
    """

    baseline: bool = False  # always shown on the leaderboard
    family: Family = "classifier"

    def build(self, overrides: Mapping[str, object] | None = None, preset: str = "full") -> FlowModel:
        """A fresh, unfitted model with `params(overrides, preset)`."""
        model: FlowModel = self.factory(self.schema.build(self.params(overrides, preset), self.name))
        return model

    def load(self, folder: Path, flat: Mapping[str, object]) -> FlowModel:
        """The fitted model saved in `folder` with the flat parameters of its meta.json."""
        model: FlowModel = self.loader(folder, self.schema.build(flat, self.name))
        return model


@dataclass(frozen=True)
class RecommenderSpec(_Spec):
    """How to build, describe and reload one registered recommender (a `RecommenderBase`)."""

    def build(self, overrides: Mapping[str, object] | None = None, preset: str = "full") -> RecommenderBase:
        """A fresh, unfitted recommender with `params(overrides, preset)`."""
        model: RecommenderBase = self.factory(self.schema.build(self.params(overrides, preset), self.name))
        return model

    def load(self, folder: Path, flat: Mapping[str, object]) -> RecommenderBase:
        """The fitted recommender saved in `folder` with the flat parameters of its meta.json."""
        model: RecommenderBase = self.loader(folder, self.schema.build(flat, self.name))
        return model


_REGISTRY: dict[str, ModelSpec] = {}
_MODULES = ("flowtui.core.flow.classifiers", "flowtui.core.recs.rbm_models", "flowtui.core.flow.hybrid")
_loaded = False


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry (modules call this at import time); its quick preset is checked here."""
    spec.schema.check(spec.quick, spec.name)
    _REGISTRY[spec.name] = spec
    return spec


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for mod in _MODULES:
        importlib.import_module(mod)
    _loaded = True


def _rank(spec: ModelSpec) -> int:
    """The position of the module that registered `spec` in `_MODULES` (its place in every listing)."""
    module = getattr(spec.factory, "__module__", "")
    return next((i for i, m in enumerate(_MODULES) if module.startswith(m)), len(_MODULES))


def model_names() -> list[str]:
    """Every registered model name, in `_MODULES` order, then registration order (whatever imported first)."""
    _load()
    return sorted(_REGISTRY, key=lambda n: _rank(_REGISTRY[n]))


def baseline_names() -> list[str]:
    """Models that are always reported beside the others."""
    _load()
    return [n for n in model_names() if _REGISTRY[n].baseline]


def get_spec(name: str) -> ModelSpec:
    """The spec of `name`; KeyError with the known names when it does not exist."""
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(_REGISTRY)}") from None


# ---------------------------------------------------------------------------------------------------------
# Recommenders

_RECOMMENDERS: dict[str, RecommenderSpec] = {}
#: Modules that register recommenders, in listing order (a new recommender: one module, one line here).
_REC_MODULES = (
    "flowtui.core.recs.rbm_recommender",
    "flowtui.core.recs.ease",
    "flowtui.core.recs.als",
    "flowtui.core.recs.item_knn",
    "flowtui.core.recs.popularity",
)
_recs_loaded = False


def register_recommender(spec: RecommenderSpec) -> RecommenderSpec:
    """Add a recommender (modules call this at import time); its quick preset is checked here."""
    spec.schema.check(spec.quick, spec.name)
    _RECOMMENDERS[spec.name] = spec
    return spec


def _load_recs() -> None:
    global _recs_loaded
    if _recs_loaded:
        return
    for mod in _REC_MODULES:
        importlib.import_module(mod)
    _recs_loaded = True


def recommender_names() -> list[str]:
    """Every registered recommender, in `_REC_MODULES` order, then registration order."""
    _load_recs()

    def rank(name: str) -> int:
        module = getattr(_RECOMMENDERS[name].factory, "__module__", "")
        return next((i for i, m in enumerate(_REC_MODULES) if module.startswith(m)), len(_REC_MODULES))

    return sorted(_RECOMMENDERS, key=rank)


def get_recommender(name: str) -> RecommenderSpec:
    """The spec of recommender `name`; KeyError with the known names when it does not exist."""
    _load_recs()
    try:
        return _RECOMMENDERS[name]
    except KeyError:
        raise KeyError(f"unknown recommender {name!r}; known: {', '.join(recommender_names())}") from None

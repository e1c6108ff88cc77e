"""The registry of every model flowtui can train: Flow-question models and recommenders.

A Flow model implements `FlowModel`: it is fitted on training rows (their feature matrix `X`, the labels
`y` and the raw DSG17 `rows` the features came from, aligned) and predicts the listen probability of other
rows. Feature-based models use `X`; collaborative models (rbm, dbn) use `rows` (user_id, media_id, ...).

A recommender implements `flowtui.core.recs.recommender.RecommenderBase` (fit on an interaction matrix,
score users over all items, top-N, cold start, save/load) and is registered with a `RecommenderSpec`.

One table holds both, keyed by kind ("classifier" for a `ModelSpec`, "recommender" for a
`RecommenderSpec`: the spec says its kind): modules call `register(spec)` at import time, and the modules of
a kind (`_MODULES`) are imported the first time that kind is asked for. `model_names()`,
`baseline_names()` and `get_spec(name)` are the views of the Flow models; `recommender_names()` and
`get_recommender(name)` those of the recommenders. Both kinds of spec declare their parameters with one
params dataclass (`params.py`), so `--set`, validation and help come from it.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

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
#: What a spec registers: a Flow model (`ModelSpec`) or a recommender (`RecommenderSpec`).
Kind = Literal["classifier", "recommender"]


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
    # preflight(params, name): checks of this machine that no schema can make (a device that must exist),
    # run whenever parameters are resolved for new work, before any data is touched; raises ParamError
    preflight: Callable[[Mapping[str, Value], str], None] | None = None
    kind: ClassVar[Kind]

    @property
    def schema(self) -> Schema:
        """The flat parameter schema of this model."""
        return schema_of(self.params_cls)

    def params(self, overrides: Mapping[str, object] | None = None, preset: str = "full") -> dict[str, Value]:
        """Every parameter with defaults, the preset's and then `overrides` applied; ParamError when invalid."""
        if preset not in PRESETS:
            raise ParamError(f"preset {preset!r}: expected one of {', '.join(PRESETS)}")
        merged = {**(self.quick if preset == "quick" else {}), **(overrides or {})}
        resolved = self.schema.resolve(merged, self.name)
        if self.preflight is not None:
            self.preflight(resolved, self.name)
        return resolved


@dataclass(frozen=True)
class ModelSpec(_Spec):
    """How to build, describe and reload one registered Flow model.

    `params_cls` is the model's params dataclass (see `params.py`): the one declaration of its parameters,
    from which defaults, `--set`, the TUI form and error messages derive. `quick` holds the overrides of
    the quick preset (checked at registration).
    """

    kind: ClassVar[Kind] = "classifier"
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

    kind: ClassVar[Kind] = "recommender"

    def build(self, overrides: Mapping[str, object] | None = None, preset: str = "full") -> RecommenderBase:
        """A fresh, unfitted recommender with `params(overrides, preset)`."""
        model: RecommenderBase = self.factory(self.schema.build(self.params(overrides, preset), self.name))
        return model

    def load(self, folder: Path, flat: Mapping[str, object]) -> RecommenderBase:
        """The fitted recommender saved in `folder` with the flat parameters of its meta.json."""
        model: RecommenderBase = self.loader(folder, self.schema.build(flat, self.name))
        return model


#: The two kinds of model, and the modules that register each, in listing order (a new model: one module,
#: one line here). The modules are imported by name, lazily: this module imports none of them.
_MODULES: dict[Kind, tuple[str, ...]] = {
    "classifier": (
        "flowtui.core.flow.classifiers",
        "flowtui.core.flow.rbm_classifier",
        "flowtui.core.flow.hybrid",
    ),
    "recommender": (
        "flowtui.core.recs.rbm_recommender",
        "flowtui.core.recs.ease",
        "flowtui.core.recs.als",
        "flowtui.core.recs.item_knn",
        "flowtui.core.recs.popularity",
    ),
}
_NOUNS: dict[Kind, str] = {"classifier": "model", "recommender": "recommender"}
_SPECS: dict[Kind, dict[str, Any]] = {kind: {} for kind in _MODULES}
_loaded: set[Kind] = set()

AnySpec = TypeVar("AnySpec", ModelSpec, RecommenderSpec)


def register(spec: AnySpec) -> AnySpec:
    """Add a model of `spec.kind` to the registry (modules call this at import time, or again to replace
    one); its quick preset is checked here."""
    spec.schema.check(spec.quick, spec.name)
    _SPECS[spec.kind][spec.name] = spec
    return spec


def _load(kind: Kind) -> None:
    """Import the modules that register the models of `kind`, once."""
    if kind in _loaded:
        return
    for mod in _MODULES[kind]:
        importlib.import_module(mod)
    _loaded.add(kind)


def _names(kind: Kind) -> list[str]:
    """The registered names of `kind`: in the order of their modules in `_MODULES`, then registration order."""
    _load(kind)
    modules = _MODULES[kind]
    specs = _SPECS[kind]

    def rank(name: str) -> int:
        module = getattr(specs[name].factory, "__module__", "")
        return next((i for i, m in enumerate(modules) if module.startswith(m)), len(modules))

    return sorted(specs, key=rank)


def _get(kind: Kind, name: str) -> Any:
    """The spec of `name` of `kind`; KeyError with the known names when it does not exist."""
    _load(kind)
    try:
        return _SPECS[kind][name]
    except KeyError:
        raise KeyError(f"unknown {_NOUNS[kind]} {name!r}; known: {', '.join(_names(kind))}") from None


# ---------------------------------------------------------------------------------------------------------
# The kind views: what the rest of flowtui calls.


def model_names() -> list[str]:
    """Every registered Flow model (kind "classifier"), in `_MODULES` order, then registration order."""
    return _names("classifier")


def baseline_names() -> list[str]:
    """Flow models that are always reported beside the others."""
    specs: dict[str, ModelSpec] = _SPECS["classifier"]
    return [n for n in model_names() if specs[n].baseline]


def get_spec(name: str) -> ModelSpec:
    """The spec of Flow model `name`; KeyError with the known names when it does not exist."""
    spec: ModelSpec = _get("classifier", name)
    return spec


def recommender_names() -> list[str]:
    """Every registered recommender, in `_MODULES` order, then registration order."""
    return _names("recommender")


def get_recommender(name: str) -> RecommenderSpec:
    """The spec of recommender `name`; KeyError with the known names when it does not exist."""
    spec: RecommenderSpec = _get("recommender", name)
    return spec

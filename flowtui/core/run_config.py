"""The configuration of one run: frozen, checked whole before any work starts.

An absurd setting (a parameter out of range, 100,000 holdout rounds, an unknown model) is refused in
milliseconds with one plain sentence, not after an hour of training. Light to import: the app builds one
at start-up; models are loaded only when a configuration is validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flowtui.core import registry
from flowtui.core.errors import ParamError
from flowtui.core.params import PRESETS, Value

__all__ = ["MAX_ROUNDS", "FeatureSettings", "RunConfig", "describe_options"]

#: Holdout rounds at most: each round peels one more Flow row off every user.
MAX_ROUNDS = 50


@dataclass(frozen=True)
class FeatureSettings:
    """How the feature matrices of a run are built (flow/features.py; defined here, below the Flow layer,
    since a `RunConfig` carries them)."""

    smoothing: float = 10.0
    flow_only: bool = False
    top_k: int | None = None


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs besides the data; checked whole by `validate` before any work starts.

    `models` empty means every registered model. `params` maps a model to its overrides (text or JSON
    values, as typed by a person). Baselines join the leaderboard when `baselines` is set; final fits and
    saving happen only when `models_dir` is given (each model to `models_dir/NAME`).
    """

    models: tuple[str, ...] = ()
    params: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    preset: str = "full"
    rounds: int = 1
    smoothing: float = 10.0
    flow_only: bool = False
    target_contexts: tuple[int, ...] | None = None
    top_k: int | None = None
    baselines: bool = True
    holdout: bool = True
    models_dir: Path | None = None

    @property
    def features(self) -> FeatureSettings:
        return FeatureSettings(smoothing=self.smoothing, flow_only=self.flow_only, top_k=self.top_k)

    def chosen(self) -> list[str]:
        """The models to train, in order, without repeats (every registered model when none is named)."""
        return list(dict.fromkeys(self.models or registry.model_names()))

    def on_leaderboard(self) -> list[str]:
        """The chosen models with the baselines in front (when `baselines`)."""
        chosen = self.chosen()
        if not self.baselines:
            return chosen
        return [b for b in registry.baseline_names() if b not in chosen] + chosen

    def resolved_params(self) -> dict[str, dict[str, Value]]:
        """Every leaderboard model's full, checked parameters (ParamError on the first bad one)."""
        return {
            n: registry.get_spec(n).params(self.params.get(n), self.preset) for n in self.on_leaderboard()
        }

    def validate(self) -> RunConfig:
        """Raise ParamError (a ValueError) naming the first bad setting; returns self when all is well."""
        known = registry.model_names()
        unknown = [n for n in (*self.models, *self.params) if n not in known]
        if unknown:
            raise ParamError(f"unknown model {', '.join(dict.fromkeys(unknown))}; known: {', '.join(known)}")
        if self.preset not in PRESETS:
            raise ParamError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if not 1 <= self.rounds <= MAX_ROUNDS:
            raise ParamError(f"rounds must be an integer from 1 to {MAX_ROUNDS}, got {self.rounds}")
        if not 0.0 <= self.smoothing <= 1e6:
            raise ParamError(f"smoothing must be a number from 0 to 1000000, got {self.smoothing}")
        if self.top_k is not None and self.top_k < 1:
            raise ParamError(f"top_k must be an integer >= 1, got {self.top_k}")
        stray = [n for n in self.params if n not in self.on_leaderboard()]
        if stray:
            raise ParamError(f"parameters given for {', '.join(stray)}, which this run does not train")
        self.resolved_params()
        return self


def describe_options(config: RunConfig) -> str:
    """The run options in one line, as the app's log shows them ("preset quick · 1 round · smoothing 10")."""
    bits = [f"preset {config.preset}", f"{config.rounds} round{'s' if config.rounds > 1 else ''}"]
    bits.append(f"smoothing {config.smoothing:g}")
    if config.flow_only:
        bits.append("Flow rows only")
    if config.target_contexts:
        bits.append("target contexts " + ",".join(map(str, config.target_contexts)))
    if config.top_k is not None:
        bits.append(f"top {config.top_k} features")
    return " · ".join(bits)

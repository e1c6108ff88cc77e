"""The options of a Flow run (`flowtui evaluate`, `flowtui train`) and the `RunConfig` they make."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowtui.cli.common import fail, model_option, set_option
from flowtui.core import registry
from flowtui.core.errors import ParamError
from flowtui.core.params import parse_overrides
from flowtui.core.run_config import MAX_ROUNDS, RunConfig

ModelOpt = Annotated[list[str] | None, model_option("Model name; repeat for several.")]
SetOpt = Annotated[
    list[str] | None,
    set_option(
        "Parameter override MODEL.KEY=VALUE (KEY=VALUE with one --model); `flowtui params MODEL` lists them."
    ),
]
RoundsOpt = Annotated[int, typer.Option("--rounds", help=f"Holdout rounds (peel-offs), 1 to {MAX_ROUNDS}.")]
TopKOpt = Annotated[
    int | None, typer.Option("--top-k", min=1, help="Keep the K features a random forest ranks highest.")
]
SmoothingOpt = Annotated[float, typer.Option("--smoothing", min=0.0, help="Target-encoding smoothing.")]
FlowOnlyOpt = Annotated[bool, typer.Option("--flow-only", help="Train on Flow rows only.")]
TargetContextOpt = Annotated[
    list[int] | None,
    typer.Option(
        "--target-context",
        help="Hold out only Flow rows of this context_type (repeat; the real test has 1, 5, 20, 23).",
    ),
]


def run_config(
    models: list[str],
    set_: list[str] | None,
    preset: str,
    rounds: int,
    smoothing: float,
    flow_only: bool,
    target_context: list[int] | None,
    top_k: int | None,
    *,
    baselines: bool,
    models_dir: Path | None = None,
) -> RunConfig:
    """The run configuration of the command line, checked whole before any data is read (exit 2)."""
    names = list(dict.fromkeys(models))
    try:
        config = RunConfig(
            models=tuple(names),
            params=parse_overrides(set_ or [], names, registry.model_names()),
            preset=preset,
            rounds=rounds,
            smoothing=smoothing,
            flow_only=flow_only,
            target_contexts=tuple(target_context) if target_context else None,
            top_k=top_k,
            baselines=baselines,
            models_dir=models_dir,
        )
        return config.validate()
    except ParamError as exc:
        fail(str(exc))

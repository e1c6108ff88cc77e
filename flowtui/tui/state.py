"""What the screens share: loaded data, chosen models, the last leaderboard, saved models."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.clock import Clock

if TYPE_CHECKING:  # the engine's modules load pandas, pyarrow...: not before the first frame
    import pandas as pd

    from flowtui.core.data.io import Dataset
    from flowtui.core.data.schema import DataWarning
    from flowtui.core.flow.evaluate import Leaderboard
    from flowtui.core.params import Value
    from flowtui.core.run_config import RunConfig


def _default_run_options() -> RunConfig:
    from flowtui.core.run_config import RunConfig

    return RunConfig(preset="quick")


@dataclass
class AppState:
    """Mutable state of one app session; only touched from the UI thread."""

    train_path: Path | None
    test_path: Path | None
    models_dir: Path
    clock: Clock | None = None
    train: Dataset | None = None
    test: Dataset | None = None
    #: `core.data.summary.summarize`'s figures (numbers, and a dict of warning counts)
    summary: dict[str, Any] | None = None
    #: `core.data.summary.distributions`: small series for the charts
    distributions: dict[str, pd.Series] | None = None
    warnings: list[DataWarning] = field(default_factory=list)
    selected: list[str] = field(default_factory=list)
    preset: str = "quick"
    #: per model, the parameters edited on the models screen
    params: dict[str, dict[str, Value]] = field(default_factory=dict)
    #: rounds, smoothing, Flow-only, target contexts, top-k: the run options the CLI has (core RunConfig)
    run_options: RunConfig = field(default_factory=lambda: _default_run_options())
    leaderboard: Leaderboard | None = None
    saved: dict[str, Path] = field(default_factory=dict)  # model name -> saved folder
    cancelled: list[str] = field(default_factory=list)
    train_requested: bool = False  # set by the models screen's `t`, consumed by the training screen

    @property
    def out_dir(self) -> Path:
        """Where submissions are written: beside the models folder."""
        return self.models_dir.resolve().parent

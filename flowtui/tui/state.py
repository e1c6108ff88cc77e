"""What the screens share: loaded data, chosen models, the last leaderboard, saved models, running work."""

from __future__ import annotations

import threading
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
    from flowtui.core.recs.evaluation import Leaderboard as RecBoard
    from flowtui.core.registry import ModelSpec
    from flowtui.core.run_config import RunConfig


def _default_run_options() -> RunConfig:
    from flowtui.core.run_config import RunConfig

    return RunConfig(preset="quick")


@dataclass
class RunHandle:
    """A training run in progress: the data it trains on and the flags that stop all of it or one model."""

    models: list[str]  # every model of its leaderboard, baselines first
    frame: pd.DataFrame
    chosen: list[str] = field(default_factory=list)  # those fitted on all rows and saved after the holdout
    cancel: threading.Event = field(default_factory=threading.Event)
    model_cancel: dict[str, threading.Event] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)  # saved, failed or cancelled

    def __post_init__(self) -> None:
        for name in self.models:
            self.model_cancel.setdefault(name, threading.Event())

    def running(self) -> list[str]:
        """The models still at work (not ended, not asked to stop)."""
        if self.cancel.is_set():
            return []
        return [m for m in self.models if m not in self.ended and not self.model_cancel[m].is_set()]

    def cancel_model(self, name: str) -> bool:
        """Ask model `name` to stop (the others go on); False when it is not running."""
        if name not in self.running():
            return False
        self.model_cancel[name].set()
        return True

    def cancel_all(self) -> None:
        """Ask the whole run to stop."""
        self.cancel.set()


@dataclass
class Work:
    """Background work the status line shows, and what stops it when the app quits."""

    label: str
    cancel: threading.Event | None = None


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
    #: the holdout leaderboard of this session's last run on the loaded data (None after a new load)
    leaderboard: Leaderboard | None = None
    saved: dict[str, Path] = field(default_factory=dict)  # model name -> saved folder
    #: the recommendation leaderboard (`recs.evaluation.leaderboard`) of the loaded data (None after a load)
    rec_board: RecBoard | None = None
    #: the recommenders ticked on the Recommenders screen (evaluated and trained there)
    rec_selected: list[str] = field(default_factory=list)
    #: recommenders trained this session on the loaded data: name -> saved folder
    rec_saved: dict[str, Path] = field(default_factory=dict)
    #: `helpers.data_key`s of models the person chose to use on other data than they were trained on
    other_data_ok: set[str] = field(default_factory=set)
    cancelled: list[str] = field(default_factory=list)
    #: form fields holding a value that does not parse ("rbm n_iter", "run option rounds") -> (text, error)
    invalid_fields: dict[str, tuple[str, str]] = field(default_factory=dict)
    train_requested: bool = False  # set by the models screen's `t`, consumed by the training screen
    #: every registered model's spec, read once in a worker at start-up (None until then)
    specs: dict[str, ModelSpec] | None = None
    #: "CPU" or "CUDA", found in a worker (torch is not imported before the first frame); None until then
    device: str | None = None
    run: RunHandle | None = None  # the training run in progress
    work: dict[str, Work] = field(default_factory=dict)  # other background work, by key
    #: the last file the app wrote (a submission, recommendations), kept in view on the status line
    last_written: str = ""
    #: lines for the training screen's log from elsewhere (files written...), in order
    activity: list[str] = field(default_factory=list)
    rec_model: str | None = None  # the saved model that recommends on the Users and New user screens
    rec_models: list[str] = field(default_factory=list)  # saved models that can recommend
    quitting: threading.Event = field(default_factory=threading.Event)
    #: where the remembered settings live (None: memory off) and the last text written there
    settings_file: Path | None = None
    settings_written: str = ""
    #: what make_app and the start-up check found worth telling (a forgotten file, a refused setting)
    notes: list[str] = field(default_factory=list)

    @property
    def out_dir(self) -> Path:
        """Where submissions are written by default: beside the models folder."""
        return self.models_dir.resolve().parent

    @property
    def on_sample(self) -> bool:
        """Is the loaded (or chosen) train file the bundled sample?"""
        from flowtui.core import paths

        return self.train_path is not None and _same(self.train_path, paths.sample_train())

    def invalid_refusal(self) -> str:
        """Why training is refused while a form field holds an invalid value (empty when none does)."""
        if not self.invalid_fields:
            return ""
        label, (text, error) = next(iter(self.invalid_fields.items()))
        return f"{label} holds {text!r}, which is not valid: {error} (fix it on screen 2)"

    def record(self, line: str) -> None:
        """Add a line to the activity log (the training screen's log shows it)."""
        self.activity.append(line)

    def cancel_everything(self) -> None:
        """Ask every piece of background work to stop (the app is quitting)."""
        self.quitting.set()
        if self.run is not None:
            self.run.cancel_all()
        for work in self.work.values():
            if work.cancel is not None:
                work.cancel.set()


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False

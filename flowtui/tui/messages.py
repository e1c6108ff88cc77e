"""Messages that workers post to the UI thread (no widget is touched from a worker)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

from flowtui.core import events as ev

if TYPE_CHECKING:  # the engine's modules load pandas, pyarrow...: not before the first frame
    import pandas as pd

    from flowtui.core.data.io import Dataset
    from flowtui.core.data.schema import DataWarning
    from flowtui.core.flow.evaluate import Leaderboard
    from flowtui.core.flow.store import SavedModel
    from flowtui.core.registry import ModelSpec
    from flowtui.tui.settings import Checked


@dataclass
class DataLoaded(Message):
    """Train (and optionally test) loaded and validated, with their summary."""

    train: Dataset
    test: Dataset | None
    summary: dict[str, Any]  # core.data.summary.summarize's figures
    distributions: dict[str, pd.Series]
    warnings: list[DataWarning]


@dataclass
class DataFailed(Message):
    """A file was refused: its DataError as one line plus example lines."""

    error: str
    details: list[str] = field(default_factory=list)


@dataclass
class EngineEvent(Message):
    """An engine progress event, forwarded from a worker thread."""

    event: ev.Event
    phase: str = ""

    def can_replace(self, message: Message) -> bool:
        # Only plain progress ticks of the same task may be dropped for a newer one.
        return (
            isinstance(message, EngineEvent)
            and isinstance(self.event, ev.Progress)
            and isinstance(message.event, ev.Progress)
            and message.event.task == self.event.task
        )


@dataclass
class TrainingFinished(Message):
    """A training run ended: the leaderboard (None when cancelled first), saved folders, cancelled names."""

    leaderboard: Leaderboard | None
    saved: dict[str, Path]
    cancelled: list[str]
    failed: dict[str, str] = field(default_factory=dict)  # model -> reason


@dataclass
class UserReady(Message):
    """Profile, history, recommendations and test-row probability of one user."""

    user_id: int
    profile: dict[str, Any]  # core.flow.users.user_profile
    history: pd.DataFrame
    recs: pd.DataFrame | None  # None when there is no model or it cannot recommend for this user
    test_probability: float | None
    note: str = ""
    predictor: str = ""  # the saved model that gave `test_probability`


@dataclass
class NewUserReady(Message):
    """Cold-start recommendations for the new-user form."""

    recs: pd.DataFrame | None  # None when the stated tastes were refused (see `note`)
    note: str = ""


@dataclass
class FileWritten(Message):
    """A file was written (a submission, recommendations)."""

    path: Path
    rows: int
    what: str = "submission"
    detail: str = ""  # what it was written with (" with models/rbm (saved ...)"), for the log


@dataclass
class RegistryReady(Message):
    """Every registered model's spec, read in a worker (the registry imports sklearn and lightgbm), and
    the remembered settings checked against their schemas (None when there was nothing to check)."""

    specs: list[ModelSpec]
    checked: Checked | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class DeviceFound(Message):
    """Where torch computes: "CPU" or "CUDA" (found in a worker: importing torch takes a while)."""

    device: str


@dataclass
class SavedModelsRead(Message):
    """The saved models of the models folder and the fingerprint of the loaded train data."""

    fingerprint: str
    models: list[SavedModel]


@dataclass
class CatalogReady(Message):
    """The artist or genre table of the loaded data, for a picker."""

    kind: str  # "artist" | "genre"
    table: pd.DataFrame


@dataclass
class LeaderboardReady(Message):
    """The holdout leaderboard of a run is known (the final fits may still be running)."""

    leaderboard: Leaderboard


@dataclass
class RecModelsFound(Message):
    """Saved models in the models folder (read in a worker: it loads the registry)."""

    names: list[str]  # those that can recommend (rbm, dbn, hybrid)
    predictors: list[str] = field(default_factory=list)  # every loadable one


@dataclass
class RecBoardReady(Message):
    """The recommendation leaderboard of the loaded data (None when it was cancelled or failed: `error`)."""

    board: Any  # recs.evaluation.Leaderboard (typed loosely: the engine's modules load torch)
    frame: pd.DataFrame  # the data it was computed on
    error: str = ""
    restored: bool = False  # read back from the models folder (computed in an earlier session)


@dataclass
class RecTrained(Message):
    """One recommender of a training run was saved (`folder`), or failed (`error`)."""

    name: str
    folder: Path | None
    frame: pd.DataFrame  # the data it was trained on
    error: str = ""
    seconds: float = 0.0


@dataclass
class RecTrainingEnded(Message):
    """A recommender training run ended (all saved, some failed, or cancelled)."""

    cancelled: bool = False


@dataclass
class SavedRecsRead(Message):
    """The recommender folders of the models folder, each with its meta.json (or the reason it is unreadable),
    and the loaded data's fingerprint."""

    fingerprint: str
    folders: list[tuple[str, dict[str, Any] | None, str]]  # (name relative to the models folder, meta, error)


@dataclass
class RecNamesRead(Message):
    """The registered recommenders: (name, one-line description), in registry order."""

    names: list[tuple[str, str]]


@dataclass
class OtherDataQuestion(Message):
    """A model meets other data than it was trained on: ask before using it (`question` names both data
    sets and the unknown shares); `key` is what a yes allows (`helpers.data_key`), `out` the file to write."""

    folder: Path
    question: str
    key: str
    out: Path | None = None

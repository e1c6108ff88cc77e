"""The recommender workflow: train and save, evaluate (the leaderboard), tune, recommend.

The CLI's `train-recs`, `evaluate-recs` and `recommend` and the app's Recommenders screen call these
functions; nothing else orchestrates recommenders. Like `core/run.py` for the Flow question, every long
step takes `on_event` (progress events) and `cancel` (a `threading.Event`); a cancel leaves what was saved
before it and nothing half-written.

The tuner plugs in at `TrainRequest.params`: a `Tuner` receives the data, the chosen models and the
parameters given so far, and returns the overrides to train with (scored on `evaluate(validation=True)`,
never on test entries); `train_and_save(..., tuner=...)` trains with them.

`settings` checks what every job is given (names, `--set`, feedback), `train` trains and saves,
`evaluate` computes the leaderboard (kept beside the models by `recs.board_file`), `recommend` opens a
model and ranks. This package sits above both capabilities (`open_model` reads Flow model folders too);
the rest of `flowtui.core.recs` never imports `flowtui.core.flow`.
"""

from flowtui.core.recs.board_file import BOARD_FILE, load_leaderboard, save_leaderboard
from flowtui.core.recs.recommend import Recommender
from flowtui.core.workflows.recs.evaluate import evaluate
from flowtui.core.workflows.recs.recommend import (
    Recommendations,
    RecommendQuery,
    UnknownUserError,
    check_default_data,
    internal_id,
    open_model,
    recommend,
)
from flowtui.core.workflows.recs.settings import (
    FEEDBACK,
    check_names,
    check_overrides,
    id_map,
    load_train,
    load_train_dataset,
)
from flowtui.core.workflows.recs.train import Trained, TrainRequest, TrainResult, Tuner, train_and_save

__all__ = [
    "BOARD_FILE",
    "FEEDBACK",
    "RecommendQuery",
    "Recommendations",
    "Recommender",
    "TrainRequest",
    "TrainResult",
    "Trained",
    "Tuner",
    "UnknownUserError",
    "check_default_data",
    "check_names",
    "check_overrides",
    "evaluate",
    "id_map",
    "internal_id",
    "load_leaderboard",
    "load_train",
    "load_train_dataset",
    "open_model",
    "recommend",
    "save_leaderboard",
    "train_and_save",
]

"""What several screens share: the saved-model pickers, id parsing, per-data caches, the status line's
text, output paths, work that the app may abandon when it quits, and turning a failed worker into a
notification.

Screens import this module (and `messages`, `state`, `widgets`, `dialogs`), never each other and never the
app module.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich.text import Text
from textual.worker import Worker, WorkerState

from flowtui.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    from textual.app import App
    from textual.widgets import DataTable

    from flowtui.core.recs.recommend import Recommender
    from flowtui.tui.state import AppState

T = TypeVar("T")

#: Columns of a recommendation table: (label, width).
REC_COLUMNS = [("#", 2), ("media", 8), ("artist", 7), ("genre", 5), ("score", 5), ("reason", 40)]
#: Recommendations shown per user.
TOP_N = 10


#: Where the app saves the recommenders it trains, inside the models folder (`flowtui train-recs --out
#: MODELS/recs` writes the same folders): apart from the Flow models, whose rbm and dbn share their names.
RECS_DIR = "recs"


def recommender_folders(models_dir: Path) -> list[str]:
    """The recommender folders (`flowtui train-recs`) in `models_dir` and in `models_dir/recs`, as names
    relative to `models_dir` ("ease", "recs/als"), in name order. Reads only each meta.json's format."""
    from flowtui.core.recs.store import is_recommender_folder

    found: list[str] = []
    for base, prefix in ((models_dir, ""), (models_dir / RECS_DIR, f"{RECS_DIR}/")):
        try:
            folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            continue
        found += [prefix + p.name for p in folders if is_recommender_folder(p)]
    return found


def scan_models(models_dir: Path) -> tuple[list[str], list[str]]:
    """Saved models in `models_dir`: (those that can recommend: Flow rbm/dbn/hybrid folders and every
    recommender folder, see `recommender_folders`; the Flow models by holdout AUC, best first).

    Loads the registry (scikit-learn, LightGBM): call it in a worker.
    """
    from flowtui.core.flow import store

    saved = store.list_models(models_dir)  # by folder name, so equal AUCs stay in name order
    recommenders = [m.name for m in saved if m.can_recommend] + recommender_folders(models_dir)
    return recommenders, [m.name for m in sorted(saved, key=lambda m: -(m.auc or 0.0))]


def model_name(folder: Path, models_dir: Path) -> str:
    """A model folder as the pickers name it (relative to the models folder)."""
    try:
        return str(folder.relative_to(models_dir))
    except ValueError:
        return folder.name


def same_data_predictor(predictors: list[Path], frame: pd.DataFrame) -> Path | None:
    """The first of `predictors` trained on `frame` (a test-row probability from a model of other data
    would be a silent guess); call it in a worker."""
    from flowtui.core.flow import store

    wanted = fingerprint(frame)
    for folder in predictors:
        try:
            if store.read_meta(folder).get("data_fingerprint") == wanted:
                return folder
        except (DataError, OSError):
            continue
    return None


def known(value: object) -> str:
    """An artist or genre id as shown: "?" for -1, the engine's mark for a track the loaded data has no
    row of (a model of other data recommends such tracks)."""
    return "?" if str(value) == "-1" else str(value)


def fill_recommendations(table: DataTable[Any], recs: pd.DataFrame | None) -> None:
    """Clear `table` and list `recs` (rank, track, artist, genre, score, reason), as screens 5 and 6 show them."""
    table.clear()
    if recs is None:
        return
    for i, r in enumerate(recs.itertuples(index=False), start=1):
        table.add_row(
            str(i), str(r.media_id), known(r.artist_id), known(r.genre_id), f"{r.score:.3f}", str(r.reason)
        )


def parse_ids(text: str) -> list[int]:
    """`"3, 17 42"` -> [3, 17, 42]; ValueError names the bad part."""
    out = []
    for part in text.replace(",", " ").split():
        if not part.lstrip("-").isdigit():
            raise ValueError(f"{part!r} is not an integer id")
        out.append(int(part))
    return out


class RecommenderCache:
    """One Recommender per (model folder, data) pair, built in a worker thread and reused; a model trained on
    other data than the frame is used only once the person said yes (`OtherData` until then)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, int, int] | None = None
        self._rec: Recommender | None = None

    def get(self, folder: Path, frame: pd.DataFrame, allowed: set[str] | None = None) -> Recommender:
        """The recommender of the model in `folder` (a `flowtui train-recs` folder, or an rbm, dbn or hybrid
        Flow model) over `frame`, built on first use; call it in a worker. Raises `OtherData` when the model
        was trained on other data and `data_key(folder, frame)` is not in `allowed`; DataError (one line)
        for a damaged folder, ValueError for a model that cannot recommend."""
        from flowtui.core.workflows import recs as recommend

        key = (str(folder), (folder / "meta.json").stat().st_mtime_ns, id(frame))
        with self._lock:
            if self._rec is None or self._key != key:
                model = recommend.open_model(folder)
                question = other_data_question(model, frame, folder.name)
                if question and data_key(folder, frame) not in (allowed or set()):
                    raise OtherData(folder, question)
                self._rec = recommend.Recommender(model, frame)
                self._key = key
            return self._rec


class OtherData(Exception):
    """A model meets other data than it was trained on: `question` says which and how much is unknown."""

    def __init__(self, folder: Path, question: str) -> None:
        super().__init__(question)
        self.folder = folder
        self.question = question


def data_key(folder: Path, frame: pd.DataFrame) -> str:
    """What a person's "use it anyway" is about: this model folder with these data (by fingerprint)."""
    return f"{folder.resolve()}|{fingerprint(frame)}"


def _unknown(share: float | None) -> str:
    return "an unknown share" if share is None else f"{1 - share:.0%}"


def data_label(frame: pd.DataFrame) -> str:
    """The loaded data as named in questions: its file (or "the loaded data"), rows and fingerprint."""
    from flowtui.core.modelfiles.data_match import frame_source

    source = frame_source(frame)
    name = short_path(source) if source else "the loaded data"
    return f"{name} ({len(frame):,} rows, fingerprint {fingerprint(frame)})"


def other_data_question(
    model: object, frame: pd.DataFrame, name: str, rows: pd.DataFrame | None = None
) -> str:
    """Empty when `model` (a recommender, or a Flow `TrainedModel`) was trained on `frame`; else the question
    to ask before using it: both data sets named, and the shares of `rows`' (default `frame`'s) users and
    media the model does not know. Call it in a worker."""
    from flowtui.core.flow.store import TrainedModel
    from flowtui.core.modelfiles.data_match import MIN_KNOWN, check_data
    from flowtui.core.recs import recommend

    if isinstance(model, TrainedModel):
        match = check_data(model, frame, rows=rows, source="x", allow_other=True)
        desc = model.data
        trained_on = desc.label() if desc is not None else f"data with fingerprint {model.fingerprint or '?'}"
    else:
        rec = recommend.as_recommender(model)
        match = recommend.check_model_data(rec, frame if rows is None else rows, source="x", allow_other=True)
        desc = rec.trained_on
        trained_on = (
            desc.label() if desc is not None else f"data with fingerprint {rec.trained_fingerprint or '?'}"
        )
    if match.same:
        return ""
    known = [s for s in (match.user_known, match.item_known) if s is not None]
    low = not known or min(known) < MIN_KNOWN
    what = "test file" if rows is not None else "loaded data"
    return (
        f"{name} was trained on {trained_on},\nnot on the loaded data: {data_label(frame)}.\n"
        f"Unknown to the model: {_unknown(match.user_known)} of the {what}'s users and "
        f"{_unknown(match.item_known)} of its media"
        + (f" (under {MIN_KNOWN:.0%} known: the CLI refuses it without --allow-other-data)." if low else ".")
    )


class PerFrame:
    """Values computed from a data frame (its fingerprint, its artist table...), kept while that frame is
    the loaded one; thread-safe, so workers fill it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: object = None
        self._values: dict[str, Any] = {}

    def get(self, frame: pd.DataFrame, key: str, compute: Callable[[], T]) -> T:
        """The value of `key` for `frame`, computed on first use (call it in a worker)."""
        with self._lock:
            if self._frame is not frame:
                self._frame, self._values = frame, {}
            if key in self._values:
                return self._values[key]  # type: ignore[no-any-return]
        value = compute()
        with self._lock:
            if self._frame is frame:
                self._values[key] = value
        return value


#: Fingerprints, artist and genre tables of the loaded train frame, shared by the screens.
PER_FRAME = PerFrame()


def fingerprint(frame: pd.DataFrame) -> str:
    """The data fingerprint saved models carry (`modelfiles.fingerprint`), cached per frame; call it in a worker."""
    from flowtui.core.modelfiles import fingerprint as data_fingerprint

    return PER_FRAME.get(frame, "fingerprint", lambda: data_fingerprint(frame))


def catalog(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The artist or genre table of `frame` (`core.data.catalog`), cached per frame; call it in a worker."""
    from flowtui.core.data import catalog as tables

    build = tables.artist_table if kind == "artist" else tables.genre_table
    return PER_FRAME.get(frame, kind, lambda: build(frame))


class Abandoned(Exception):
    """The app quit before the work ended: its thread was left to stop at its next cancel check."""


def call_abandonable(fn: Callable[[], T], quitting: threading.Event, grace: float = 1.0) -> T:
    """`fn()` in a daemon thread, waited for. Once `quitting` is set it gets `grace` seconds to end (its
    cancel flags are set by then), after which `Abandoned` is raised, so the app exits in time; a daemon
    thread does not hold the process. Exceptions of `fn` are raised here."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="flowtui-work", daemon=True)
    thread.start()
    deadline: float | None = None
    while thread.is_alive():
        thread.join(0.05)
        if quitting.is_set() and thread.is_alive():
            deadline = deadline if deadline is not None else time.monotonic() + grace
            if time.monotonic() > deadline:
                raise Abandoned()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def short_path(path: Path | str) -> str:
    """A path as shown to a person: the home folder as ~."""
    text = str(path)
    home = os.path.expanduser("~")
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home) :]
    return text


def check_output(text: str) -> Path:
    """The file a typed path names, fit to be written (`safe_files.check_output_path`: no link, pipe,
    device or folder, a writable folder, which may be created); ValueError with one line otherwise."""
    from flowtui.core import safe_files

    text = text.strip()
    if not text:
        raise ValueError("give a file name")
    try:
        return safe_files.check_output_path(Path(text).expanduser(), make_parents=True)
    except safe_files.UnsafePathError as err:
        raise ValueError(err.one_line()) from None


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` as CSV atomically with the engine's safe writer (a temporary file, fsync, then a
    rename: never half a file, never through a link or into a pipe or device)."""
    from flowtui.core import safe_files

    safe_files.write_csv(frame, path, make_parents=True)


def status_text(state: AppState, width: int) -> Text:
    """The status line: the loaded files, the models folder, the device, running work, the last file written."""
    if state.train_path is None:
        data = "no data"
    elif state.on_sample:
        data = "bundled sample" + ("" if state.test_path is not None else " (no test file)")
    else:
        test = f" + {state.test_path.name}" if state.test_path is not None else " (no test file)"
        data = state.train_path.name + test
    if state.train is None:
        data = ("loading " if "data" in state.work else "not loaded: ") + data
    work = []
    run = state.run
    if run is not None:
        running = run.running()
        work.append(f"training {len(running)} model(s)" if running else "stopping the run")
    work += [w.label for key, w in state.work.items() if key != "data"]
    parts = [
        ("data: ", data),
        ("models: ", short_path(state.models_dir).rstrip("/") + "/"),
        ("", state.device or "device?"),
        ("", " · ".join(work) if work else "idle"),
    ]
    text = Text(no_wrap=True, overflow="ellipsis")
    for i, (label, value) in enumerate(parts):
        if i:
            text.append(" │ ", style="dim")
        text.append(label, style="dim")
        text.append(value, style="bold" if i == 3 and work else "")
    if state.last_written:
        room = max(width - text.cell_len - 11, 12)
        shown = short_path(state.last_written)
        if len(shown) > room:
            shown = "…" + shown[-(room - 1) :]
        text.append(" │ ", style="dim")
        text.append("wrote ", style="dim")
        text.append(shown)
    return text


def report_worker_failure(app: App[Any], event: Worker.StateChanged) -> None:
    """Show a failed worker as an error notification (the one place that does; other states are ignored)."""
    if event.state != WorkerState.ERROR or isinstance(event.worker.error, Abandoned):
        return
    error = event.worker.error
    message = error.one_line() if isinstance(error, DataError) else f"{type(error).__name__}: {error}"
    app.notify(message, title=f"{event.worker.group or 'task'} failed", severity="error", timeout=10)

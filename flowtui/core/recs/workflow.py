"""The recommender workflow: train and save, evaluate (the leaderboard), tune, recommend.

The CLI's `train-recs`, `evaluate-recs` and `recommend` and the app's Recommenders screen call these
functions; nothing else orchestrates recommenders. Like `core/run.py` for the Flow question, every long
step takes `on_event` (progress events) and `cancel` (a `threading.Event`); a cancel leaves what was saved
before it and nothing half-written.

The tuner plugs in at `TrainRequest.params`: a `Tuner` receives the data, the chosen models and the
parameters given so far, and returns the overrides to train with (scored on `evaluate(validation=True)`,
never on test entries); `train_and_save(..., tuner=...)` trains with them.

This module sits above both capabilities (`open_model` reads Flow model folders too); `flowtui.core.recs`
below it never imports `flowtui.core.flow`.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from flowtui.core import events as ev
from flowtui.core import paths, registry
from flowtui.core.errors import DataError, ParamError
from flowtui.core.params import parse_overrides
from flowtui.core.recs import evaluation, store
from flowtui.core.recs.board_file import BOARD_FILE, load_leaderboard, save_leaderboard
from flowtui.core.recs.evaluation import Holdout, Leaderboard
from flowtui.core.recs.interactions import MAX_ITEMS
from flowtui.core.recs.recommend import Recommender, as_recommender, check_model_data
from flowtui.core.recs.recommender import RecommenderBase

if TYPE_CHECKING:
    from flowtui.core.data.idmap import IdMap
    from flowtui.core.modelfiles.data_match import DataMatch

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
    "check_names",
    "check_overrides",
    "evaluate",
    "id_map",
    "internal_id",
    "load_leaderboard",
    "load_train",
    "open_model",
    "recommend",
    "save_leaderboard",
    "train_and_save",
]

#: The kinds of feedback a recommender learns: None lets the data decide (plays when no row is skipped).
FEEDBACK: dict[str, bool | None] = {"auto": None, "labels": False, "plays": True}


def load_train(path: Path | None, on_event: ev.EventCallback | None = None) -> pd.DataFrame:
    """The train file at `path` (default: the bundled sample), validated; DataError when refused."""
    from flowtui.core.data import io

    return io.load_dataset(path or paths.sample_train(), kind="train", on_event=on_event).frame


def id_map(data: Path | None) -> IdMap | None:
    """The id map kept beside the train file `data` (default: the bundled sample) by `flowtui data
    import`, or None when its ids are its own; DataError when the map is refused."""
    from flowtui.core.data.idmap import IdMap

    return IdMap.for_dataset(data or paths.sample_train())


def check_names(models: Sequence[str] | None) -> list[str]:
    """The chosen recommenders (default: every registered one), duplicates dropped; ParamError naming the
    known ones when one is not registered."""
    known = registry.recommender_names()
    names = list(dict.fromkeys(models or known))
    bad = [m for m in names if m not in known]
    if bad:
        raise ParamError(f"unknown recommender {', '.join(bad)}; known: {', '.join(known)}")
    return names


def _has_key(name: str, key: str) -> bool:
    return registry.get_recommender(name).schema.get(key) is not None


def check_overrides(items: Sequence[str], names: Sequence[str], preset: str) -> dict[str, dict[str, str]]:
    """`--set` items (`params.parse_overrides`: MODEL.KEY=VALUE, or KEY=VALUE for every chosen model that
    has KEY) as {model: {key: text}}, each model's values checked under `preset` (ParamError)."""
    known = registry.recommender_names()
    out = parse_overrides(items, list(names), known, has_key=_has_key)
    for name, over in out.items():
        registry.get_recommender(name).params(over, preset)
    return out


# -- the tuner seam ----------------------------------------------------------------------------------
class Tuner(Protocol):
    """What a tuner provides: each chosen model's parameter overrides, searched on the data's validation
    splits (`evaluate(..., validation=True)`), starting from the `given` overrides. `train_and_save`
    calls it before any fit and trains with what it returns (checked like `--set` values)."""

    def __call__(
        self,
        frame: pd.DataFrame,
        names: Sequence[str],
        given: Mapping[str, Mapping[str, object]],
        *,
        preset: str,
        on_event: ev.EventCallback | None,
        cancel: threading.Event | None,
    ) -> Mapping[str, Mapping[str, object]]: ...


# -- train and save ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainRequest:
    """What to train and where: each of `models` is saved to OUT/NAME.

    `params` holds each model's overrides (from `--set`, a form, or a tuner); `implicit` is the feedback
    kind (`FEEDBACK`); `source` names the data file recorded beside each model. With `keep_going`, a model
    that fails (or whose folder is refused) is recorded and the others go on; else the run stops there."""

    models: tuple[str, ...]
    out: Path
    params: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    preset: str = "full"
    implicit: bool | None = None
    max_items: int = MAX_ITEMS
    source: str | None = None
    keep_going: bool = False

    def validate(self) -> TrainRequest:
        """Check names, parameters and (unless `keep_going`) every output folder before any work:
        ParamError, or DataError for a folder flowtui will not replace. Returns the request."""
        check_names(self.models)
        if self.max_items < 1:
            raise ParamError(f"max_items must be an integer >= 1, got {self.max_items}")
        stray = sorted(set(self.params) - set(self.models))
        if stray:
            raise ParamError(f"parameters given for {', '.join(stray)}, which this run does not train")
        for name in self.models:
            registry.get_recommender(name).params(self.params.get(name), self.preset)
        if not self.keep_going:
            for name in self.models:
                store.check_recommender_target(self.out / name)
        return self


@dataclass(frozen=True)
class Trained:
    """One recommender fitted and saved to `path`."""

    model: str
    path: Path
    n_items: int
    n_users: int
    implicit: bool
    fit_seconds: float
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        """The record `flowtui train-recs --json` prints."""
        return {
            "model": self.model,
            "path": str(self.path),
            "n_items": self.n_items,
            "n_users": self.n_users,
            "implicit": self.implicit,
            "fit_seconds": round(self.fit_seconds, 3),
            "notes": self.notes,
        }


@dataclass
class TrainResult:
    """The models saved, in order, and those that failed with their error (a DataError, ValueError,
    TypeError or OSError, for the front end to word)."""

    saved: list[Trained] = field(default_factory=list)
    failed: dict[str, Exception] = field(default_factory=dict)


def train_and_save(
    frame: pd.DataFrame,
    request: TrainRequest,
    *,
    tuner: Tuner | None = None,
    fingerprint: str | None = None,
    on_event: ev.EventCallback | None = None,
    cancel: threading.Event | None = None,
    on_model: Callable[[str, Trained | Exception], None] | None = None,
) -> TrainResult:
    """Fit each model of `request` on every row of `frame` and save it to OUT/NAME with the data it learnt
    (source, fingerprint, id sketches). `fingerprint`: the frame's, when the caller has it already.

    Emits `Progress("train-recs", ...)` per model and `Saved` after each save; `on_model(name, outcome)`
    hears each model's `Trained` record or exception as soon as it has one. A model that fails is recorded in `failed`; the run stops
    there unless `keep_going`. Raises ParamError/DataError from `validate` (before any fit) and
    `events.Cancelled` (models saved before it stay)."""
    from flowtui.core.modelfiles.data_match import describe_data

    if tuner is not None:
        tuned = tuner(
            frame, request.models, request.params, preset=request.preset, on_event=on_event, cancel=cancel
        )
        request = replace(request, params={**request.params, **tuned})
    request.validate()
    fp = fingerprint or store.data_fingerprint(frame)
    described = describe_data(frame, fp, source=request.source)
    result = TrainResult()
    total = len(request.models)

    def tell(name: str, outcome: Trained | Exception) -> None:
        if on_model is not None:
            on_model(name, outcome)

    for i, name in enumerate(request.models):
        ev.check_cancel(cancel)
        ev.emit(on_event, ev.Progress("train-recs", i, total, name))
        try:
            trained = _fit_and_save(frame, name, request, fp, described, on_event, cancel)
        except (DataError, ValueError, TypeError, OSError) as exc:
            result.failed[name] = exc
            tell(name, exc)
            if not request.keep_going:
                return result
            ev.emit(on_event, ev.Log(f"{name} failed: {' '.join(str(exc).split())}", level="warning"))
            continue
        result.saved.append(trained)
        ev.emit(on_event, ev.Saved(name, str(trained.path)))
        tell(name, trained)
    ev.emit(on_event, ev.Progress("train-recs", total, total, "done"))
    return result


def _fit_and_save(
    frame: pd.DataFrame,
    name: str,
    request: TrainRequest,
    fingerprint: str,
    described: Any,
    on_event: ev.EventCallback | None,
    cancel: threading.Event | None,
) -> Trained:
    folder = request.out / name
    store.check_recommender_target(folder)
    rec = store.train_recommender(
        frame,
        name,
        request.params.get(name),
        request.preset,
        implicit=request.implicit,
        max_items=request.max_items,
        on_event=on_event,
        cancel=cancel,
    )
    ev.check_cancel(cancel)  # nothing is saved once cancelled
    path = store.save_recommender(rec, folder, fingerprint=fingerprint, data=described)
    return Trained(
        name, path, len(rec.item_ids_), rec.n_users_, rec.implicit_, rec.fit_seconds_, list(rec.notes)
    )


# -- evaluate ----------------------------------------------------------------------------------------
def evaluate(
    frame: pd.DataFrame,
    names: Sequence[str],
    *,
    k: int = 10,
    seeds: int = 3,
    seed: int = 0,
    fraction: float = 0.2,
    how: Holdout = "random",
    preset: str = "full",
    params: Mapping[str, Mapping[str, object]] | None = None,
    validation: bool = False,
    implicit: bool | None = None,
    max_items: int = MAX_ITEMS,
    source: str | None = None,
    fingerprint: str | None = None,
    stamp: bool = False,
    on_event: ev.EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> Leaderboard:
    """The leaderboard of `names` on the same held-out splits (`evaluation.leaderboard`), its setup naming
    the data (`source`, rows, fingerprint) and, with `stamp`, when it was computed. Keep it beside the
    models with `save_leaderboard`; `load_leaderboard` reads it back for the same data."""
    board = evaluation.leaderboard(
        frame,
        list(names),
        k=k,
        seeds=seeds,
        seed=seed,
        fraction=fraction,
        how=how,
        preset=preset,
        params=params,
        validation=validation,
        implicit=implicit,
        max_items=max_items,
        on_event=on_event,
        cancel=cancel,
    )
    board.setup["data"] = {
        "source": source,
        "rows": len(frame),
        "fingerprint": fingerprint or store.data_fingerprint(frame),
    }
    if stamp:
        board.setup["computed"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return board


# -- recommend ---------------------------------------------------------------------------------------
def open_model(folder: str | Path) -> RecommenderBase:
    """The recommender saved in `folder`: a `flowtui train-recs` folder, or a `flowtui train` folder of an
    rbm, dbn or hybrid. DataError (one line) on a missing or damaged folder; ValueError for a model that
    cannot recommend."""
    if store.is_recommender_folder(folder):
        return store.load_recommender(folder)
    from flowtui.core.flow import store as flow_store

    trained = flow_store.load_model(folder)
    model = as_recommender(trained)
    model.trained_on = trained.data
    model.trained_fingerprint = trained.fingerprint or ""
    return model


def internal_id(kind: str, text: str, ids: IdMap | None) -> int:
    """The data's internal id of the `kind` ("user", "artist", "genre") a person gave as `text`: through the
    imported log's id map when the data has one (the log's own ids, strings allowed), else a plain 64-bit
    integer. DataError from the id map, ValueError for text that is no id."""
    if ids is not None:
        to = {"user": ids.user_internal, "artist": ids.artist_internal, "genre": ids.genre_internal}[kind]
        return to(text)
    body = text.strip()
    digits = body[1:] if body[:1] == "-" else body
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"expected an integer {kind} id (this data set has no id map)")
    value = int(body)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"no such {kind}; ids of this data set are 64-bit integers")
    return value


@dataclass(frozen=True)
class RecommendQuery:
    """Whom to recommend for, in internal ids: one `user`, every user (`all_users`), or a new user (the
    rest: liked artists and genres, age, gender); `genres`, `artists` and `max_per_artist` filter before
    ranking (not with `all_users`)."""

    n: int = 10
    user: int | None = None
    all_users: bool = False
    liked_artists: tuple[int, ...] = ()
    liked_genres: tuple[int, ...] = ()
    age: int | None = None
    gender: int | None = None
    genres: tuple[int, ...] | None = None
    artists: tuple[int, ...] | None = None
    max_per_artist: int | None = None


@dataclass
class Recommendations:
    """The lists (`Recommender.for_user` / `for_new_user` / `all_users` columns), the model's name, and how
    the data met the model's training data (`match.warning` to show, when any)."""

    table: pd.DataFrame
    model: str
    match: DataMatch


class UnknownUserError(ValueError):
    """The user asked for has no row in the data (the new-user options recommend for someone new)."""


def recommend(
    folder: str | Path,
    data: Path | None,
    query: RecommendQuery,
    *,
    ids: IdMap | None = None,
    allow_other: bool = False,
    on_event: ev.EventCallback | None = None,
) -> Recommendations:
    """Open the model in `folder`, load the train file `data` (default: the bundled sample), check that the
    model meets it (`check_model_data`: DataMismatchError unless `allow_other`) and rank for `query`.

    Raises DataError for a refused folder or file, ValueError naming the folder for a model that cannot
    recommend, UnknownUserError, and ValueError for unknown liked artists or genres."""
    try:
        model = open_model(folder)
    except ValueError as exc:
        raise ValueError(f"{folder}: {exc}") from None
    path = data or paths.sample_train()
    frame = load_train(data, on_event)
    match = check_model_data(model, frame, source=str(path), allow_other=allow_other)
    rec = Recommender(model, frame, ids=ids)
    q = query
    if q.all_users:
        table = rec.all_users(q.n)
    elif q.user is not None:
        try:
            table = rec.for_user(
                q.user, q.n, genres=q.genres, artists=q.artists, max_per_artist=q.max_per_artist
            )
        except ValueError as exc:
            if str(exc).startswith("unknown user"):
                raise UnknownUserError(str(exc)) from None
            raise
    else:
        table = rec.for_new_user(
            q.liked_artists,
            q.liked_genres,
            age=q.age,
            gender=q.gender,
            n=q.n,
            max_per_artist=q.max_per_artist,
            genres=q.genres,
            artists=q.artists,
        )
    return Recommendations(table, rec.model.name, match)

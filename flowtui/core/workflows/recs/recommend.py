"""Recommend with a saved model: open its folder (a recommender, or a Flow rbm, dbn or hybrid), check that
it meets the data, and rank for one user, every user or a new user."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from flowtui.core import events as ev
from flowtui.core import paths
from flowtui.core.recs import store
from flowtui.core.recs.recommend import Recommender, as_recommender, check_model_data
from flowtui.core.recs.recommender import RecommenderBase
from flowtui.core.workflows.recs.settings import load_train

if TYPE_CHECKING:
    from flowtui.core.data.idmap import IdMap
    from flowtui.core.modelfiles.data_match import DataMatch


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


def check_default_data(folder: str | Path) -> None:
    """Before the bundled sample stands in for a missing --data: DataError naming the file the model in
    `folder` records it was trained on, when that is another file (its ids, imported ones included, are
    that file's). Read from meta.json alone; a folder that cannot be read is left to `recommend`."""
    from flowtui.core.errors import DataError
    from flowtui.core.flow import store as flow_store

    try:
        meta = store.read_recommender_meta(folder) if store.is_recommender_folder(folder) else None
        meta = meta if meta is not None else flow_store.read_meta(folder)
    except DataError:
        return
    data = meta.get("data")
    source = data.get("source") if isinstance(data, dict) else None
    if not isinstance(source, str) or not source:
        return
    sample = paths.sample_train()
    if Path(source).resolve() == sample.resolve():
        return
    rows = data.get("rows") if isinstance(data, dict) else None
    size = f" ({rows:,} rows)" if isinstance(rows, int) else ""
    raise DataError(
        folder,
        f"was trained on {source}{size}, not on the bundled sample: pass --data {source} "
        "(or --allow-other-data to use the sample anyway)",
    )


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

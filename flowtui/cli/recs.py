"""Recommender commands: `recommend` (top-N lists from any saved recommender), `evaluate-recs` (the
leaderboard of every registered recommender on the same held-out splits), `train-recs` (fit and save
recommenders) and `recommenders` (the registered ones and their parameters).

Each command parses its options, calls `flowtui.core.workflows.recs` and prints what it returns."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from flowtui.cli import app
from flowtui.cli.common import (
    DataOpt,
    JsonOpt,
    PresetOpt,
    console,
    err_console,
    fail,
    fail_data,
    print_json,
    print_params,
    print_warnings,
    progress_events,
    reserve_targets,
)
from flowtui.cli.recs_output import print_all, print_board, print_list, print_saved
from flowtui.cli.tune import ParamsFileOpt, with_tuned
from flowtui.core import events as ev
from flowtui.core import paths, registry, safe_files
from flowtui.core.errors import DataError, ParamError
from flowtui.core.modelfiles.data_match import DataMismatchError
from flowtui.core.recs.store import check_recommender_target
from flowtui.core.workflows.recs import (
    FEEDBACK,
    Recommendations,
    RecommendQuery,
    TrainRequest,
    TrainResult,
    UnknownUserError,
    check_default_data,
    check_names,
    check_overrides,
    evaluate,
    id_map,
    internal_id,
    load_train_dataset,
    recommend,
    train_and_save,
)

if TYPE_CHECKING:
    from flowtui.core.data.idmap import IdMap

# -- options shared by the commands -------------------------------------------------------------------
ModelsOpt = Annotated[
    list[str] | None,
    typer.Option("--model", "-m", help="A registered recommender (repeat; default: all of them)."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Parameter MODEL.KEY=VALUE, or KEY=VALUE for every chosen model that has KEY (repeat).",
    ),
]
FeedbackOpt = Annotated[
    str,
    typer.Option(
        "--feedback",
        help="labels (listened/skipped), plays (every row a play: implicit data) or auto (plays when no "
        "row is skipped).",
    ),
]
MaxItemsOpt = Annotated[
    int, typer.Option("--max-items", help="Items kept in the user x media matrix, the most played.")
]
# -- recommend ------------------------------------------------------------------------------------------
ModelFolderOpt = Annotated[
    Path,
    typer.Option(
        "--model", help="Model folder: `flowtui train-recs` (any recommender) or `flowtui train` (rbm, dbn)."
    ),
]
UserOpt = Annotated[
    str | None, typer.Option("--user", help="Recommend for this user id (an imported log's own id).")
]
AllOpt = Annotated[bool, typer.Option("--all", help="Recommend for every user of the data.")]
LikeArtistOpt = Annotated[
    list[str] | None, typer.Option("--like-artist", help="New user: an artist id they like (repeat).")
]
LikeGenreOpt = Annotated[
    list[str] | None, typer.Option("--like-genre", help="New user: a genre id they like (repeat).")
]
AgeOpt = Annotated[int | None, typer.Option("--age", min=0, max=150, help="New user: age.")]
GenderOpt = Annotated[int | None, typer.Option("--gender", min=0, max=1, help="New user: gender (0/1).")]
NOpt = Annotated[int, typer.Option("--n", min=1, max=100_000, help="Number of tracks per user.")]
GenreOpt = Annotated[list[str] | None, typer.Option("--genre", help="Only tracks of this genre (repeat).")]
ArtistOpt = Annotated[list[str] | None, typer.Option("--artist", help="Only tracks of this artist (repeat).")]
MaxPerArtistOpt = Annotated[
    int | None, typer.Option("--max-per-artist", min=1, help="At most this many tracks per artist.")
]
CsvOutOpt = Annotated[Path | None, typer.Option("--out", help="With --all: CSV file to write (atomic).")]
AllowOtherOpt = Annotated[
    bool,
    typer.Option(
        "--allow-other-data",
        help="Recommend even when the data shares few users and media with the model's training data.",
    ),
]
# -- evaluate-recs ----------------------------------------------------------------------------------------
KOpt = Annotated[int, typer.Option("--k", help="Cut-off of precision/recall/NDCG@k.")]
SeedsOpt = Annotated[int, typer.Option("--seeds", help="Held-out splits (seeds seed..seed+N-1).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="First seed of the held-out splits.")]
USERS_HELP = "Evaluate on a sample of this many users (drawn with --seed; default: all)."
UsersOpt = Annotated[int | None, typer.Option("--users", help=USERS_HELP)]
EVAL_PRESET_HELP = "quick (seconds; the default, as in the app) or full (default parameters)."
EvalPresetOpt = Annotated[str, typer.Option("--preset", help=EVAL_PRESET_HELP)]
FractionOpt = Annotated[float, typer.Option("--fraction", help="Share of each user's entries held out.")]
HoldoutOpt = Annotated[str, typer.Option("--holdout", help="random or latest (each user's latest entries).")]
ValidationOpt = Annotated[
    bool,
    typer.Option(
        "--validation",
        help="Score on a split carved from the TRAINING entries (for tuning; the test entries stay unseen).",
    ),
]


def _check_board_options(
    k: int, seeds: int, seed: int, holdout: str, fraction: float, users: int | None
) -> None:
    """evaluate-recs' own options, each refused with one line."""
    for option, value, low in (("--k", k, 1), ("--seeds", seeds, 1), ("--seed", seed, 0)):
        if value < low:
            fail(f"{option} {value}: expected an integer >= {low}")
    if holdout not in ("random", "latest"):
        fail(f"--holdout {holdout!r}: expected random or latest")
    if not 0.0 < fraction < 1.0:
        fail(f"--fraction {fraction}: expected a number between 0 and 1")
    if users is not None and users < 1:
        fail(f"--users {users}: expected an integer >= 1")


# -- train-recs / recommenders ----------------------------------------------------------------------------
OutFolderOpt = Annotated[Path, typer.Option("--out", help="Folder; each recommender is saved to OUT/NAME.")]
RecommenderArg = Annotated[
    str | None, typer.Argument(help="A recommender: list its parameters (default: list them all).")
]


def _load_train(path: Path | None, on_event: ev.EventCallback | None) -> pd.DataFrame:
    """The train file, refused with one line; its warnings on stderr, as `data validate` prints them."""
    try:
        ds = load_train_dataset(path, on_event)
    except DataError as err:
        fail_data(err)
    print_warnings(ds.warnings, err_console)
    return ds.frame


def _names(models: list[str] | None) -> list[str]:
    try:
        return check_names(models)
    except ParamError as exc:
        fail(str(exc))


def _settings(
    names: list[str], items: list[str] | None, preset: str, feedback: str, max_items: int
) -> tuple[bool | None, dict[str, dict[str, str]]]:
    """(the feedback kind, each model's `--set` values), all checked (exit 2 on any problem)."""
    if max_items < 1:
        fail(f"--max-items {max_items}: expected an integer >= 1")
    if feedback not in FEEDBACK:
        fail(f"--feedback {feedback!r}: expected auto, labels or plays")
    if preset not in ("quick", "full"):
        fail(f"--preset {preset!r}: expected quick or full")
    try:
        return FEEDBACK[feedback], check_overrides(items or [], names, preset)
    except ParamError as exc:
        fail(str(exc))


def _failed(name: str, out: Path, exc: Exception) -> NoReturn:
    """Exit 2 on a model that could not be trained or saved, in one line."""
    if isinstance(exc, DataError):
        fail_data(exc)
    if isinstance(exc, OSError):
        fail(f"{out / name}: cannot write ({exc.strerror or exc})")
    fail(f"{name}: {' '.join(str(exc).split())}")


# -- recommend ---------------------------------------------------------------------------------------
def _check_modes(
    user: str | None,
    all_users: bool,
    new_user: bool,
    out: Path | None,
    filtered: bool,
) -> None:
    """One of --user, --all and the new-user options; --out only with --all; filters not with --all."""
    modes = [
        m for m, on in (("--user", user is not None), ("--all", all_users), ("new user", new_user)) if on
    ]
    if len(modes) != 1:
        fail(
            "choose one of --user ID, --all, or new-user options (--like-artist, --like-genre, --age, --gender)"
            + (f"; got {' and '.join(modes)}" if modes else "")
        )
    if out is not None and not all_users:
        fail("--out goes with --all")
    if all_users and filtered:
        fail("--genre, --artist and --max-per-artist go with --user or a new user, not --all")


def _ids(kind: str, option: str, texts: list[str] | None, ids: IdMap | None) -> tuple[int, ...]:
    """The internal ids of `texts` given with `option` (exit 2 on one that is no id of the data)."""
    out = []
    for text in texts or []:
        try:
            out.append(internal_id(kind, text, ids))
        except DataError as err:
            fail(f"{option} {text}: {err.one_line()}", error=err)
        except ValueError as exc:
            fail(f"{option} {text}: {exc}")
    return tuple(out)


def _id_map(data: Path | None, out: Path | None) -> IdMap | None:
    try:
        if out is not None:
            safe_files.check_output_path(out, make_parents=True)
        return id_map(data)
    except DataError as err:
        fail_data(err)


@app.command("recommend")
def recommend_cmd(
    model: ModelFolderOpt,
    data: DataOpt = None,
    user: UserOpt = None,
    all_users: AllOpt = False,
    like_artist: LikeArtistOpt = None,
    like_genre: LikeGenreOpt = None,
    age: AgeOpt = None,
    gender: GenderOpt = None,
    n: NOpt = 10,
    genre: GenreOpt = None,
    artist: ArtistOpt = None,
    max_per_artist: MaxPerArtistOpt = None,
    out: CsvOutOpt = None,
    allow_other_data: AllowOtherOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Top-N tracks for a user (--user), every user (--all) or a new user (--like-artist/--like-genre/--age/--gender).

    --genre and --artist filter before ranking: every track they match is a candidate. On a log imported
    with `flowtui data import`, ids given and shown are the log's own (kept in DATA.ids.json). The model
    must meet its own training data, or data whose users and media it mostly knows (a warning gives the
    shares); other data is refused unless --allow-other-data."""
    new_user = bool(like_artist or like_genre) or age is not None or gender is not None
    _check_modes(user, all_users, new_user, out, bool(genre or artist or max_per_artist))
    if data is None and not allow_other_data:
        try:
            check_default_data(model)
        except DataError as err:
            fail_data(err)
    ids = _id_map(data, out)
    query = RecommendQuery(
        n=n,
        user=_ids("user", "--user", [user], ids)[0] if user is not None else None,
        all_users=all_users,
        liked_artists=_ids("artist", "--like-artist", like_artist, ids),
        liked_genres=_ids("genre", "--like-genre", like_genre, ids),
        age=age,
        gender=gender,
        genres=_ids("genre", "--genre", genre, ids) or None,
        artists=_ids("artist", "--artist", artist, ids) or None,
        max_per_artist=max_per_artist,
    )
    result = _recommend(model, data, query, ids, allow_other_data, user)
    warning = result.match.warning
    if warning:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if all_users:
        print_all(result.table, out, as_json, warning)
    else:
        print_list(result, f"user {user}" if user is not None else "a new user", as_json)


def _recommend(
    model: Path, data: Path | None, query: Any, ids: IdMap | None, allow_other: bool, user: str | None
) -> Recommendations:
    try:
        return recommend(model, data, query, ids=ids, allow_other=allow_other)
    except DataMismatchError as err:
        fail(f"{err.one_line()}; pass --allow-other-data to use it anyway", error=err)
    except DataError as err:
        fail_data(err)
    except UnknownUserError:
        fail(f"unknown user {user}: not in the data (use the new-user options for cold start)")
    except ValueError as exc:
        fail(str(exc))


# -- evaluate-recs -----------------------------------------------------------------------------------
@app.command("evaluate-recs")
def evaluate_recs_cmd(
    data: DataOpt = None,
    model: ModelsOpt = None,
    k: KOpt = 10,
    seeds: SeedsOpt = 3,
    seed: SeedOpt = 0,
    fraction: FractionOpt = 0.2,
    holdout: HoldoutOpt = "random",
    validation: ValidationOpt = False,
    feedback: FeedbackOpt = "auto",
    max_items: MaxItemsOpt = 50_000,
    preset: EvalPresetOpt = "quick",
    set_: SetOpt = None,
    users: UsersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Leaderboard of the recommenders on the same held-out splits: P/R/NDCG@k, AUC and MAE (listen/skip
    data), coverage and fit time, each as mean ± std over the seeds."""
    names = _names(model)
    _check_board_options(k, seeds, seed, holdout, fraction, users)
    implicit, params = _settings(names, set_, preset, feedback, max_items)
    with progress_events(as_json) as on_event:
        frame = _load_train(data, on_event)
        if not as_json:  # once the input is accepted: a refusal stays one line
            sample = f", a sample of {users:,} users" if users else ""
            err_console.print(
                f"preset {preset}{sample} (--preset full: the declared defaults)", highlight=False
            )
        try:
            board = evaluate(
                frame,
                names,
                k=k,
                seeds=seeds,
                seed=seed,
                fraction=fraction,
                how="latest" if holdout == "latest" else "random",
                preset=preset,
                params=params,
                validation=validation,
                implicit=implicit,
                max_items=max_items,
                source=str((data or paths.sample_train()).absolute()),
                users=users,
                on_event=on_event,
            )
        except DataError as err:
            fail_data(err)
        except (ValueError, TypeError) as exc:
            fail(" ".join(str(exc).split()))
    if as_json:
        print_json(board.to_dict())
        return
    print_board(board.to_dict(), k)


# -- train-recs --------------------------------------------------------------------------------------
@app.command("train-recs")
def train_recs_cmd(
    out: OutFolderOpt,
    model: ModelsOpt = None,
    data: DataOpt = None,
    feedback: FeedbackOpt = "auto",
    max_items: MaxItemsOpt = 50_000,
    preset: PresetOpt = "full",
    set_: SetOpt = None,
    params_file: ParamsFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train recommenders on all of TRAIN and save each to OUT/NAME (read by `flowtui recommend --model`)."""
    names = _names(model)
    implicit, params = _settings(names, set_, preset, feedback, max_items)
    request = TrainRequest(
        tuple(names),
        out,
        with_tuned(params_file, names, params, preset),
        preset,
        implicit=implicit,
        max_items=max_items,
        source=str(data or paths.sample_train()),
    )
    _train(None, request)  # names, parameters and output folders checked before the data is read
    # the folders held until the saves end: a second run into them is refused at once, as `train` does
    with reserve_targets(out, names, check_recommender_target), progress_events(as_json) as on_event:
        result = _train(_load_train(data, on_event), request, on_event)
    for name, error in result.failed.items():  # the run stopped at its first failure
        _failed(name, out, error)
    print_saved(result, out, as_json)


def _train(
    frame: pd.DataFrame | None, request: TrainRequest, on_event: ev.EventCallback | None = None
) -> TrainResult:
    """The request checked (no frame) or carried out; exit 2 when it is refused."""
    try:
        if frame is None:
            request.validate()
            return TrainResult()
        return train_and_save(frame, request, on_event=on_event)
    except DataError as err:
        fail_data(err)
    except ParamError as exc:
        fail(str(exc))


# -- recommenders ------------------------------------------------------------------------------------
@app.command("recommenders")
def recommenders_cmd(
    model: RecommenderArg = None,
    preset: PresetOpt = "full",
    as_json: JsonOpt = False,
) -> None:
    """The registered recommenders, or one recommender's parameters (set with --set MODEL.KEY=VALUE)."""
    if model is None:
        rows = [
            {"model": n, "description": registry.get_recommender(n).description}
            for n in registry.recommender_names()
        ]
        if as_json:
            print_json(rows)
            return
        t = Table(title="recommenders (flowtui evaluate-recs, train-recs, recommend)")
        t.add_column("model")
        t.add_column("description")
        for r in rows:
            t.add_row(r["model"], r["description"])
        console.print(t)
        return
    print_params(registry.get_recommender(_names([model])[0]), model, preset, as_json)

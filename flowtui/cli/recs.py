"""Recommender commands: `recommend` (top-N lists from any saved recommender), `evaluate-recs` (the
leaderboard of every registered recommender on the same held-out splits), `train-recs` (fit and save
recommenders) and `recommenders` (the registered ones and their parameters)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from flowtui.cli import app
from flowtui.cli.common import (
    console,
    err_console,
    fail,
    fail_data,
    print_json,
    print_params,
    progress_events,
)
from flowtui.core import events as ev
from flowtui.core import paths, registry, safe_files
from flowtui.core.data import io
from flowtui.core.errors import DataError, ParamError
from flowtui.core.params import parse_assignments

if TYPE_CHECKING:
    from flowtui.core.data.idmap import IdMap

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout, nothing else.")]
DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Train file (CSV, CSV.gz or parquet); default: the bundled sample."),
]
ModelsOpt = Annotated[
    list[str] | None,
    typer.Option("--model", "-m", help="A registered recommender (repeat; default: all of them)."),
]
PresetOpt = Annotated[str, typer.Option("--preset", help="quick (seconds) or full (default parameters).")]
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
FEEDBACK = {"auto": None, "labels": False, "plays": True}


def _load_train(path: Path | None, on_event: ev.EventCallback | None) -> pd.DataFrame:
    try:
        return io.load_dataset(path or paths.sample_train(), kind="train", on_event=on_event).frame
    except DataError as err:
        fail_data(err)


def _names(models: list[str] | None) -> list[str]:
    known = registry.recommender_names()
    names = list(dict.fromkeys(models or known))
    bad = [m for m in names if m not in known]
    if bad:
        fail(f"unknown recommender {', '.join(bad)}; known: {', '.join(known)}")
    return names


def _overrides(items: list[str], names: list[str], preset: str) -> dict[str, dict[str, str]]:
    """`--set` items as {model: {key: text}}, each model's values checked (exit 2 on any problem).

    MODEL.KEY=VALUE sets one model's key (MODEL must be chosen); KEY=VALUE sets it for every chosen model
    that has KEY (at least one must)."""
    if preset not in ("quick", "full"):
        fail(f"--preset {preset!r}: expected quick or full")
    out: dict[str, dict[str, str]] = {}
    try:
        for key, raw in parse_assignments(items).items():
            prefix, dot, rest = key.partition(".")
            if dot:
                if prefix not in names:
                    known = registry.recommender_names()
                    why = "is not among the chosen models" if prefix in known else "is not a recommender"
                    raise ParamError(f"--set {key}={raw}: {prefix!r} {why} ({', '.join(names)})")
                out.setdefault(prefix, {})[rest] = raw
                continue
            having = [n for n in names if registry.get_recommender(n).schema.get(key) is not None]
            if not having:
                raise ParamError(f"--set {key}={raw}: no chosen recommender has a parameter {key!r}")
            for n in having:
                out.setdefault(n, {})[key] = raw
        for n, over in out.items():
            registry.get_recommender(n).params(over, preset)
    except ParamError as exc:
        fail(str(exc))
    return out


def _feedback(feedback: str, max_items: int) -> bool | None:
    if max_items < 1:
        fail(f"--max-items {max_items}: expected an integer >= 1")
    if feedback not in FEEDBACK:
        fail(f"--feedback {feedback!r}: expected auto, labels or plays")
    return FEEDBACK[feedback]


# -- recommend ---------------------------------------------------------------------------------------
_INT64 = re.compile(r"-?[0-9]+")


def _internal_id(kind: str, option: str, text: str, ids: IdMap | None) -> int:
    """The data's internal id of `text` given with `option`: through the imported log's id map when the
    data has one (the log's own ids, strings allowed), else a plain integer id (exit 2 otherwise)."""
    if ids is not None:
        to = {
            "user": ids.user_internal,
            "artist": ids.artist_internal,
            "genre": ids.genre_internal,
        }[kind]
        try:
            return to(text)
        except DataError as err:
            fail(f"{option} {text}: {err.one_line()}", error=err)
    if not _INT64.fullmatch(text.strip()):
        fail(f"{option} {text}: expected an integer {kind} id (this data set has no id map)")
    value = int(text)
    if not -(2**63) <= value < 2**63:
        fail(f"{option} {text}: no such {kind}; ids of this data set are 64-bit integers")
    return value


def _internal_ids(kind: str, option: str, texts: list[str] | None, ids: IdMap | None) -> list[int]:
    return [_internal_id(kind, option, t, ids) for t in texts or []]


@app.command("recommend")
def recommend_cmd(
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            help="Model folder: `flowtui train-recs` (any recommender) or `flowtui train` (rbm, dbn).",
        ),
    ],
    data: DataOpt = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Recommend for this user id (an imported log's own id).")
    ] = None,
    all_users: Annotated[bool, typer.Option("--all", help="Recommend for every user of the data.")] = False,
    like_artist: Annotated[
        list[str] | None, typer.Option("--like-artist", help="New user: an artist id they like (repeat).")
    ] = None,
    like_genre: Annotated[
        list[str] | None, typer.Option("--like-genre", help="New user: a genre id they like (repeat).")
    ] = None,
    age: Annotated[int | None, typer.Option("--age", min=0, max=150, help="New user: age.")] = None,
    gender: Annotated[
        int | None, typer.Option("--gender", min=0, max=1, help="New user: gender (0/1).")
    ] = None,
    n: Annotated[int, typer.Option("--n", min=1, max=100_000, help="Number of tracks per user.")] = 10,
    genre: Annotated[
        list[str] | None, typer.Option("--genre", help="Only tracks of this genre (repeat).")
    ] = None,
    artist: Annotated[
        list[str] | None, typer.Option("--artist", help="Only tracks of this artist (repeat).")
    ] = None,
    max_per_artist: Annotated[
        int | None, typer.Option("--max-per-artist", min=1, help="At most this many tracks per artist.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="With --all: CSV file to write (atomic).")] = None,
    allow_other_data: Annotated[
        bool,
        typer.Option(
            "--allow-other-data",
            help="Recommend even when the data shares few users and media with the model's training data.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Top-N tracks for a user (--user), every user (--all) or a new user (--like-artist/--like-genre/--age/--gender).

    --genre and --artist filter before ranking: every track they match is a candidate. On a log imported
    with `flowtui data import`, ids given and shown are the log's own (kept in DATA.ids.json). The model
    must meet its own training data, or data whose users and media it mostly knows (a warning gives the
    shares); other data is refused unless --allow-other-data."""
    from flowtui.core.data.idmap import IdMap
    from flowtui.core.modelfiles.data_match import DataMismatchError
    from flowtui.core.recs.recommend import Recommender, check_model_data, open_model

    new_user = bool(like_artist or like_genre) or age is not None or gender is not None
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
    if all_users and (genre or artist or max_per_artist):
        fail("--genre, --artist and --max-per-artist go with --user or a new user, not --all")
    data_path = data or paths.sample_train()
    try:
        if out is not None:
            safe_files.check_output_path(out, make_parents=True)
        ids = IdMap.for_dataset(data_path)
    except DataError as err:
        fail_data(err)
    user_id = _internal_id("user", "--user", user, ids) if user is not None else None
    liked_a = _internal_ids("artist", "--like-artist", like_artist, ids)
    liked_g = _internal_ids("genre", "--like-genre", like_genre, ids)
    genres = _internal_ids("genre", "--genre", genre, ids) or None
    artists = _internal_ids("artist", "--artist", artist, ids) or None
    with progress_events(True) as on_event:
        try:
            rec_model = open_model(model)
        except DataError as err:
            fail_data(err)
        except ValueError as exc:
            fail(f"{model}: {exc}")
        frame = _load_train(data, on_event)
        try:
            match = check_model_data(rec_model, frame, source=str(data_path), allow_other=allow_other_data)
        except DataMismatchError as err:
            fail(f"{err.one_line()}; pass --allow-other-data to use it anyway", error=err)
        try:
            rec = Recommender(rec_model, frame, ids=ids)
            if all_users:
                table = rec.all_users(n)
            elif user_id is not None:
                table = rec.for_user(
                    user_id, n, genres=genres, artists=artists, max_per_artist=max_per_artist
                )
            else:
                table = rec.for_new_user(
                    liked_a,
                    liked_g,
                    age=age,
                    gender=gender,
                    n=n,
                    max_per_artist=max_per_artist,
                    genres=genres,
                    artists=artists,
                )
        except DataError as err:
            fail_data(err)
        except ValueError as exc:
            msg = str(exc)
            if user_id is not None and msg.startswith("unknown user"):
                msg = f"unknown user {user}: not in the data (use the new-user options for cold start)"
            fail(msg)
    if match.warning:
        err_console.print(f"[yellow]warning:[/] {escape(match.warning)}", highlight=False)
    if all_users:
        _print_all(table, out, as_json, match.warning)
        return
    if as_json:
        print_json(table.to_dict(orient="records"))
        return
    if table.empty:
        console.print("no track left to recommend (all heard, or filtered out)")
        return
    who = f"user {user}" if user is not None else "a new user"
    t = Table(title=f"top {len(table)} for {who} ({rec.model.name})")
    for col in ("media_id", "score", "artist_id", "genre_id", "reason"):
        t.add_column(col, justify="left" if col == "reason" else "right")
    for r in table.itertuples(index=False):
        t.add_row(str(r.media_id), f"{r.score:.4g}", str(r.artist_id), str(r.genre_id), str(r.reason))
    console.print(t)


def _print_all(table: pd.DataFrame, out: Path | None, as_json: bool, warning: str | None = None) -> None:
    if out is not None:
        try:
            safe_files.write_csv(table, out, make_parents=True)
        except DataError as err:
            fail_data(err)
        except OSError as exc:
            fail(f"{out}: cannot write ({exc.strerror or exc})")
        users = int(table["user_id"].nunique())
        if as_json:
            doc: dict[str, Any] = {"out": str(out), "rows": len(table), "users": users}
            if warning:
                doc["data_warning"] = warning
            print_json(doc)
        else:
            console.print(f"wrote {len(table):,} recommendations for {users:,} users to {out}")
    elif as_json:
        print_json(table.to_dict(orient="records"))
    else:
        typer.echo(table.to_csv(index=False), nl=False)


# -- evaluate-recs -----------------------------------------------------------------------------------
@app.command("evaluate-recs")
def evaluate_recs_cmd(
    data: DataOpt = None,
    model: ModelsOpt = None,
    k: Annotated[int, typer.Option("--k", help="Cut-off of precision/recall/NDCG@k.")] = 10,
    seeds: Annotated[int, typer.Option("--seeds", help="Held-out splits (seeds seed..seed+N-1).")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="First seed of the held-out splits.")] = 0,
    fraction: Annotated[
        float, typer.Option("--fraction", help="Share of each user's entries held out.")
    ] = 0.2,
    holdout: Annotated[
        str, typer.Option("--holdout", help="random or latest (each user's latest entries).")
    ] = "random",
    validation: Annotated[
        bool,
        typer.Option(
            "--validation",
            help="Score on a split carved from the TRAINING entries (for tuning; the test entries stay unseen).",
        ),
    ] = False,
    feedback: FeedbackOpt = "auto",
    max_items: MaxItemsOpt = 50_000,
    preset: PresetOpt = "full",
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Leaderboard of the recommenders on the same held-out splits: P/R/NDCG@k, AUC and MAE (listen/skip
    data), coverage and fit time, each as mean ± std over the seeds."""
    from flowtui.core.recs.evaluation import leaderboard

    names = _names(model)
    for option, value, low in (("--k", k, 1), ("--seeds", seeds, 1), ("--seed", seed, 0)):
        if value < low:
            fail(f"{option} {value}: expected an integer >= {low}")
    if holdout not in ("random", "latest"):
        fail(f"--holdout {holdout!r}: expected random or latest")
    if not 0.0 < fraction < 1.0:
        fail(f"--fraction {fraction}: expected a number between 0 and 1")
    implicit = _feedback(feedback, max_items)
    params = _overrides(set_ or [], names, preset)
    with progress_events(as_json) as on_event:
        frame = _load_train(data, on_event)
        try:
            board = leaderboard(
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
                on_event=on_event,
            )
        except DataError as err:
            fail_data(err)
        except (ValueError, TypeError) as exc:
            fail(" ".join(str(exc).split()))
    from flowtui.core.modelfiles import fingerprint as data_fingerprint

    board.setup["data"] = {
        "source": str((data or paths.sample_train()).absolute()),
        "rows": len(frame),
        "fingerprint": data_fingerprint(frame),
    }
    if as_json:
        print_json(board.to_dict())
        return
    _print_board(board.to_dict(), k)


def _num(x: float, digits: int) -> str:
    """A compact number: 0.1322 -> ".132" (no leading zero), 12.34 -> "12.3" for digits=1."""
    text = f"{x:.{digits}f}"
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


def _cell(row: dict[str, Any], key: str, digits: int = 3, std: bool = True) -> str:
    mean, sd = row.get(key), row.get(f"{key}_std")
    if mean is None:
        return "-"
    return _num(mean, digits) + (f"±{_num(sd, digits)}" if std and sd is not None else "")


def _print_board(doc: dict[str, Any], k: int) -> None:
    """The leaderboard in 80 columns: NDCG, AUC, MAE as mean±std over the seeds, P/R/coverage/fit means
    (their std is in --json), and the paired NDCG difference to the best model."""
    s = doc["setup"]
    kind = "implicit plays" if s["implicit"] else "listen/skip labels"
    split = "validation split of TRAIN" if s["validation"] else "test split"
    rows = doc["leaderboard"]
    labels = not s["implicit"]
    t = Table(
        title=f"{s['n_users']:,} users x {s['n_items']:,} items, {kind}",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
    )
    cols = [
        (f"P@{k}", "precision_at_k", 3, False),
        (f"R@{k}", "recall_at_k", 3, False),
        (f"NDCG@{k}", "ndcg_at_k", 3, True),
        ("vs best", "ndcg_at_k_vs_best", 3, True),
        *((("AUC", "auc", 3, True), ("MAE", "mae", 3, True)) if labels else ()),
        ("cov", "coverage", 3, False),
        ("fit s", "fit_seconds", 1, False),
    ]
    t.add_column("model", no_wrap=True)
    for label, *_ in cols:
        t.add_column(label, justify="right", no_wrap=True)
    for i, r in enumerate(rows):
        cells = [_cell(r, key, d, sd) for _, key, d, sd in cols]
        if i == 0:
            cells[3] = "best"
        t.add_row(r["model"], *cells)
    console.print(t, width=max(console.width, 80))
    n_seeds = len(s["seeds"])
    data = s.get("data") or {}
    console.print(
        f"{s['holdout']} {s['fraction']:.0%} {split}, seeds {s['seeds'][0]}..{s['seeds'][-1]}: mean±std "
        f"over {n_seeds} seed{'s' if n_seeds > 1 else ''}; 'vs best': NDCG gap to the best on the same "
        f"splits (a gap under 2 std is noise). Data: {data.get('source') or '?'} "
        f"(fingerprint {data.get('fingerprint') or '?'})",
        highlight=False,
        soft_wrap=False,
    )
    for name, why in doc["skipped"].items():
        console.print(f"[dim]{name}: left out ({why})[/]", highlight=False)


# -- train-recs --------------------------------------------------------------------------------------
@app.command("train-recs")
def train_recs_cmd(
    out: Annotated[Path, typer.Option("--out", help="Folder; each recommender is saved to OUT/NAME.")],
    model: ModelsOpt = None,
    data: DataOpt = None,
    feedback: FeedbackOpt = "auto",
    max_items: MaxItemsOpt = 50_000,
    preset: PresetOpt = "full",
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train recommenders on all of TRAIN and save each to OUT/NAME (read by `flowtui recommend --model`)."""
    from flowtui.core.modelfiles import fingerprint as data_fingerprint
    from flowtui.core.modelfiles.data_match import describe_data
    from flowtui.core.recs.store import check_recommender_target, save_recommender, train_recommender

    names = _names(model)
    implicit = _feedback(feedback, max_items)
    params = _overrides(set_ or [], names, preset)
    try:
        for name in names:
            check_recommender_target(out / name)
    except DataError as err:
        fail_data(err)
    saved: list[dict[str, Any]] = []
    with progress_events(as_json) as on_event:
        frame = _load_train(data, on_event)
        fingerprint = data_fingerprint(frame)
        described = describe_data(frame, fingerprint, source=str(data or paths.sample_train()))
        for name in names:
            try:
                rec = train_recommender(
                    frame,
                    name,
                    params.get(name),
                    preset,
                    implicit=implicit,
                    max_items=max_items,
                    on_event=on_event,
                )
                folder = save_recommender(rec, out / name, fingerprint=fingerprint, data=described)
            except DataError as err:
                fail_data(err)
            except (ValueError, TypeError) as exc:
                fail(f"{name}: {' '.join(str(exc).split())}")
            except OSError as exc:
                fail(f"{out / name}: cannot write ({exc.strerror or exc})")
            saved.append(
                {
                    "model": name,
                    "path": str(folder),
                    "n_items": len(rec.item_ids_),
                    "n_users": rec.n_users_,
                    "implicit": rec.implicit_,
                    "fit_seconds": round(rec.fit_seconds_, 3),
                    "notes": rec.notes,
                }
            )
    if as_json:
        print_json(saved)
        return
    t = Table(title=f"recommenders saved to {out}")
    for col in ("model", "folder", "items", "users", "data", "fit s", "notes"):
        t.add_column(col, justify="right" if col in ("items", "users", "fit s") else "left")
    for r in saved:
        t.add_row(
            r["model"],
            r["path"],
            f"{r['n_items']:,}",
            f"{r['n_users']:,}",
            "plays" if r["implicit"] else "labels",
            f"{r['fit_seconds']:.1f}",
            "; ".join(r["notes"]),
        )
    console.print(t)


# -- recommenders ------------------------------------------------------------------------------------
@app.command("recommenders")
def recommenders_cmd(
    model: Annotated[
        str | None, typer.Argument(help="A recommender: list its parameters (default: list them all).")
    ] = None,
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

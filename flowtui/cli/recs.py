"""`flowtui recommend` and `flowtui evaluate-recs`: recommendations from a saved rbm/dbn model, and their
held-out quality next to the popularity and item-mean baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from flowtui.cli import app
from flowtui.cli.common import console, fail, fail_data, print_json, progress_events
from flowtui.core import events as ev
from flowtui.core import paths, registry
from flowtui.core.data import io
from flowtui.core.data.schema import DataError
from flowtui.core.params import ParamError, parse_assignments

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout, nothing else.")]
DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Train file (CSV, CSV.gz or parquet); default: the bundled sample."),
]


def _load_train(path: Path | None, on_event: ev.EventCallback | None) -> pd.DataFrame:
    try:
        return io.load_dataset(path or paths.sample_train(), kind="train", on_event=on_event).frame
    except DataError as err:
        fail_data(err)


@app.command("recommend")
def recommend_cmd(
    model: Annotated[
        Path, typer.Option("--model", help="Model folder written by `flowtui train --model rbm`.")
    ],
    data: DataOpt = None,
    user: Annotated[int | None, typer.Option("--user", help="Recommend for this user id.")] = None,
    all_users: Annotated[bool, typer.Option("--all", help="Recommend for every user of the data.")] = False,
    like_artist: Annotated[
        list[int] | None, typer.Option("--like-artist", help="New user: an artist id they like (repeat).")
    ] = None,
    like_genre: Annotated[
        list[int] | None, typer.Option("--like-genre", help="New user: a genre id they like (repeat).")
    ] = None,
    age: Annotated[int | None, typer.Option("--age", min=0, help="New user: age.")] = None,
    gender: Annotated[
        int | None, typer.Option("--gender", min=0, max=1, help="New user: gender (0/1).")
    ] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Number of tracks per user.")] = 10,
    genre: Annotated[
        list[int] | None, typer.Option("--genre", help="Only tracks of this genre (repeat).")
    ] = None,
    max_per_artist: Annotated[
        int | None, typer.Option("--max-per-artist", min=1, help="At most this many tracks per artist.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="With --all: CSV file to write (atomic).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Top-N tracks for a user (--user), every user (--all) or a new user (--like-artist/--like-genre/--age/--gender)."""
    from flowtui.core.flow.store import load_model
    from flowtui.core.recs.recommend import Recommender

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
    with progress_events(True) as on_event:
        try:
            trained = load_model(model)
        except DataError as err:
            fail_data(err)
        frame = _load_train(data, on_event)
        try:
            rec = Recommender(trained, frame)
        except ValueError as exc:
            fail(f"{model}: {exc}")
        try:
            if all_users:
                table = rec.all_users(n)
            elif user is not None:
                table = rec.for_user(user, n, genres=genre or None, max_per_artist=max_per_artist)
            else:
                table = rec.for_new_user(
                    like_artist or (),
                    like_genre or (),
                    age=age,
                    gender=gender,
                    n=n,
                    max_per_artist=max_per_artist,
                )
                if genre:
                    table = table[table["genre_id"].isin(genre)].reset_index(drop=True)
        except ValueError as exc:
            fail(str(exc))
    if all_users:
        if out is not None:
            io.write_csv(table, out)
            if not as_json:
                console.print(
                    f"wrote {len(table):,} recommendations for {table['user_id'].nunique():,} users to {out}"
                )
            else:
                print_json({"out": str(out), "rows": len(table), "users": int(table["user_id"].nunique())})
        elif as_json:
            print_json(table.to_dict(orient="records"))
        else:
            typer.echo(table.to_csv(index=False), nl=False)
        return
    if as_json:
        print_json(table.to_dict(orient="records"))
        return
    if table.empty:
        console.print("no track left to recommend (all heard, or filtered out)")
        return
    t = Table(title=f"top {len(table)} for " + (f"user {user}" if user is not None else "a new user"))
    for col in ("media_id", "score", "artist_id", "genre_id", "reason"):
        t.add_column(col, justify="left" if col == "reason" else "right")
    for r in table.itertuples(index=False):
        t.add_row(str(r.media_id), f"{r.score:.3f}", str(r.artist_id), str(r.genre_id), str(r.reason))
    console.print(t)


def _network_params(items: list[str], names: list[str], preset: str) -> dict[str, dict[str, str]]:
    """`--set KEY=VALUE` for the rbm and the dbn: each takes the keys it knows (n_components or layers);
    a key neither knows, or a bad value, exits 2."""
    try:
        given = parse_assignments(items)
        out: dict[str, dict[str, str]] = {}
        for name in ("rbm", "dbn"):
            schema = registry.get_spec(name).schema
            out[name] = {k: v for k, v in given.items() if schema.get(k) is not None}
            if name in names or name == "rbm":
                registry.get_spec(name).params(out[name], preset)
        unknown = [k for k in given if not any(k in out[n] for n in out)]
        if unknown:
            known = sorted(
                set(registry.get_spec("rbm").schema.keys) | set(registry.get_spec("dbn").schema.keys)
            )
            raise ParamError(f"--set: unknown parameter {', '.join(unknown)}; known: {', '.join(known)}")
    except ParamError as exc:
        fail(str(exc))
    return out


@app.command("evaluate-recs")
def evaluate_recs_cmd(
    data: DataOpt = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="rbm, dbn, popularity or item_mean (repeat; default: all four)."),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Cut-off of precision/recall/NDCG.")] = 10,
    fraction: Annotated[
        float, typer.Option("--fraction", help="Share of each user's rated items held out.")
    ] = 0.2,
    holdout: Annotated[
        str, typer.Option("--holdout", help="random or latest (each user's latest items).")
    ] = "random",
    preset: Annotated[str, typer.Option("--preset", help="quick or full.")] = "full",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="rbm/dbn parameter KEY=VALUE (JSON or text), e.g. n_iter=5."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the held-out split.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Held-out MAE, AUC, precision/recall/NDCG@k of the RBM/DBN beside item popularity and item mean."""
    from flowtui.core.recs.evaluation import MODELS, evaluate_recs

    names = list(dict.fromkeys(model or MODELS))
    bad = [m for m in names if m not in MODELS]
    if bad:
        fail(f"unknown recommendation model {', '.join(bad)}; known: {', '.join(MODELS)}")
    if holdout not in ("random", "latest"):
        fail(f"--holdout {holdout!r}: expected random or latest")
    if preset not in ("quick", "full"):
        fail(f"--preset {preset!r}: expected quick or full")
    if not 0.0 < fraction < 1.0:
        fail(f"--fraction {fraction}: expected a number between 0 and 1")
    params = _network_params(set_ or [], names, preset)
    results = []
    with progress_events(as_json) as on_event:
        frame = _load_train(data, on_event)
        for name in names:
            p = params.get(name, params["rbm"])  # the baselines build their matrix as the rbm does
            try:
                results.append(
                    evaluate_recs(
                        frame,
                        name,
                        k,
                        p,
                        fraction=fraction,
                        how="latest" if holdout == "latest" else "random",
                        seed=seed,
                        preset=preset,  # type: ignore[arg-type]
                        on_event=on_event,
                    )
                )
            except (ValueError, TypeError) as exc:
                fail(f"{name}: {exc}")
    if as_json:
        print_json(results[0] if len(results) == 1 else results)
        return
    first = results[0]
    t = Table(
        title=f"held-out recommendations ({first['n_users']:,} users, {first['n_items']:,} items, "
        f"{first['n_heldout']:,} held-out entries, {holdout} {fraction:.0%})"
    )
    for col in ("model", "mae", "auc", f"precision@{k}", f"recall@{k}", f"ndcg@{k}"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for r in results:
        t.add_row(
            r["model"],
            *(
                "-" if r[key] is None else f"{r[key]:.4f}"
                for key in ("mae", "auc", "precision_at_k", "recall_at_k", "ndcg_at_k")
            ),
        )
    console.print(t)

"""Latency of one user's top-10 from a saved and reloaded RBM model (target: median <= 20 ms).

    python bench/bench_recommend.py [--users 2000 --items 50000 --hidden 256 --queries 200]

A synthetic DSG17-like log (about 380 rows a user over `--items` tracks, long-tailed popularity, artists
and genres) trains an RBM for one epoch (the weights' values do not change the latency), which is saved
with `store.save_model` and loaded back. Printed, measured in this run: the median and 90th percentile of
`Recommender.for_user(user, 10)` over random users (every user's top 100 precomputed at load, and scored
live), and the same for a naive path (the batched dense
`predict_proba` of the user's row, a full sort and a DataFrame), as a ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from flowtui.core import registry
from flowtui.core.flow.store import TrainedModel, load_model, save_model
from flowtui.core.recs.recommend import Recommender
from flowtui.core.registry import FlowModel


def synthetic_log(n_users: int, n_items: int, per_user: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    counts = np.clip(rng.lognormal(np.log(per_user) - 0.5, 1.0, n_users).astype(np.int64), 1, 5000)
    users = np.repeat(np.arange(n_users), counts)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    media = rng.choice(n_items, size=len(users), p=pop / pop.sum())
    artist = media // 5
    n = len(users)
    return pd.DataFrame(
        {
            "user_id": users.astype(np.int32),
            "media_id": media.astype(np.int32),
            "artist_id": artist.astype(np.int32),
            "genre_id": (artist % 300).astype(np.int32),
            "ts_listen": 1_480_000_000 + rng.integers(0, 30 * 86_400, n),
            "is_listened": (rng.random(n) < 0.68).astype(np.int8),
            "user_age": (18 + users % 13).astype(np.int8),
            "user_gender": (users % 2).astype(np.int8),
        }
    )


def timed(f, users: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = []
    for u in users:
        t0 = time.perf_counter()
        f(int(u))
        out.append(time.perf_counter() - t0)
    return np.array(out) * 1000


def train(frame: pd.DataFrame, hidden: int, n_items: int) -> FlowModel:
    """The registered rbm with `hidden` units (listen and exposure networks), one epoch each."""
    model = registry.get_spec("rbm").build(
        {
            "n_components": hidden,
            "n_iter": 1,
            "exposure_n_components": hidden,
            "exposure_n_iter": 1,
            "batch_size": 512,
            "max_items": n_items,
        }
    )
    t0 = time.perf_counter()
    model.fit(None, frame["is_listened"].to_numpy(), frame)  # type: ignore[arg-type]
    print(
        f"log: {len(frame):,} rows, {frame['user_id'].nunique():,} users, {frame['media_id'].nunique():,} tracks; "
        f"listen and exposure RBMs of {hidden} hidden units, one epoch each in {time.perf_counter() - t0:.1f}s"
    )
    return model


def reloaded(model: FlowModel, frame: pd.DataFrame, hidden: int) -> tuple[Recommender, Recommender]:
    """Save the model, load it back and set up (live, precomputed) Recommenders, timed."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "rbm"
        params = registry.get_spec("rbm").params({"n_components": hidden})
        save_model(TrainedModel("rbm", model, [], params), folder)
        t0 = time.perf_counter()
        trained = load_model(folder)
        rec = Recommender(trained, frame)
        print(f"load + Recommender set-up: {time.perf_counter() - t0:.2f}s")
        t0 = time.perf_counter()
        cached = Recommender(trained, frame, precompute=100)
        print(f"Recommender set-up with every user's top 100 precomputed: {time.perf_counter() - t0:.2f}s")
    return rec, cached


def naive_top10(rec: Recommender, u: int) -> pd.DataFrame:
    """The reference path: batched dense predict_proba of the user's row, a full sort and a DataFrame."""
    row = rec.matrix.user_index(u)
    p = rec.net.predict_proba(rec.matrix.labels[row], rec.matrix.mask[row])[0]
    if rec.expo is not None:
        p = p * rec.expo.predict_proba(rec.played.labels[row], rec.matrix.mask[row])[0]
    heard = rec.matrix.labels[row].indices
    df = pd.DataFrame({"media_id": rec.item_ids, "score": p})
    top: pd.DataFrame = df.drop(index=heard).sort_values("score", ascending=False).head(10)
    return top


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--per-user", type=int, default=380)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()

    frame = synthetic_log(args.users, args.items, args.per_user)
    model = train(frame, args.hidden, args.items)
    rec, cached = reloaded(model, frame, args.hidden)

    users = np.random.default_rng(1).choice(frame["user_id"].unique(), size=args.queries)
    rec.for_user(int(users[0]), 10)  # warm-up
    live = timed(lambda u: rec.for_user(u, 10), users)
    fast = timed(lambda u: cached.for_user(u, 10), users)
    slow = timed(lambda u: naive_top10(rec, u), users[: max(20, args.queries // 5)])
    print(
        f"for_user top-10, precomputed: median {np.median(fast):.2f} ms, p90 {np.percentile(fast, 90):.2f} ms"
    )
    print(
        f"for_user top-10, scored live: median {np.median(live):.2f} ms, p90 {np.percentile(live, 90):.2f} ms"
    )
    print("  (target: median <= 20 ms; live scoring reads both networks' weights once: memory-bound)")
    ratio = np.median(slow) / np.median(live)
    print(
        f"naive dense path (batched predict_proba, full sort): median {np.median(slow):.2f} ms = {ratio:.1f}x live"
    )


if __name__ == "__main__":
    main()

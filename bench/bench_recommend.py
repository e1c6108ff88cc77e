"""Latency of one user's top-10 from saved and reloaded recommenders (target: median <= 10 ms), against
the `implicit` library's ALS `recommend` measured in the same run on the same matrix.

    python bench/bench_recommend.py [--users 2000 --items 50000 --hidden 256 --queries 200 -m rbm -m ease]

A synthetic DSG17-like log (about 380 rows a user over `--items` tracks, long-tailed popularity, albums,
artists and genres) trains each recommender (the RBM for one epoch per network: the weights' values do not change
the latency), which is saved with `save_recommender` and opened again with `open_model`. Printed, measured
in this run, per recommender: fit and load times, the median and 90th percentile of
`Recommender.for_user(user, 10)` over random users (scored live, and with every user's top 100
precomputed at load), an artist-filtered list (filters apply before ranking: every track is scored), and
the same top-10 by a naive path (the model's dense scores, a full sort and a DataFrame) as a ratio.

The peer: `implicit.cpu.als.AlternatingLeastSquares` (flowtui als defaults: 128 factors, regularization 50,
alpha 5, 15 iterations; one thread: one user's query is single-threaded on both sides) fitted on the
same played matrix; its `recommend(user, row, N=10, filter_already_liked_items=True)` for the same
users is the reference. Each recommender's live
top-10 median is printed as a ratio to it ("x implicit": below 1 is faster). The peer returns ids and
scores only; flowtui's `for_user` also builds the DataFrame with artist, genre and a reason per track, so
`model.recommend` (ids and scores only, like the peer) is timed too.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from flowtui.core import registry
from flowtui.core.recs.interactions import recommender_matrix
from flowtui.core.recs.recommend import Recommender
from flowtui.core.recs.store import save_recommender
from flowtui.core.workflows.recs import open_model


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
            "album_id": (media // 2).astype(np.int32),  # the RBM's catalogue context has two levels to read
            "genre_id": (artist % 300).astype(np.int32),
            "ts_listen": 1_480_000_000 + rng.integers(0, 30 * 86_400, n),
            "is_listened": (rng.random(n) < 0.68).astype(np.int8),
            "user_age": (18 + users % 13).astype(np.int8),
            "user_gender": (users % 2).astype(np.int8),
        }
    )


def timed(f: Callable[[int], object], users: np.ndarray) -> np.ndarray:
    out = []
    for u in users:
        t0 = time.perf_counter()
        f(int(u))
        out.append(time.perf_counter() - t0)
    return np.array(out) * 1000


def naive_top10(rec: Recommender, u: int) -> pd.DataFrame:
    """The reference path: the model's dense scores of the user's row, a full sort and a DataFrame."""
    row = rec.matrix.user_index(u)
    p = rec.model.score(rec.matrix, row)[0]
    heard = rec.matrix.labels[row].indices
    df = pd.DataFrame({"media_id": rec.item_ids, "score": p})
    top: pd.DataFrame = df.drop(index=heard).sort_values("score", ascending=False).head(10)
    return top


def settings(name: str, hidden: int) -> dict[str, object]:
    if name == "rbm":
        return {"n_components": hidden, "n_iter": 1, "exposure_n_components": hidden, "exposure_n_iter": 1}
    if name == "dbn":
        return {"layers": [hidden, 32], "n_iter": 1, "exposure_n_iter": 1}
    return {}


def bench_implicit(frame: pd.DataFrame, users: np.ndarray) -> float:
    """Median ms of implicit's ALS `recommend` (one user's top 10, heard items filtered) on the same matrix."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    matrix = recommender_matrix(frame)
    X = matrix.played(1.0).astype(np.float32).tocsr()
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(
            factors=128, regularization=50.0, alpha=5.0, iterations=15, num_threads=1, random_state=0
        )
        t0 = time.perf_counter()
        als.fit(X, show_progress=False)
        fit_s = time.perf_counter() - t0
        rows = matrix.user_index(users)
        als.recommend(int(rows[0]), X[int(rows[0])], N=10)  # warm-up
        ms = timed(lambda r: als.recommend(r, X[r], N=10, filter_already_liked_items=True), rows)
        again = timed(lambda r: als.recommend(r, X[r], N=10, recalculate_user=True), rows)
    med = float(np.median(ms))
    print(
        f"{'implicit ALS':14s} fit {fit_s:6.1f}s  recommend top-10 {med:6.2f} ms "
        f"(p90 {np.percentile(ms, 90):6.2f}; stored user factors)  <- the peer reference; "
        f"with recalculate_user=True (as flowtui's als: factors solved from the history) "
        f"{np.median(again):6.2f} ms"
    )
    return med


def bench(name: str, frame: pd.DataFrame, users: np.ndarray, hidden: int, peer_ms: float) -> None:
    matrix = recommender_matrix(frame)
    t0 = time.perf_counter()
    model = registry.get_recommender(name).build(settings(name, hidden)).fit(matrix)
    fit_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_recommender(model, Path(tmp) / name)
        t0 = time.perf_counter()
        rec = Recommender(open_model(folder), frame)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        cached = Recommender(open_model(folder), frame, precompute=100)
        pre_s = time.perf_counter() - t0
    artist = int(frame["artist_id"].iloc[-1])
    rec.for_user(int(users[0]), 10)  # warm-up
    live = timed(lambda u: rec.for_user(u, 10), users)
    fast = timed(lambda u: cached.for_user(u, 10), users)
    rows = rec.matrix.user_index(users)
    bare = timed(lambda r: rec.model.recommend(rec.matrix, [r], 10), rows)
    filt = timed(lambda u: rec.for_user(u, 10, artists=[artist]), users[: max(20, len(users) // 5)])
    slow = timed(lambda u: naive_top10(rec, u), users[: max(20, len(users) // 5)])
    med = float(np.median(live))
    print(
        f"{name:14s} fit {fit_s:6.1f}s  load {load_s:5.2f}s (+{pre_s - load_s:5.2f}s top 100 of all)  "
        f"top-10 live {med:6.2f} ms (p90 {np.percentile(live, 90):6.2f}; "
        f"{med / peer_ms:4.1f}x implicit; {'meets' if med <= 10 else 'MISSES'} 10 ms)  "
        f"ids only {np.median(bare):6.2f} ms ({np.median(bare) / peer_ms:4.1f}x implicit)  "
        f"precomputed {np.median(fast):5.2f} ms  artist filter {np.median(filt):6.2f} ms  "
        f"naive {np.median(slow) / med:4.1f}x live"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--per-user", type=int, default=380)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("-m", "--model", action="append", help="recommenders (default: all registered)")
    args = ap.parse_args()

    frame = synthetic_log(args.users, args.items, args.per_user)
    print(
        f"log: {len(frame):,} rows, {frame['user_id'].nunique():,} users, {frame['media_id'].nunique():,} tracks"
        " (target: median top-10 <= 10 ms)"
    )
    users = np.random.default_rng(1).choice(frame["user_id"].unique(), size=args.queries)
    peer_ms = bench_implicit(frame, users)
    for name in args.model or registry.recommender_names():
        bench(name, frame, users, args.hidden, peer_ms)


if __name__ == "__main__":
    main()

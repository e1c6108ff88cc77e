"""RBM training speed at DSG17 scale, against the peers a Python user would pick, all measured in one run.

    python bench/bench_rbm.py [--users 19918 --items 50000 --per-user 380 --hidden 256 --batch 512]

A synthetic sparse matrix with the real density (about 380 rated entries per user, 0.65% filled,
long-tailed item popularity, labels 1 listened / 0 skipped) stands in for DSG17. Printed:
- the fp32 matmul rate of this CPU (torch.mm on the shapes an epoch uses), for scale;
- flowtui's RBM, one CD-1 epoch: the masked listen/skip model (the Flow question's; every product runs
  over the observed entries only) and the implicit model (the played matrix, every item a visible unit,
  unseen = 0: the textbook model, whose negative phase is dense by nature), without and with the
  catalogue context (a synthetic catalogue: 2.5 tracks an album, 5 an artist);
- scikit-learn's `BernoulliRBM` (same matrix, hidden units and batch size; one epoch of `partial_fit`,
  timed on `--sk-batches` batches and scaled to an epoch when that is fewer than all);
- implicit's ALS (`implicit.cpu.als`, `--als-factors`, 15 iterations) on the played matrix, when the
  `implicit` package is installed (it is optional: pip install implicit);
- one user's top-10 from a saved and reloaded RBM (median over `--queries` users);
and the ratios: BernoulliRBM epoch / flowtui epoch (target >= 3x for the masked model), ALS fit / flowtui.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from flowtui.core.recs.interactions import InteractionMatrix
from flowtui.core.recs.network_files import load_network, save_network
from flowtui.core.recs.rbm import RBM
from flowtui.core.recs.rbm_params import RBMParams


def synthetic_matrix(n_users: int, n_items: int, per_user: int, seed: int = 0) -> sp.csr_matrix:
    """Users x items with about `per_user` entries a user (Zipf-like item popularity), labels 0/1."""
    rng = np.random.default_rng(seed)
    counts = np.clip(rng.lognormal(np.log(per_user) - 0.5, 1.0, n_users).astype(np.int64), 1, n_items // 2)
    counts = (counts * (per_user * n_users / counts.sum())).astype(np.int64).clip(1, n_items // 2)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    pop /= pop.sum()
    rows = np.repeat(np.arange(n_users), counts)
    cols = rng.choice(n_items, size=len(rows), p=pop)
    labels = (rng.random(len(rows)) < 0.68).astype(np.float32)
    m = sp.csr_matrix((labels, (rows, cols)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data = np.minimum(m.data, 1.0)  # a duplicated pair keeps a 0/1 label
    return m


def played(X: sp.csr_matrix) -> sp.csr_matrix:
    """Every stored entry a play (1)."""
    return sp.csr_matrix((np.ones(X.nnz, np.float32), X.indices, X.indptr), shape=X.shape)


def matmul_rate(batch: int, items: int, hidden: int, reps: int = 3) -> float:
    """Best fp32 GFLOP/s of torch.mm over the three shapes of a dense epoch."""
    a = torch.rand(batch, items)
    w = torch.rand(hidden, items)
    h = torch.rand(batch, hidden)
    flops = 2.0 * batch * items * hidden
    best = []
    for f in (lambda: a @ w.t(), lambda: h @ w, lambda: h.t() @ a):
        f()
        t = []
        for _ in range(reps):
            t0 = time.perf_counter()
            f()
            t.append(time.perf_counter() - t0)
        best.append(flops / min(t) / 1e9)
    return float(np.mean(best))


def with_catalogue(P: sp.csr_matrix) -> InteractionMatrix:
    """The played matrix with a catalogue like the synthetic DSG17 data's (about 2.5 tracks an album,
    5 an artist: neighbouring item columns), for the RBM's catalogue context."""
    n_users, n_items = P.shape
    items = np.arange(n_items)
    return InteractionMatrix(
        labels=P,
        mask=P,
        user_ids=np.arange(n_users),
        item_ids=items,
        item_counts=np.zeros(n_items, np.int64),
        last_ts=np.zeros(P.nnz, np.int64),
        implicit_weight=RBMParams().exposure_weight,
        item_groups={"artist": items // 5, "album": (2 * items) // 5},
    )


def flowtui_epoch(
    X: sp.csr_matrix, hidden: int, batch: int, implicit: bool, catalogue: bool = False
) -> float:
    """Seconds of one CD-1 epoch of flowtui's RBM (masked on X, or implicit on the played matrix, with or
    without the catalogue context)."""
    # the implicit model as the recommenders train it (exposure network: unseen entries weigh w, no context)
    w = RBMParams().exposure_weight if implicit else 0.0
    rbm = RBM(
        n_components=hidden,
        batch_size=batch,
        n_iter=1,
        k=1,
        random_state=0,
        device="cpu",
        implicit_weight=w,
        user_rate=not implicit,
    )
    data = (with_catalogue(played(X)) if catalogue else played(X)) if implicit else X
    t0 = time.perf_counter()
    rbm.fit(data)
    return time.perf_counter() - t0


def sklearn_epoch(X: sp.csr_matrix, hidden: int, batch: int, n_batches: int) -> tuple[float, int]:
    """Seconds of one epoch of scikit-learn's BernoulliRBM.partial_fit over mini-batches of X, timed on
    `n_batches` of them (0: all) and scaled to the epoch; returns (seconds, batches timed)."""
    from sklearn.neural_network import BernoulliRBM

    total = -(-X.shape[0] // batch)
    nb = total if n_batches <= 0 else min(n_batches, total)
    rbm = BernoulliRBM(n_components=hidden, batch_size=batch, n_iter=1, random_state=0)
    t0 = time.perf_counter()
    for start in range(0, nb * batch, batch):
        rbm.partial_fit(X[start : start + batch])
    return (time.perf_counter() - t0) / nb * total, nb


def als_fit(X: sp.csr_matrix, factors: int, iterations: int) -> float | None:
    """Seconds of implicit's ALS fit on X, None when the optional `implicit` package is missing."""
    try:
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError:
        return None
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # implicit's advice: its own threads, single-threaded BLAS
        als = AlternatingLeastSquares(factors=factors, iterations=iterations, random_state=0)
        t0 = time.perf_counter()
        als.fit(X, show_progress=False)
    return time.perf_counter() - t0


def top10_latency(X: sp.csr_matrix, hidden: int, queries: int) -> tuple[float, float]:
    """(median, 90th percentile) milliseconds of one user's top-10 unheard items from a saved and reloaded
    masked RBM: the user's row scored by the network's numpy scorer, heard items excluded, a partial sort."""
    rbm = RBM(n_components=hidden, batch_size=512, n_iter=1, random_state=0, device="cpu")
    rbm.fit(X[: min(X.shape[0], 2048)])
    with tempfile.TemporaryDirectory() as tmp:
        save_network(rbm, Path(tmp) / "rbm.pt")
        net, _, _ = load_network(Path(tmp) / "rbm.pt", device="cpu")
    assert isinstance(net, RBM)
    scorer = net.user_scorer()
    users = np.random.default_rng(1).integers(0, X.shape[0], queries)
    out = []
    for u in users:
        t0 = time.perf_counter()
        lo, hi = X.indptr[u], X.indptr[u + 1]
        cols = X.indices[lo:hi]
        z = scorer(cols, X.data[lo:hi])
        z[cols] = -np.inf
        top = np.argpartition(-z, 10)[:10]
        top[np.argsort(-z[top])]
        out.append(time.perf_counter() - t0)
    ms = np.array(out) * 1000
    return float(np.median(ms)), float(np.percentile(ms, 90))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=19_918)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--per-user", type=int, default=380)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument(
        "--sk-batches", type=int, default=6, help="BernoulliRBM batches to time (0: a full epoch)"
    )
    ap.add_argument("--als-factors", type=int, default=64)
    ap.add_argument("--queries", type=int, default=200, help="users whose top-10 is timed")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    X = synthetic_matrix(args.users, args.items, args.per_user)
    print(
        f"matrix: {X.shape[0]:,} users x {X.shape[1]:,} items, {X.nnz:,} entries "
        f"({X.nnz / X.shape[0]:.0f} a user, density {X.nnz / (X.shape[0] * X.shape[1]):.4%}); "
        f"hidden {args.hidden}, batch {args.batch}, torch threads {torch.get_num_threads()}"
    )
    rate = matmul_rate(args.batch, args.items, args.hidden)
    print(f"fp32 torch.mm rate of this CPU: {rate:.1f} GFLOP/s")

    masked = flowtui_epoch(X, args.hidden, args.batch, implicit=False)
    print(f"flowtui RBM epoch, masked listen/skip model (CD-1): {masked:.2f} s")
    implicit = flowtui_epoch(X, args.hidden, args.batch, implicit=True)
    print(f"flowtui RBM epoch, implicit model over all items (CD-1): {implicit:.2f} s")
    catalogue = flowtui_epoch(X, args.hidden, args.batch, implicit=True, catalogue=True)
    print(
        f"flowtui RBM epoch, implicit model with the catalogue context (artists, albums): {catalogue:.2f} s"
    )

    sk, nb = sklearn_epoch(X, args.hidden, args.batch, args.sk_batches)
    total = -(-X.shape[0] // args.batch)
    how = "a full epoch" if nb == total else f"timed on {nb} of {total} batches, scaled to an epoch"
    print(f"scikit-learn BernoulliRBM epoch (partial_fit, {how}): {sk:.2f} s")
    print(f"  flowtui masked epoch is {sk / masked:.1f}x faster (target >= 3x)")
    print(f"  flowtui implicit epoch is {sk / implicit:.1f}x faster (same dense negative phase)")
    print(f"  flowtui implicit epoch with the catalogue context is {sk / catalogue:.1f}x faster")

    als = als_fit(played(X), args.als_factors, 15)
    if als is None:
        print("implicit's ALS: not installed (pip install implicit); skipped")
    else:
        print(f"implicit ALS fit ({args.als_factors} factors, 15 iterations, played matrix): {als:.2f} s")
        print(
            f"  = {als / masked:.1f} masked flowtui epochs, {als / implicit:.1f} implicit flowtui epochs; "
            f"{als / sk:.2f} BernoulliRBM epochs"
        )

    med, p90 = top10_latency(X, args.hidden, args.queries)
    print(
        f"one user's top-10 from a reloaded RBM: median {med:.2f} ms, 90th percentile {p90:.2f} ms (target <= 10 ms)"
    )


if __name__ == "__main__":
    main()

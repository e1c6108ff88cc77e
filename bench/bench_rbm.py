"""One RBM epoch at DSG17 scale, against this CPU's matmul rate and a naive tutorial-style reference.

    python bench/bench_rbm.py [--users 19918 --items 50000 --per-user 380 --hidden 256 --batch 512]

A synthetic sparse matrix with the real density (about 380 rated entries per user, long-tailed item
popularity) stands in for DSG17. Printed, all measured in this run:
- the fp32 matmul rate of this CPU (torch.mm on the shapes an epoch uses);
- flowtui's masked CD-1 epoch: seconds and effective GFLOP/s (10 * batch * items * hidden flops a batch:
  three passes and the two gradient products), as a fraction of that rate (target >= 40%);
- a naive reference, written the way the widely copied PyTorch RBM tutorial does it (a Python loop over
  batches of a dense matrix with -1 for unseen, CD-10, separate sample/train functions), timed on a few
  batches and scaled to an epoch; the speed-up of flowtui's epoch over it (target >= 5x).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
import torch

from flowtui.core.recs.rbm import RBM


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


def matmul_rate(batch: int, items: int, hidden: int, reps: int = 3) -> float:
    """Best fp32 GFLOP/s of torch.mm over the three shapes of an epoch."""
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


class TutorialRBM:
    """The RBM of the widely copied tutorial (weights W: hidden x visible, biases a: hidden, b: visible)."""

    def __init__(self, nv: int, nh: int) -> None:
        self.W = torch.randn(nh, nv)
        self.a = torch.randn(1, nh)
        self.b = torch.randn(1, nv)

    def sample_h(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wx = torch.mm(x, self.W.t())
        activation = wx + self.a.expand_as(wx)
        p_h_given_v = torch.sigmoid(activation)
        return p_h_given_v, torch.bernoulli(p_h_given_v)

    def sample_v(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wy = torch.mm(y, self.W)
        activation = wy + self.b.expand_as(wy)
        p_v_given_h = torch.sigmoid(activation)
        return p_v_given_h, torch.bernoulli(p_v_given_h)

    def train(self, v0: torch.Tensor, vk: torch.Tensor, ph0: torch.Tensor, phk: torch.Tensor) -> None:
        self.W += (torch.mm(v0.t(), ph0) - torch.mm(vk.t(), phk)).t()
        self.b += torch.sum((v0 - vk), 0)
        self.a += torch.sum((ph0 - phk), 0)


def naive_batches(X: sp.csr_matrix, hidden: int, batch: int, n_batches: int, k: int = 10) -> float:
    """Seconds for `n_batches` batches of the tutorial's training loop (dense batch, -1 = unseen)."""
    rbm = TutorialRBM(X.shape[1], hidden)
    t0 = time.perf_counter()
    for start in range(0, n_batches * batch, batch):
        sub = X[start : start + batch]
        dense = np.full(sub.shape, -1.0, np.float32)
        r = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))
        dense[r, sub.indices] = sub.data
        v0 = torch.from_numpy(dense)
        vk = v0.clone()
        ph0, _ = rbm.sample_h(v0)
        for _ in range(k):
            _, hk = rbm.sample_h(vk)
            _, vk = rbm.sample_v(hk)
            vk[v0 < 0] = v0[v0 < 0]
        phk, _ = rbm.sample_h(vk)
        rbm.train(v0, vk, ph0, phk)
        float(torch.mean(torch.abs(v0[v0 >= 0] - vk[v0 >= 0])))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=19_918)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--per-user", type=int, default=380)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--naive-batches", type=int, default=3, help="batches of the reference to time")
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

    rbm = RBM(n_components=args.hidden, batch_size=args.batch, n_iter=1, k=1, random_state=0, device="cpu")
    t0 = time.perf_counter()
    rbm.fit(X)
    epoch = time.perf_counter() - t0
    n_batches = -(-X.shape[0] // args.batch)
    flops = 10.0 * X.shape[0] * X.shape[1] * args.hidden
    eff = flops / epoch / 1e9
    print(f"flowtui RBM epoch (CD-1): {epoch:.2f} s, {n_batches} batches, effective {eff:.1f} GFLOP/s")
    print(f"  = {eff / rate:.0%} of the measured matmul rate (target >= 40%)")

    nb = min(args.naive_batches, n_batches)
    naive = naive_batches(X, args.hidden, args.batch, nb) / nb * n_batches
    print(f"naive tutorial loop (CD-10, dense -1 batches): {naive:.2f} s an epoch (from {nb} batches)")
    print(f"  speed-up of flowtui's epoch: {naive / epoch:.1f}x (target >= 5x)")


if __name__ == "__main__":
    main()

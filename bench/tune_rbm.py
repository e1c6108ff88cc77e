"""Tune the RBM's ranking network on a validation split carved from the TRAINING entries only.

    python bench/tune_rbm.py DATA [--feedback plays|labels|auto] [--grid JSON] [--epochs 40] [--every 2]

For each split seed, the held-out test entries are put aside exactly as `flowtui evaluate-recs` does, and
a second random 20% of the remaining (training) entries becomes the validation set (`holdout(...,
validation=True)`); the test entries are never read. For every combination of the grid (keys: the RBM's
arguments, e.g. n_components, learning_rate, batch_size, weight_decay, k, plus `w`, the weight of unseen
entries as negatives), the exposure network (the one that ranks unheard items: P(played)) is trained epoch
by epoch and its validation NDCG@10 is measured every `--every` epochs; the best epoch (early stopping on
validation NDCG) and the whole curve are printed, next to popularity's validation NDCG on the same split.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np
import pandas as pd
import torch

from flowtui.core import metrics
from flowtui.core.recs.evaluation import holdout, relevant
from flowtui.core.recs.interactions import InteractionMatrix, recommender_matrix
from flowtui.core.recs.rbm import RBM
from flowtui.core.recs.rbm_params import RBMParams
from flowtui.core.recs.recommender import top_n


def val_ndcg(
    rbm: RBM, X: InteractionMatrix, train: InteractionMatrix, users: np.ndarray, rel: object
) -> float:
    """Validation NDCG@10 of the network's mean-field scores, training items excluded."""
    tops = []
    for start in range(0, len(users), 256):
        idx = users[start : start + 256]
        p = rbm.predict_proba(X.labels[idx], X.mask[idx])
        tops.append(top_n(p, 10, exclude=train.mask[idx])[0])
    return float(metrics.ndcg_at_k(np.concatenate(tops), rel, 10))  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--feedback", default="auto", choices=("auto", "plays", "labels"))
    ap.add_argument("--grid", default='{"n_components": [128], "learning_rate": [0.1]}')
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--every", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    implicit = {"plays": True, "labels": False, "auto": None}[args.feedback]
    matrix = recommender_matrix(pd.read_csv(args.data), implicit=implicit)
    grid = json.loads(args.grid)
    defaults = RBMParams()
    base = {
        "n_components": defaults.exposure_n_components,
        "learning_rate": defaults.exposure_learning_rate,
        "lr_schedule": defaults.exposure_lr_schedule,
        "batch_size": defaults.batch_size,
        "weight_decay": defaults.weight_decay,
        "momentum": defaults.momentum,
        "k": defaults.k,
    }
    for seed in range(args.seeds):
        train, val = holdout(matrix, 0.2, "random", seed, validation=True)
        rel = relevant(val)
        users = np.flatnonzero(np.diff(rel.indptr) > 0)
        pop = np.asarray(train.mask.sum(0)).ravel().astype(np.float32)
        pop_top = top_n(np.tile(pop, (len(users), 1)), 10, exclude=train.mask[users])[0]
        print(
            f"seed {seed}: {train.shape[0]:,} users x {train.shape[1]:,} items, {train.nnz:,} train entries; "
            f"validation NDCG@10 of popularity {metrics.ndcg_at_k(pop_top, rel[users], 10):.4f}",
            flush=True,
        )
        keys = sorted(grid)
        for combo in itertools.product(*(grid[k] for k in keys)):
            kw = {**base, **dict(zip(keys, combo, strict=True))}
            w = float(kw.pop("w", defaults.exposure_weight))
            X = train.as_played(w)
            # n_iter = the whole run, so that a linear lr_schedule decays over it (partial_fit counts epochs)
            rbm = RBM(
                implicit_weight=w, user_rate=False, random_state=seed, device="cpu", n_iter=args.epochs, **kw
            )
            t0 = time.perf_counter()
            curve = []
            for epoch in range(1, args.epochs + 1):
                rbm.partial_fit(X)
                if epoch % args.every == 0 or epoch == args.epochs:
                    curve.append((epoch, round(val_ndcg(rbm, X, train, users, rel[users]), 4)))
            best = max(curve, key=lambda c: c[1])
            print(
                json.dumps({"w": w, **kw}),
                f"best epoch {best[0]} NDCG@10 {best[1]:.4f} ({time.perf_counter() - t0:.0f} s)",
                "curve",
                curve,
                flush=True,
            )


if __name__ == "__main__":
    main()

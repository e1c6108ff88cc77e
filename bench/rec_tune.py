"""Tune the peers' defaults (ease, als, item_knn) on validation carved from TRAINING entries only.

    python bench/rec_tune.py --data synth=/tmp/s0/train.csv --data ml-implicit=/tmp/ml.csv ... \
        [--model als] [--out tune.jsonl]

For each data set, the test split of seed 0 (`holdout`, random 20% of each user's entries) is put aside
and never read; a second random 20% of the remaining training entries (seed 1000) is the validation set.
With `--protect-seeds 0,1,2`, the entries held out by ANY of those seeds' test splits are put aside
instead, so a leaderboard over those seeds never meets an entry the tuning looked at (the tuning then
learns from about half the entries: 0.8^3 x 0.8).
Every configuration of a model's grid is fitted on the rest and scored by NDCG@10 on the validation
entries. Each result is printed and appended to `--out` as one JSON line (so a long run can be read while
it goes). The summary ranks each configuration by its mean share of the best validation NDCG of each data
set (a default must hold on every data set, not win one): the first row is the proposed default.
Threads are held to 1 for every model (the machine is shared); fit times here are for that setting.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from flowtui.core import registry
from flowtui.core.data import io
from flowtui.core.recs.evaluation import VALIDATION_SEED_OFFSET, evaluate_model, holdout, split_entries
from flowtui.core.recs.interactions import recommender_matrix

GRIDS: dict[str, dict[str, list[Any]]] = {
    "ease": {"l2": [10.0, 50.0, 200.0, 500.0, 1000.0, 3000.0], "skip_weight": [0.0, 1.0]},
    "als": {
        "factors": [32, 64, 128],
        "regularization": [0.1, 1.0, 10.0, 50.0, 200.0],
        "alpha": [1.0, 5.0, 20.0],
        "skip_weight": [1.0],
    },
    "item_knn": {"k": [20, 50, 100, 200, 400], "shrink": [0.0, 10.0, 100.0], "skip_weight": [0.0, 1.0]},
    "popularity": {"skip_weight": [0.0, 1.0]},
}
THREADS = {"ease": {"num_threads": 1}, "als": {"num_threads": 1}, "item_knn": {"num_threads": 1}}


def configs(model: str) -> list[dict[str, Any]]:
    grid = GRIDS[model]
    keys = list(grid)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(grid[k] for k in keys))]


def key_of(cfg: dict[str, Any]) -> str:
    return json.dumps(cfg, sort_keys=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", required=True, help="NAME=PATH (repeat)")
    ap.add_argument("-m", "--model", action="append", help="models to tune (default: ease, als, item_knn)")
    ap.add_argument("--out", type=Path, default=Path("rec_tune.jsonl"))
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--protect-seeds", default="", help="e.g. 0,1,2: never tune on their test entries")
    args = ap.parse_args()
    models = args.model or ["ease", "als", "item_knn"]
    done: set[tuple[str, str, str]] = set()
    results: list[dict[str, Any]] = []
    if args.out.exists():  # resume: keep what an earlier run measured
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            results.append(r)
            done.add((r["data"], r["model"], key_of(r["params"])))
    for item in args.data:
        name, _, path = item.partition("=")
        frame = io.load_dataset(Path(path), kind="train").frame
        matrix = recommender_matrix(frame)
        if args.protect_seeds:
            held = np.zeros(matrix.nnz, bool)
            for s in (int(x) for x in args.protect_seeds.split(",")):
                held |= split_entries(matrix, 0.2, "random", s)
            base = matrix.select_entries(~held)
            v = split_entries(base, 0.2, "random", VALIDATION_SEED_OFFSET)
            train, val = base.select_entries(~v), base.select_entries(v)
        else:
            train, val = holdout(matrix, 0.2, "random", 0, validation=True)
        print(f"# {name}: {matrix.shape[0]:,} users x {matrix.shape[1]:,} items, {matrix.nnz:,} entries, "
              f"implicit={matrix.is_implicit}; validation entries {val.nnz:,}", flush=True)  # fmt: skip
        for model in models:
            for cfg in configs(model):
                if (name, model, key_of(cfg)) in done:
                    continue
                if matrix.is_implicit and cfg.get("skip_weight", 1.0) != 1.0:
                    continue  # every entry is a play: the skip weight changes nothing
                t0 = time.perf_counter()
                rec = registry.get_recommender(model).build({**cfg, **THREADS.get(model, {})})
                m = evaluate_model(rec, train, val, args.k)
                row = {
                    "data": name,
                    "implicit": matrix.is_implicit,
                    "model": model,
                    "params": cfg,
                    **m,
                    "seconds": time.perf_counter() - t0,
                }
                results.append(row)
                with args.out.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(f"{name:12s} {model:9s} {key_of(cfg):70s} ndcg {m['ndcg_at_k']:.4f} "
                      f"fit {m['fit_seconds']:.1f}s", flush=True)  # fmt: skip
    summarize(results, models)


def summarize(results: list[dict[str, Any]], models: list[str]) -> None:
    """Per model: each configuration's mean share of the best validation NDCG of each data set."""
    for model in models:
        rows = [r for r in results if r["model"] == model]
        sets = sorted({r["data"] for r in rows})
        best = {d: max(r["ndcg_at_k"] or 0.0 for r in rows if r["data"] == d) for d in sets}
        implicit = {r["data"] for r in rows if r.get("implicit")}
        share = {(r["data"], key_of(r["params"])): (r["ndcg_at_k"] or 0.0) / max(best[r["data"]], 1e-12)
                 for r in rows}  # fmt: skip
        by_cfg: dict[str, dict[str, float]] = {}
        for cfg in {key_of(r["params"]) for r in rows}:
            for d in sets:
                # on implicit data the skip weight changes nothing: use the run with weight 1
                k = key_of({**json.loads(cfg), "skip_weight": 1.0}) if d in implicit else cfg
                if (d, k) in share:
                    by_cfg.setdefault(cfg, {})[d] = share[(d, k)]
        scored = [
            (float(np.mean([v[d] for d in sets])), min(v.values()), cfg, v)
            for cfg, v in by_cfg.items()
            if len(v) == len(sets)
        ]
        scored.sort(key=lambda t: (-t[0], -t[1]))
        print(f"\n## {model}: best validation NDCG@10 per data set: "
              + ", ".join(f"{d} {best[d]:.4f}" for d in sets))  # fmt: skip
        for mean, worst, cfg, v in scored[:8]:
            print(f"  mean share {mean:.3f} (worst {worst:.3f})  {cfg}  "
                  + " ".join(f"{d}={v.get(d, float('nan')):.3f}" for d in sets))  # fmt: skip


if __name__ == "__main__":
    main()

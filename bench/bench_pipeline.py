"""End-to-end pipeline benchmark: load, holdout, features, LightGBM training, holdout evaluation.

    python bench/bench_pipeline.py [TRAIN] [--model lightgbm] [--threads N]

TRAIN defaults to /tmp/flowtui-full/train.csv (`flowtui data synth --users 19918 --out /tmp/flowtui-full`).
Each stage's wall time is printed beside its ratio to a reference measured in the same run (pyarrow's raw CSV
parse of the same file), since these machines are shared and absolute times drift. Peak memory is the
process's maximum resident set size. Targets (issue 3): at most 300 s in all and 8 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

DEFAULT_TRAIN = Path("/tmp/flowtui-full/train.csv")
TARGET_SECONDS = 300.0
TARGET_GB = 8.0


def peak_gb() -> float:
    """Peak resident memory of this process so far, in GB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("train", nargs="?", type=Path, default=DEFAULT_TRAIN)
    ap.add_argument("--model", default="lightgbm")
    ap.add_argument("--threads", type=int, default=0, help="LightGBM threads (0: all cores)")
    args = ap.parse_args(argv)
    if not args.train.is_file():
        print(f"error: {args.train} not found (generate it with `flowtui data synth`)", file=sys.stderr)
        return 2

    import pyarrow.csv as pacsv

    from flowtui.core import metrics, registry
    from flowtui.core.data import io
    from flowtui.core.data.schema import LABEL
    from flowtui.core.flow import features, split

    stages: list[tuple[str, float, float]] = []

    def stage(name: str, t0: float) -> float:
        now = time.perf_counter()
        stages.append((name, now - t0, peak_gb()))
        print(f"  {name:<22} {now - t0:8.2f} s   peak {peak_gb():5.2f} GB", flush=True)
        return now

    print(
        f"{args.train} ({args.train.stat().st_size / 1e6:.0f} MB), {os.cpu_count()} CPUs, model {args.model}"
    )
    t = time.perf_counter()
    table = pacsv.read_csv(args.train)
    ref = time.perf_counter() - t
    n_raw = table.num_rows
    del table
    print(f"  reference: pyarrow raw CSV parse {ref:.2f} s ({n_raw:,} rows)")

    start = t = time.perf_counter()
    frame = io.load_dataset(args.train, kind="train", use_cache=False).frame
    t = stage("load + validate", t)
    folds = split.holdout(frame, rounds=1)
    fold = folds[0]
    t = stage("holdout", t)
    X, y, rows, Xt, rows_t = features.fold_matrices(fold.history, fold.targets)
    yt = rows_t[LABEL].to_numpy()
    t = stage("features", t)
    params = {"num_threads": args.threads} if args.model == "lightgbm" else {}
    model = registry.get_spec(args.model).build(params).fit(X, y, rows)
    t = stage(f"train {args.model}", t)
    p = model.predict_proba(Xt, rows_t)
    auc = metrics.auc(yt, p)
    base = metrics.auc(yt, Xt["user_flow_rate"].to_numpy())
    t = stage("predict + AUC", t)
    total = t - start

    print()
    print(f"{'stage':<22} {'seconds':>8} {'x parse':>8} {'peak GB':>8}")
    for name, sec, gb in stages:
        print(f"{name:<22} {sec:8.2f} {sec / ref:8.1f} {gb:8.2f}")
    print(f"{'total':<22} {total:8.2f} {total / ref:8.1f} {peak_gb():8.2f}")
    print()
    print(
        f"rows {len(frame):,}; training rows {len(X):,} x {X.shape[1]} features; held-out users {len(yt):,}"
    )
    print(f"holdout AUC {args.model} {auc:.4f}  user_flow_rate {base:.4f}  notes: {'; '.join(model.notes)}")
    ok_t, ok_m = total <= TARGET_SECONDS, peak_gb() <= TARGET_GB
    print(f"target total <= {TARGET_SECONDS:.0f} s: {'met' if ok_t else 'MISSED'} ({total:.0f} s)")
    print(f"target peak memory <= {TARGET_GB:.0f} GB: {'met' if ok_m else 'MISSED'} ({peak_gb():.2f} GB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

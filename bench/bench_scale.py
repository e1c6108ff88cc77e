"""Scale-out benchmark: the same run (holdout leaderboard + final LightGBM fit) on one process and on a
local Dask cluster, from the same train file.

    python bench/bench_scale.py [--users 19918] [--data /tmp/flowtui-full] [--cluster local:2]
                                [--preset full] [--rounds 1] [--all-rows]

The train file is `DATA/train.csv`; when absent it is generated first with
`python -m flowtui data synth --users USERS --seed 7 --out DATA` (about 90 s for 19,918 users).
Each side runs in a fresh process so that its peak memory is its own: the single process loads the CSV
(`load_dataset`, no cache) and calls `core.run.run`; the cluster side calls `cluster.run.cluster_run` on
the same CSV (read in 64 MB blocks by the workers). Printed: wall time and peak resident memory of each
process (the cluster's workers each, and its driver), as ratios to the single process measured in the
same run (these machines are shared and noisy, absolute times drift), and the holdout AUC of both.

Not here yet: `--nproc N` (the RBM on torch.distributed, one process per GPU or CPU socket) comes with
the issue that adds the torch.distributed executor; it will be a third side of this table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path("/tmp/flowtui-full")


def peak_gb() -> float:
    """Peak resident memory of this process so far, in GB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def _worker_peak_gb() -> float:
    import resource as r

    return r.getrusage(r.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def _config(args: argparse.Namespace, models_dir: Path) -> Any:
    from flowtui.core.run_config import RunConfig

    params: dict[str, dict[str, object]] = {"lightgbm": {"max_rows": None}} if args.all_rows else {}
    return RunConfig(
        models=("lightgbm",), preset=args.preset, rounds=args.rounds, params=params, models_dir=models_dir
    )


def _summary(result: Any) -> dict[str, Any]:
    board = result.leaderboard
    row = board.row("lightgbm")
    return {
        "auc": row.auc,
        "baseline_auc": board.row("user_flow_rate").auc,
        "targets": board.n_targets,
        "notes": row.notes,
        "saved": sorted(result.saved),
    }


def side_single(args: argparse.Namespace) -> dict[str, Any]:
    from flowtui.core.data.io import load_dataset
    from flowtui.core.run import run

    t0 = time.perf_counter()
    frame = load_dataset(args.data / "train.csv", use_cache=False).frame
    t_load = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        result = run(frame, _config(args, Path(tmp) / "models"))
    total = time.perf_counter() - t0
    return {"rows": len(frame), "load_s": t_load, "total_s": total, "peak_gb": peak_gb(), **_summary(result)}


def side_cluster(args: argparse.Namespace) -> dict[str, Any]:
    from flowtui.core.cluster.run import cluster_run
    from flowtui.core.cluster.spec import ClusterSpec

    t0 = time.perf_counter()
    session = ClusterSpec.parse(args.cluster).start()
    t_start = time.perf_counter() - t0
    stages: list[tuple[str, float]] = []

    def on_event(e: Any) -> None:
        kind = type(e).__name__
        if kind == "Stage":
            stages.append((e.stage, time.perf_counter() - t0))
        elif kind == "Progress" and e.message:
            stages.append((e.message, time.perf_counter() - t0))
        elif kind in ("BeforeFit", "AfterFit"):
            stages.append((f"lightgbm {kind}", time.perf_counter() - t0))

    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = cluster_run(
                args.data / "train.csv",
                _config(args, Path(tmp) / "models"),
                cluster=session,
                on_event=on_event,
            )
        total = time.perf_counter() - t0
        workers = session.client.run(_worker_peak_gb)
    finally:
        session.close()
    return {
        "start_s": t_start,
        "total_s": total,
        "peak_gb": peak_gb(),
        "worker_peak_gb": sorted(workers.values()),
        "stages": stages,
        **_summary(result),
    }


def ensure_data(data: Path, users: int) -> None:
    if (data / "train.csv").is_file():
        return
    print(f"generating {users} users into {data} (about 90 s for 19,918)...", flush=True)
    cmd = [
        sys.executable,
        "-m",
        "flowtui",
        "data",
        "synth",
        "--users",
        str(users),
        "--seed",
        "7",
        "--out",
        str(data),
    ]
    subprocess.run(cmd, check=True)


def run_side(side: str, argv: list[str]) -> dict[str, Any]:
    """One side in a fresh process; its JSON result is the last line of its stdout."""
    out = subprocess.run(
        [sys.executable, __file__, "--side", side, *argv], check=True, stdout=subprocess.PIPE, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=19918)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cluster", default="local:2")
    ap.add_argument("--preset", default="full")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--all-rows", action="store_true", help="max_rows null: LightGBM trains on every row")
    ap.add_argument("--side", choices=("single", "cluster"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.side == "single":
        print(json.dumps(side_single(args)))
        return 0
    if args.side == "cluster":
        print(json.dumps(side_cluster(args)))
        return 0

    ensure_data(args.data, args.users)
    size = (args.data / "train.csv").stat().st_size
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("--side")]
    print(
        f"{args.data / 'train.csv'} ({size / 1e6:.0f} MB), {os.cpu_count()} CPUs, cluster {args.cluster}, "
        f"preset {args.preset}, {args.rounds} round(s){', all rows' if args.all_rows else ''}",
        flush=True,
    )
    single = run_side("single", passthrough)
    print(
        f"  single   {single['total_s']:8.1f} s (load {single['load_s']:.1f} s)   peak {single['peak_gb']:5.2f} GB"
        f"   holdout AUC {single['auc']:.4f}",
        flush=True,
    )
    cluster = run_side("cluster", passthrough)
    worst = max(cluster["worker_peak_gb"])
    print(
        f"  cluster  {cluster['total_s']:8.1f} s (start {cluster['start_s']:.1f} s)   workers peak "
        f"{', '.join(f'{g:.2f}' for g in cluster['worker_peak_gb'])} GB, driver {cluster['peak_gb']:.2f} GB"
        f"   holdout AUC {cluster['auc']:.4f}",
        flush=True,
    )
    print(
        f"  ratios   time cluster/single {cluster['total_s'] / single['total_s']:.2f}   "
        f"peak per worker / single {worst / single['peak_gb']:.2f}   "
        f"all cluster processes / single {(sum(cluster['worker_peak_gb']) + cluster['peak_gb']) / single['peak_gb']:.2f}"
        f"   AUC cluster - single {cluster['auc'] - single['auc']:+.4f} on {single['targets']} targets"
    )
    print(
        "  cluster stages (s since start): "
        + "; ".join(f"{name[:40]} {t:.0f}" for name, t in cluster["stages"])
    )
    print(f"  single notes: {single['notes']}\n  cluster notes: {cluster['notes']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

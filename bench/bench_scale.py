"""Scale-out benchmark: the same run (holdout leaderboard + final LightGBM fit) on one process and on a
local Dask cluster, and the rbm's training on one process and on `--nproc` torch.distributed processes,
from the same train file.

    python bench/bench_scale.py [--users 19918] [--data /tmp/scale] [--seed 1] [--cluster local:2]
                                [--nproc 2] [--preset full] [--rounds 1] [--all-rows] [--no-final]
                                [--sides single,cluster,rbm1,rbmN]

The train file is `DATA/train.csv`; when absent it is generated first with
`python -m flowtui data synth --users USERS --seed SEED --out DATA` (15-90 s for 19,918 users).
Each side runs in a fresh process so that its peak memory is its own: the single process loads the CSV
(`load_dataset`, no cache) and calls `core.run.run`; the cluster side calls `cluster.run.cluster_run` on
the same CSV (read in 64 MB blocks by the workers). Printed: wall time and peak resident memory of each
process (the cluster's workers each, and its driver), as ratios to the single process measured in the
same run (these machines are shared and noisy, absolute times drift), and the holdout AUC of both.

The rbm sides fit the Flow model `rbm` (the listen network: `exposure_weight` 0, so that the run stays
in minutes; the exposure network is another RBM trained the same way) on every train row, in one process
(`rbm1`, with torch's default threads, then with one thread) and on `--nproc` processes (`rbmN`:
`DistributedRBMModel`, this process is rank 0, each rank with CPUs / N threads). The other
ranks' peak memory is sampled every 0.2 s (psutil) while they run. With CD-1 the two give the same
model: their per-epoch reconstruction errors are printed side by side.
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

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # run as a script from a checkout, flowtui not installed
    sys.path.insert(0, str(_ROOT))
DEFAULT_DATA = Path("/tmp/scale")
SIDES = ("single", "cluster", "rbm1", "rbmN")


def peak_gb() -> float:
    """Peak resident memory of this process so far, in GB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def _worker_peak_gb() -> float:
    import resource as r

    return r.getrusage(r.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def _config(args: argparse.Namespace, models_dir: Path | None) -> Any:
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
        result = run(frame, _config(args, None if args.no_final else Path(tmp) / "models"))
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
                _config(args, None if args.no_final else Path(tmp) / "models"),
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


class _RankSampler:
    """Peak resident memory of this process's grandchildren (the ranks a fork server starts), sampled."""

    def __init__(self) -> None:
        import threading

        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.2):
            for child in me.children(recursive=True):
                if child.ppid() == me.pid:  # the fork server itself (or spawn's tracker): not a rank
                    continue
                try:
                    rss = child.memory_info().rss
                except psutil.Error:
                    continue
                self.peaks[child.pid] = max(self.peaks.get(child.pid, 0), rss)

    def __enter__(self) -> _RankSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def side_rbm(args: argparse.Namespace, nproc: int) -> dict[str, Any]:
    from flowtui.core import events as ev
    from flowtui.core import registry
    from flowtui.core.data.io import load_dataset

    t0 = time.perf_counter()
    frame = load_dataset(args.data / "train.csv", use_cache=False).frame
    t_load = time.perf_counter() - t0
    spec = registry.get_spec("rbm")
    overrides: dict[str, object] = {"exposure_weight": 0.0}
    for item in args.rbm_set:
        key, _, value = item.partition("=")
        overrides[key] = value
    params = spec.schema.build(spec.params(overrides, args.preset), "rbm")
    losses: list[float] = []
    epochs: list[float] = []

    def on_event(e: Any) -> None:
        if isinstance(e, ev.AfterEpoch) and e.loss is not None:
            losses.append(float(e.loss))
            epochs.append(float(e.elapsed))

    y = frame["is_listened"].to_numpy()
    t1 = time.perf_counter()
    if nproc == 1:
        from flowtui.core.flow.rbm_classifier import RBMModel

        RBMModel(params).fit(None, y, frame, on_event=on_event)
        ranks: list[float] = []
    else:
        from flowtui.core.cluster.rbm_ddp import DistributedRBMModel

        with _RankSampler() as sampler:
            DistributedRBMModel(params, nproc=nproc).fit(None, y, frame, on_event=on_event)
        ranks = sorted(v / 1e9 for v in sampler.peaks.values())
    fit = time.perf_counter() - t1
    return {
        "rows": len(frame),
        "load_s": t_load,
        "fit_s": fit,
        "first_epoch_s": epochs[0] if epochs else None,
        "epoch_s": (epochs[-1] - epochs[0]) / max(len(epochs) - 1, 1) if len(epochs) > 1 else None,
        "peak_gb": peak_gb(),
        "rank_peak_gb": ranks,
        "losses": losses,
        "n_iter": params.n_iter,
        "hidden": params.n_components,
        "batch": params.batch_size,
        "lr": params.learning_rate,
        "wd": params.weight_decay,
        "threads": torch_threads() if nproc == 1 else max(1, (os.cpu_count() or 1) // nproc),
    }


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def ensure_data(data: Path, users: int, seed: int) -> None:
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
        str(seed),
        "--out",
        str(data),
    ]
    subprocess.run(cmd, check=True)


def run_side(side: str, argv: list[str], threads: int | None = None) -> dict[str, Any]:
    """One side in a fresh process (with `threads`: OMP_NUM_THREADS, torch's thread count); its JSON
    result is the last line of its stdout."""
    env = dict(os.environ) | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    out = subprocess.run(
        [sys.executable, __file__, "--side", side, *argv],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
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
    ap.add_argument("--seed", type=int, default=1, help="seed of the synthetic data when generated")
    ap.add_argument("--nproc", type=int, default=2, help="processes of the rbmN side")
    ap.add_argument("--no-final", action="store_true", help="holdout leaderboard only (no final fit)")
    ap.add_argument(
        "--rbm-set", action="append", default=[], help="KEY=VALUE of the rbm sides' parameters (repeat)"
    )
    ap.add_argument("--sides", default=",".join(SIDES), help="which sides to run, comma-separated")
    ap.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.side == "single":
        print(json.dumps(side_single(args)))
        return 0
    if args.side == "cluster":
        print(json.dumps(side_cluster(args)))
        return 0
    if args.side in ("rbm1", "rbmN"):
        print(json.dumps(side_rbm(args, 1 if args.side == "rbm1" else args.nproc)))
        return 0
    sides = [x for x in args.sides.split(",") if x]
    if not set(sides) <= set(SIDES):
        ap.error(f"--sides: choose from {', '.join(SIDES)}")

    ensure_data(args.data, args.users, args.seed)
    size = (args.data / "train.csv").stat().st_size
    passthrough = [
        *("--data", str(args.data), "--cluster", args.cluster, "--preset", args.preset),
        *("--rounds", str(args.rounds), "--nproc", str(args.nproc)),
        *(["--all-rows"] if args.all_rows else []),
        *(["--no-final"] if args.no_final else []),
        *(x for item in args.rbm_set for x in ("--rbm-set", item)),
    ]
    print(
        f"{args.data / 'train.csv'} ({size / 1e6:.0f} MB), {os.cpu_count()} CPUs, cluster {args.cluster}, "
        f"preset {args.preset}, {args.rounds} round(s){', all rows' if args.all_rows else ''}"
        f"{', no final fit' if args.no_final else ''}, nproc {args.nproc}",
        flush=True,
    )
    if "single" in sides and "cluster" in sides:
        lightgbm_sides(args, passthrough)
    if "rbm1" in sides and "rbmN" in sides:
        rbm_sides(args, passthrough)
    return 0


def lightgbm_sides(args: argparse.Namespace, passthrough: list[str]) -> None:
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
    print(f"  single notes: {single['notes']}\n  cluster notes: {cluster['notes']}", flush=True)


def rbm_sides(args: argparse.Namespace, passthrough: list[str]) -> None:
    one = run_side("rbm1", passthrough)
    one_t1 = run_side("rbm1", passthrough, threads=1)
    many = run_side("rbmN", passthrough)
    print(
        f"  rbm, {one['hidden']} hidden, batch {one['batch']}, lr {one['lr']}, weight decay {one['wd']}, "
        f"{one['n_iter']} epochs of CD-1 on {one['rows']:,} rows "
        f"(listen network; load {one['load_s']:.0f} s not counted)",
        flush=True,
    )
    sides = (("1 process", one), ("1 process", one_t1), (f"{args.nproc} processes", many))
    for label, side in sides:
        ranks = ", ".join(f"{g:.2f}" for g in side["rank_peak_gb"])
        print(
            f"  {label:12} {side['threads']} torch thread(s) a process: fit {side['fit_s']:6.1f} s, epoch "
            f"{side['epoch_s'] or 0:5.1f} s, peak rank 0 {side['peak_gb']:.2f} GB"
            f"{', other ranks ' + ranks + ' GB' if ranks else ''}"
        )
    worst_other = max(many["rank_peak_gb"], default=0.0)
    for label, ref in (("default threads", one), ("1 thread", one_t1)):
        print(
            f"  ratios to 1 process ({label}): fit time {many['fit_s'] / ref['fit_s']:.2f}, epoch time "
            f"{(many['epoch_s'] or 0) / max(ref['epoch_s'] or 1e-9, 1e-9):.2f}, "
            f"rank 0 peak {many['peak_gb'] / ref['peak_gb']:.2f}, other rank peak {worst_other / ref['peak_gb']:.2f}"
        )
    diffs = [abs(a - b) for a, b in zip(one["losses"], many["losses"], strict=False)]
    print(
        "  reconstruction error per epoch, 1 vs N processes: "
        + "; ".join(f"{a:.6f} / {b:.6f}" for a, b in zip(one["losses"], many["losses"], strict=False))
        + f"   (max difference {max(diffs, default=0.0):.1e})",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())

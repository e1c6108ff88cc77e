"""The whole recommender comparison, as README-ready Markdown tables (every figure measured in this run).

    python bench/rec_tables.py [--users 3000] [--synth-seeds 1,2,3,4,5] [--ml PATH] [-m rbm -m ease ...]
        [--work DIR] [--json-out FILE]

Three comparisons, every registered recommender (or `-m`) with its DEFAULT parameters, NDCG@10 etc. on
held-out entries (random 20% of each user's entries; `flowtui.core.recs.evaluation.leaderboard`):
1. synthetic: `flowtui data synth --users N --seed S` for each S of `--synth-seeds` (data sets the
   defaults were NOT tuned on: the tuning used seed 0), one split each (split seed 0); mean ± sample
   std over the data sets;
2. MovieLens 100K as implicit feedback (every rating = a play), imported with `flowtui data import`;
3. MovieLens 100K as listen/skip (rating >= 4 -> listened 1, else skipped 0).
The MovieLens tables are over split seeds 0, 1, 2 (mean ± sample std). "vs best" is the paired
difference of NDCG@10 to the best model on the same splits (mean ± std): a gap under about two std is
noise. The defaults were chosen by `bench/rec_tune.py` on validation entries carved from training
entries only (see docs/RECS.md). Needs about 20-40 minutes on 2 cores, most of it the synthetic EASE
and RBM fits.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from flowtui.core import registry
from flowtui.core.data import io
from flowtui.core.recs.evaluation import METRICS, leaderboard

ML = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k" / "ratings.tsv"
COLS = [
    ("P@10", "precision_at_k", 3),
    ("R@10", "recall_at_k", 3),
    ("NDCG@10", "ndcg_at_k", 3),
    ("vs best", "ndcg_at_k_vs_best", 3),
    ("AUC", "auc", 3),
    ("MAE", "mae", 3),
    ("coverage", "coverage", 3),
    ("fit s", "fit_seconds", 1),
]


def flowtui(*args: str) -> None:
    """Run a flowtui command (the documented way to make the data sets); stop on failure."""
    res = subprocess.run([sys.executable, "-m", "flowtui", *args], capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"flowtui {' '.join(args)} failed: {res.stderr.strip() or res.stdout.strip()}")


def cell(mean: float | None, std: float | None, digits: int) -> str:
    if mean is None:
        return "–"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def aggregate(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows (mean, sample std over the runs, paired difference to the best) from per-run metric dicts."""
    rows = []
    for name, rs in runs.items():
        row: dict[str, Any] = {"model": name}
        for key in METRICS:
            vals = [r[key] for r in rs if r[key] is not None]
            row[key] = float(np.mean(vals)) if vals else None
            row[f"{key}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
        row["runs"] = rs
        rows.append(row)
    rows.sort(key=lambda r: -(r["ndcg_at_k"] or -1.0))
    best = [r["ndcg_at_k"] for r in rows[0]["runs"]]
    for row in rows:
        d = [a["ndcg_at_k"] - b for a, b in zip(row["runs"], best, strict=True)]
        row["ndcg_at_k_vs_best"] = float(np.mean(d))
        row["ndcg_at_k_vs_best_std"] = float(np.std(d, ddof=1)) if len(d) > 1 else None
    return rows


def table(title: str, setup: str, rows: list[dict[str, Any]]) -> str:
    labels = any(r["auc"] is not None for r in rows)
    cols = [c for c in COLS if labels or c[1] not in ("auc", "mae")]
    out = [f"**{title}** ({setup})", "", "| model | " + " | ".join(c[0] for c in cols) + " |"]
    out.append("|---|" + "---:|" * len(cols))
    for i, r in enumerate(rows):
        cells = []
        for _, key, digits in cols:
            if key == "ndcg_at_k_vs_best" and i == 0:
                cells.append("best")
            else:
                std = r.get(f"{key}_std") if key != "fit_seconds" else None
                cells.append(cell(r[key], std, digits))
        out.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def runs_of(board_rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {r["model"]: r["per_seed"] for r in board_rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--synth-seeds", default="1,2,3,4,5")
    ap.add_argument("--ml", type=Path, default=ML, help="MovieLens 100K ratings.tsv")
    ap.add_argument("-m", "--model", action="append", help="recommenders (default: every registered one)")
    ap.add_argument("--work", type=Path, help="folder for the generated data (default: a temporary one)")
    ap.add_argument("--json-out", type=Path, help="also write every measured figure as JSON")
    ap.add_argument("--skip-synth", action="store_true")
    args = ap.parse_args()
    models = args.model or registry.recommender_names()
    work = args.work or Path(tempfile.mkdtemp(prefix="rec_tables_"))
    work.mkdir(parents=True, exist_ok=True)
    tables: list[str] = []
    doc: dict[str, Any] = {"models": models}

    if not args.skip_synth:
        per: dict[str, list[dict[str, Any]]] = {}
        sizes = []
        seeds = [int(x) for x in args.synth_seeds.split(",")]
        for s in seeds:
            folder = work / f"synth{s}"
            if not (folder / "train.csv").exists():
                flowtui("data", "synth", "--users", str(args.users), "--seed", str(s), "--out", str(folder))
            frame = io.load_dataset(folder / "train.csv", kind="train").frame
            board = leaderboard(frame, models, seeds=1, seed=0)
            sizes.append(board.setup)
            for name, rs in runs_of(board.rows).items():
                per.setdefault(name, []).extend(rs)
            print(f"# synthetic seed {s}: done", file=sys.stderr, flush=True)
        rows = aggregate(per)
        st = sizes[0]
        setup = (
            f"`flowtui data synth --users {args.users} --seed S`, S = {args.synth_seeds}: "
            f"about {st['n_users']:,} users x {st['n_items']:,} tracks, {st['n_entries']:,} entries (S = "
            f"{seeds[0]}), listen/skip; one random 20% split each; mean ± std over the {len(sizes)} data sets"
        )
        tables.append(table("Synthetic DSG17-like data", setup, rows))
        doc["synthetic"] = {"setups": sizes, "rows": rows}

    if args.ml.exists():
        for name, extra, label in (
            ("implicit", ["--weight", "rating", "--threshold", "1"], "implicit feedback (rated = played)"),
            ("listen_skip", ["--weight", "rating", "--threshold", "4"], "listen/skip (rating >= 4 = 1)"),
        ):
            path = work / f"ml100k_{name}.csv"
            if not path.exists():
                flowtui("data", "import", str(args.ml), "--user", "user_id", "--item", "item_id", "--time",
                        "timestamp", "--sep", "\t", *extra, "--out", str(path))  # fmt: skip
            frame = io.load_dataset(path, kind="train").frame
            board = leaderboard(frame, models, seeds=3, seed=0)
            rows = aggregate(runs_of(board.rows))
            st = board.setup
            setup = (
                f"{st['n_users']:,} users x {st['n_items']:,} movies, {st['n_entries']:,} entries; "
                "random 20% split, seeds 0, 1, 2; mean ± std over the seeds"
            )
            tables.append(table(f"MovieLens 100K, {label}", setup, rows))
            doc[f"ml100k_{name}"] = {"setup": st, "rows": rows, "skipped": board.skipped}
            print(f"# MovieLens {name}: done", file=sys.stderr, flush=True)
    else:
        print(f"# {args.ml} not found: MovieLens tables skipped", file=sys.stderr)

    print("\n\n".join(tables))
    if args.json_out:
        args.json_out.write_text(json.dumps(doc, indent=2, default=float))


if __name__ == "__main__":
    main()

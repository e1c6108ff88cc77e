"""The recommendation leaderboard as the Recommenders screen shows it: its columns, the cells (mean ± std
over the seeds, as `flowtui evaluate-recs` prints them) and the line saying how it was measured."""

from __future__ import annotations

from typing import Any

#: The leaderboard's cut-off and number of held-out splits (seeds 0..SEEDS-1), as `flowtui evaluate-recs`.
K = 10
SEEDS = 3
#: (label, width, metric key, digits, with std) of the leaderboard table; the highlighted row's every
#: figure with its std is spelt out below the table.
BOARD_COLUMNS = [
    ("model", 10, "model", 0, False),
    (f"P@{K}", 4, "precision_at_k", 3, False),
    (f"R@{K}", 4, "recall_at_k", 3, False),
    (f"NDCG@{K}", 9, "ndcg_at_k", 3, True),
    ("vs best", 10, "ndcg_at_k_vs_best", 3, True),
    ("AUC", 9, "auc", 3, True),
    ("MAE", 4, "mae", 3, False),
    ("cov", 4, "coverage", 3, False),
    ("fit s", 5, "fit_seconds", 1, False),
]
DETAIL = [
    (f"P@{K}", "precision_at_k", 3),
    (f"R@{K}", "recall_at_k", 3),
    (f"NDCG@{K}", "ndcg_at_k", 3),
    ("AUC", "auc", 3),
    ("MAE", "mae", 3),
    ("coverage", "coverage", 3),
    ("fit s", "fit_seconds", 2),
]


def num(x: float, digits: int) -> str:
    """A compact number as the CLI prints it: 0.1322 -> ".132", 12.34 -> "12.3" for digits=1."""
    text = f"{x:.{digits}f}"
    if text.lstrip("-").strip("0.") == "":
        text = text.lstrip("-")  # a value that rounds to zero has no sign: ".000", not "-.000"
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


def cell(row: dict[str, Any], key: str, digits: int, std: bool) -> str:
    """A leaderboard cell: the mean over the seeds, with ±std when `std`; "-" when not measured."""
    mean, sd = row.get(key), row.get(f"{key}_std")
    if mean is None:
        return "-"
    if not std or sd is None:
        return num(mean, digits)
    spread = num(sd, digits)
    if spread.strip("0.") == "":  # a spread that rounds to zero says how small it is, not "±.000"
        spread = "<" + num(10.0**-digits, digits)
    return f"{num(mean, digits)}±{spread}"


def board_setup(setup: dict[str, Any]) -> str:
    """One line on how a leaderboard was measured."""
    kind = "plays only" if setup.get("implicit") else "listen/skip labels"
    split = "validation split of train" if setup.get("validation") else "held-out split"
    seeds = setup.get("seeds") or [0]
    return (
        f"{setup.get('n_users', 0):,} users × {setup.get('n_items', 0):,} items, {kind} · "
        f"{setup.get('holdout', 'random')} {setup.get('fraction', 0.2):.0%} {split}, "
        f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}, {setup.get('preset', '?')} preset, mean±std · "
        "vs best: paired NDCG gap (< 2 std: noise)"
    )

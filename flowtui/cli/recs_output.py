"""What the recommender commands print: the top-N lists (a table, JSON, or the CSV of every user), the
leaderboard in 80 columns and the table of saved recommenders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich import box
from rich.table import Table

from flowtui.cli.common import console, fail, fail_data, print_json
from flowtui.core import safe_files
from flowtui.core.errors import DataError
from flowtui.core.workflows.recs import Recommendations, TrainResult


def print_list(result: Recommendations, who: str, as_json: bool) -> None:
    table = result.table
    if as_json:
        print_json(table.to_dict(orient="records"))
        return
    if table.empty:
        console.print("no track left to recommend (all heard, or filtered out)")
        return
    t = Table(title=f"top {len(table)} for {who} ({result.model})")
    for col in ("media_id", "score", "artist_id", "genre_id", "reason"):
        t.add_column(col, justify="left" if col == "reason" else "right")
    for r in table.itertuples(index=False):
        t.add_row(str(r.media_id), f"{r.score:.4g}", str(r.artist_id), str(r.genre_id), str(r.reason))
    console.print(t)


def print_all(table: pd.DataFrame, out: Path | None, as_json: bool, warning: str | None = None) -> None:
    if out is not None:
        try:
            safe_files.write_csv(table, out, make_parents=True)
        except DataError as err:
            fail_data(err)
        except OSError as exc:
            fail(f"{out}: cannot write ({exc.strerror or exc})")
        users = int(table["user_id"].nunique())
        if as_json:
            doc: dict[str, Any] = {"out": str(out), "rows": len(table), "users": users}
            if warning:
                doc["data_warning"] = warning
            print_json(doc)
        else:
            console.print(f"wrote {len(table):,} recommendations for {users:,} users to {out}")
    elif as_json:
        print_json(table.to_dict(orient="records"))
    else:
        typer.echo(table.to_csv(index=False), nl=False)


def _num(x: float, digits: int) -> str:
    """A compact number: 0.1322 -> ".132" (no leading zero), 12.34 -> "12.3" for digits=1."""
    text = f"{x:.{digits}f}"
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


def _cell(row: dict[str, Any], key: str, digits: int = 3, std: bool = True) -> str:
    mean, sd = row.get(key), row.get(f"{key}_std")
    if mean is None:
        return "-"
    return _num(mean, digits) + (f"±{_num(sd, digits)}" if std and sd is not None else "")


def print_board(doc: dict[str, Any], k: int) -> None:
    """The leaderboard in 80 columns: NDCG, AUC, MAE as mean±std over the seeds, P/R/coverage/fit means
    (their std is in --json), and the paired NDCG difference to the best model."""
    s = doc["setup"]
    kind = "implicit plays" if s["implicit"] else "listen/skip labels"
    split = "validation split of TRAIN" if s["validation"] else "test split"
    rows = doc["leaderboard"]
    labels = not s["implicit"]
    t = Table(
        title=f"{s['n_users']:,} users x {s['n_items']:,} items, {kind}",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
    )
    cols = [
        (f"P@{k}", "precision_at_k", 3, False),
        (f"R@{k}", "recall_at_k", 3, False),
        (f"NDCG@{k}", "ndcg_at_k", 3, True),
        ("vs best", "ndcg_at_k_vs_best", 3, True),
        *((("AUC", "auc", 3, True), ("MAE", "mae", 3, True)) if labels else ()),
        ("cov", "coverage", 3, False),
        ("fit s", "fit_seconds", 1, False),
    ]
    t.add_column("model", no_wrap=True)
    for label, *_ in cols:
        t.add_column(label, justify="right", no_wrap=True)
    for i, r in enumerate(rows):
        cells = [_cell(r, key, d, sd) for _, key, d, sd in cols]
        if i == 0:
            cells[3] = "best"
        t.add_row(r["model"], *cells)
    console.print(t, width=max(console.width, 80))
    n_seeds = len(s["seeds"])
    data = s.get("data") or {}
    console.print(
        f"{s['holdout']} {s['fraction']:.0%} {split}, seeds {s['seeds'][0]}..{s['seeds'][-1]}: mean±std "
        f"over {n_seeds} seed{'s' if n_seeds > 1 else ''}; 'vs best': NDCG gap to the best on the same "
        f"splits (a gap under 2 std is noise). Data: {data.get('source') or '?'} "
        f"(fingerprint {data.get('fingerprint') or '?'})",
        highlight=False,
        soft_wrap=False,
    )
    for name, why in doc["skipped"].items():
        console.print(f"[dim]{name}: left out ({why})[/]", highlight=False)


def print_saved(result: TrainResult, out: Path, as_json: bool) -> None:
    saved = [t.to_dict() for t in result.saved]
    if as_json:
        print_json(saved)
        return
    t = Table(title=f"recommenders saved to {out}")
    for col in ("model", "folder", "items", "users", "data", "fit s", "notes"):
        t.add_column(col, justify="right" if col in ("items", "users", "fit s") else "left")
    for r in saved:
        t.add_row(
            r["model"],
            r["path"],
            f"{r['n_items']:,}",
            f"{r['n_users']:,}",
            "plays" if r["implicit"] else "labels",
            f"{r['fit_seconds']:.1f}",
            "; ".join(r["notes"]),
        )
    console.print(t)

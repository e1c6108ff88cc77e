"""The recommenders' leaderboard on the same held-out splits, naming the data it was computed on; kept
beside the models by `board_file`."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping, Sequence

import pandas as pd

from flowtui.core import events as ev
from flowtui.core.modelfiles import fingerprint as fingerprint_of
from flowtui.core.recs import evaluation
from flowtui.core.recs.evaluation import Holdout, Leaderboard
from flowtui.core.recs.interactions import MAX_ITEMS


# -- evaluate ----------------------------------------------------------------------------------------
def evaluate(
    frame: pd.DataFrame,
    names: Sequence[str],
    *,
    k: int = 10,
    seeds: int = 3,
    seed: int = 0,
    fraction: float = 0.2,
    how: Holdout = "random",
    preset: str = "full",
    params: Mapping[str, Mapping[str, object]] | None = None,
    validation: bool = False,
    implicit: bool | None = None,
    max_items: int = MAX_ITEMS,
    source: str | None = None,
    fingerprint: str | None = None,
    stamp: bool = False,
    on_event: ev.EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> Leaderboard:
    """The leaderboard of `names` on the same held-out splits (`evaluation.leaderboard`), its setup naming
    the data (`source`, rows, fingerprint) and, with `stamp`, when it was computed. Keep it beside the
    models with `save_leaderboard`; `load_leaderboard` reads it back for the same data."""
    board = evaluation.leaderboard(
        frame,
        list(names),
        k=k,
        seeds=seeds,
        seed=seed,
        fraction=fraction,
        how=how,
        preset=preset,
        params=params,
        validation=validation,
        implicit=implicit,
        max_items=max_items,
        on_event=on_event,
        cancel=cancel,
    )
    board.setup["data"] = {
        "source": source,
        "rows": len(frame),
        "fingerprint": fingerprint or fingerprint_of(frame),
    }
    if stamp:
        board.setup["computed"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return board

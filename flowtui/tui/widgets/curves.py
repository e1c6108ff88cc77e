"""The training screen's chart of per-epoch curves: one kind at a time (validation AUC, else loss), its title
naming the models drawn and those left to `v`, whole epochs on the x axis."""

from __future__ import annotations

import math
from typing import Any


def epoch_ticks(last: float, most: int = 5) -> list[int]:
    """Whole epochs from 1 to `last`, at most `most` of them, evenly stepped."""
    top = max(math.ceil(last), 1)
    step = max(1, math.ceil(top / most))
    return list(range(1, top + 1, step))


def chart_title(kind: str, drawn: list[str], hidden: list[str], width: int) -> str:
    """ "val. AUC: lightgbm · v: rbm loss", shortened to `width` (plotext drops a wider title)."""
    label = "val. AUC" if kind == "auc" else "loss"
    title = f"{label}: {', '.join(drawn) or 'none yet'}"
    if hidden:
        other = "loss" if kind == "auc" else "AUC"
        title += f" · v: {', '.join(hidden)} {other}"
    return title if len(title) <= width else title[: max(width - 1, 1)] + "…"


def draw_curves(
    plt: Any,
    curves: dict[str, tuple[list[float], list[float]]],
    kinds: dict[str, str],
    width: int,
) -> None:
    """Plot `curves` (key "model phase" -> epochs, values) on plotext's `plt`: the AUC curves when there are
    any (AUC and loss live on different scales), else the losses; the title says which models are drawn."""
    plt.clear_data()
    plt.clear_figure()
    kind = "auc" if "auc" in (kinds.get(key) for key in curves) else "loss"
    drawn = [key for key, (xs, _) in curves.items() if xs and kinds.get(key) == kind]

    def model(key: str) -> str:
        return key.rsplit(" ", 1)[0]

    names = list(dict.fromkeys(model(key) for key in drawn))
    hidden = list(dict.fromkeys(model(k) for k in curves if model(k) not in names))
    plt.title(chart_title(kind, names, hidden, width))
    plt.xlabel("epoch")
    last = 1.0
    for key in drawn:
        xs, ys = curves[key]
        plt.plot(xs, ys, label=key)
        last = max(last, max(xs))
    ticks = epoch_ticks(last)
    plt.xticks(ticks, [str(t) for t in ticks])

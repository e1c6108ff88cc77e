"""The non-personal baselines: `popularity` (most played items) and `item_mean` (best listen rate).

Both give every user the same item scores: `popularity` the number of training plays of each item (a skip
counting `skip_weight`), `item_mean` the item's listen rate smoothed towards the overall rate (a
probability, so it also reports MAE; it needs listen/skip labels). They are the floor every personal
recommender must beat, and what a new user with no stated taste is shown.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flowtui.core import events as ev
from flowtui.core.params import param
from flowtui.core.recs import state_checks
from flowtui.core.recs.interactions import InteractionMatrix
from flowtui.core.recs.recommender import PlayedParams, RecommenderBase
from flowtui.core.registry import RecommenderSpec, register


@dataclass(frozen=True)
class PopularityParams(PlayedParams):
    """Popularity counts plays; whether a skip counts is `skip_weight` (validated default: 1)."""


@dataclass(frozen=True)
class ItemMeanParams:
    smoothing: float = param(
        5.0, "pseudo-entries at the overall listen rate added to each item", low=0.0, high=1e6
    )


class Popularity(RecommenderBase):
    """Items ranked by their number of training plays, the same for every user."""

    name = "popularity"
    params_cls = PopularityParams
    params: PopularityParams
    plain_reason = "popular with all listeners"
    counts_: np.ndarray

    def _fit(
        self, matrix: InteractionMatrix, on_event: ev.EventCallback | None, cancel: threading.Event | None
    ) -> None:
        played = matrix.played(self.params.skip_weight)
        self.counts_ = np.bincount(played.indices, weights=played.data, minlength=matrix.shape[1]).astype(
            np.float32
        )

    def _score(self, history: InteractionMatrix, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts_, (len(rows), len(self.counts_)))

    def _state(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts_}

    def _restore(self, arrays: dict[str, np.ndarray], folder: Path) -> None:
        self.counts_ = state_checks.item_vector(arrays, "counts")


class ItemMean(RecommenderBase):
    """Items ranked by their smoothed listen rate, the same for every user; P(listened | played)."""

    name = "item_mean"
    params_cls = ItemMeanParams
    params: ItemMeanParams
    has_listen_proba = True
    needs_labels = True
    plain_reason = "most listened to (not skipped) by all listeners"
    rate_: np.ndarray

    def _fit(
        self, matrix: InteractionMatrix, on_event: ev.EventCallback | None, cancel: threading.Event | None
    ) -> None:
        n, s = matrix.item_stats()
        overall = float(matrix.labels.data.mean())
        m = self.params.smoothing
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(n + m > 0, (s + m * overall) / (n + m), overall)
        self.rate_ = rate.astype(np.float32)

    def _score(self, history: InteractionMatrix, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.rate_, (len(rows), len(self.rate_)))

    def listen_proba(
        self, history: InteractionMatrix, rows: Sequence[int] | np.ndarray | None = None
    ) -> np.ndarray | None:
        return self.score(history, rows)

    def _state(self) -> dict[str, np.ndarray]:
        return {"rate": self.rate_}

    def _restore(self, arrays: dict[str, np.ndarray], folder: Path) -> None:
        self.rate_ = state_checks.item_vector(arrays, "rate")


register(
    RecommenderSpec(
        name="popularity",
        description="most played items, the same for everyone (baseline)",
        params_cls=PopularityParams,
        factory=Popularity,
        loader=Popularity.load,
    )
)
register(
    RecommenderSpec(
        name="item_mean",
        description="items with the best smoothed listen rate, the same for everyone (baseline; labels only)",
        params_cls=ItemMeanParams,
        factory=ItemMean,
        loader=ItemMean.load,
    )
)

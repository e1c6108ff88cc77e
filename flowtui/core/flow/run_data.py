"""Where a run's rows live, as the run's loops see them: one loop for one machine and for a cluster.

`evaluate.holdout_leaderboard` and `core/run.run` drive the stages (holdout rounds, each model's fit and
score, the final fits) and never touch rows themselves: they ask a `RunData`. `evaluate.FrameData` holds
a pandas frame on this machine; the cluster's `ClusterData` (core/cluster/data.py) holds partitions of
whole users on a Dask cluster, builds the features there and trains LightGBM there. The models' fits
are mapped over the run's `Executor` (core/executor.py).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from flowtui.core.events import EventCallback
from flowtui.core.flow.features import FeatureSettings
from flowtui.core.flow.store import TrainedModel
from flowtui.core.registry import FlowModel

__all__ = ["FinalRows", "HoldoutRound", "RunData"]


class HoldoutRound(Protocol):
    """One holdout round with its features built: the training rows of its history and its targets."""

    @property
    def labels(self) -> np.ndarray:
        """The targets' true labels (int8), in the order of `score`'s probabilities."""
        ...

    @property
    def selected(self) -> list[str] | None:
        """The features `top_k` kept for this round (None: every feature)."""
        ...

    def fit(
        self,
        name: str,
        params: Mapping[str, object] | None,
        *,
        on_event: EventCallback | None,
        cancel: threading.Event | None,
    ) -> FlowModel:
        """Model `name` built with `params` and fitted on the round's training rows."""
        ...

    def score(self, name: str, model: FlowModel) -> np.ndarray:
        """`model`'s probabilities of the round's targets (float64, one per target)."""
        ...


class FinalRows(Protocol):
    """Every training row of a run with its features: what the final fits train on."""

    def fit_final(
        self,
        name: str,
        params: Mapping[str, object],
        *,
        holdout: Mapping[str, Any] | None,
        on_event: EventCallback | None,
        cancel: threading.Event | None,
        own_cancel: threading.Event | None,
    ) -> TrainedModel:
        """`name` fitted on every training row, ready to save (`own_cancel`: its own flag, see `fit_final`)."""
        ...


class RunData(Protocol):
    """The rows of a run, wherever they live."""

    @property
    def source(self) -> str | None:
        """Where the rows come from, for messages (None when unknown)."""
        ...

    def holdout_rounds(self, rounds: int, contexts: Sequence[int] | None) -> int:
        """How many of the first `rounds` holdout rounds have a target (see `split.holdout`)."""
        ...

    def holdout_round(
        self,
        r: int,
        contexts: Sequence[int] | None,
        settings: FeatureSettings,
        *,
        on_event: EventCallback | None,
        cancel: threading.Event | None,
    ) -> HoldoutRound:
        """Round `r` (below `holdout_rounds`) with its features built as `settings` say."""
        ...

    def final_rows(
        self, settings: FeatureSettings, *, on_event: EventCallback | None, cancel: threading.Event | None
    ) -> FinalRows:
        """Every training row with its features built as `settings` say."""
        ...

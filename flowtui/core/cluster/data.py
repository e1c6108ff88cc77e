"""A run's rows on a Dask cluster: the `RunData` (flow/run_data.py) that `cluster_run` hands to `core.run.run`.

The rows are shuffled once by user (`features.by_user`) and kept in the workers' memory for every round
and the final fit. Each round's features are built there (`features.fold_frame`, equal to one machine's),
LightGBM trains there (`boost.fit_lightgbm`), and only what the run's loop needs comes back to the
caller: the targets' labels and probabilities (one row per user and round) and the fitted model.

Besides LightGBM only the baselines train here (`constant`, `user_flow_rate`): their fit reads the
training labels' mean (and a feature column), computed on the cluster; `check_cluster_config` refuses
every other model before any work.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from flowtui.core import events as ev
from flowtui.core import registry
from flowtui.core.cluster import features as cf
from flowtui.core.cluster.boost import fit_lightgbm, predict_frame
from flowtui.core.cluster.executor import compute, persist
from flowtui.core.cluster.lazy import DaskClient, DaskFrame
from flowtui.core.cluster.source import ROW, fingerprint, read_train, with_row_ids
from flowtui.core.data.schema import LABEL
from flowtui.core.errors import ParamError
from flowtui.core.events import EventCallback
from flowtui.core.flow.classifiers.baselines import USER_FLOW_RATE
from flowtui.core.flow.features import FEATURE_NAMES, FeatureSettings
from flowtui.core.flow.store import TrainedModel, library_versions
from flowtui.core.registry import FlowModel

__all__ = ["ClusterData", "Source"]

#: Where a cluster run's train rows are: a folder of parts, one file, or a Dask DataFrame.
Source = str | Path | DaskFrame


def _baseline(name: str, params: Mapping[str, object] | None, mean_y: float) -> FlowModel:
    """A fitted baseline. Its fit reads only the training labels' mean (and, for user_flow_rate, its feature
    column); that mean is computed on the cluster, so the fitted state is set here, as `fit` would."""
    model: Any = registry.get_spec(name).build(params)
    if name == "constant":
        model.rate_ = mean_y
        model.features_ = list(FEATURE_NAMES)
    elif name == "user_flow_rate":
        model.fallback_ = mean_y
        model.features_ = [USER_FLOW_RATE]
    else:  # pragma: no cover - check_cluster_config refuses other models
        raise ParamError(f"{name} does not train on a cluster")
    return cast(FlowModel, model)


def _training_part(part: pd.DataFrame, flow_only: bool) -> pd.DataFrame:
    """The training rows of a partition, as `features.training_matrix` keeps them (labelled history rows;
    with `flow_only`, Flow rows only)."""
    keep = (part[cf.ROLE].to_numpy() == 0) & part[LABEL].notna().to_numpy()
    if flow_only:
        keep &= part["listen_type"].to_numpy() == 1
    return cast(pd.DataFrame, part.loc[keep])


class _Training:
    """Training rows with their features, held on the cluster, and the fits on them."""

    def __init__(
        self, client: DaskClient, train: DaskFrame, cancel: threading.Event | None, cancel_name: str | None
    ) -> None:
        self.client = client
        self.train = train
        self.cancel = cancel
        self.cancel_name = cancel_name
        self._mean: float | None = None

    def mean_label(self) -> float:
        """The training labels' mean (computed once, when a baseline first needs it)."""
        if self._mean is None:
            total, n = compute(self.client, (self.train[LABEL].sum(), self.train.shape[0]), self.cancel)
            self._mean = float(total) / max(int(n), 1)
        return self._mean

    def fit(
        self,
        name: str,
        params: Mapping[str, object] | None,
        *,
        on_event: EventCallback | None,
        cancel: threading.Event | None,
    ) -> FlowModel:
        """LightGBM trained on the workers, or a baseline from the mean label."""
        if name == "lightgbm":
            return fit_lightgbm(
                self.client,
                self.train,
                params,
                FEATURE_NAMES,
                on_event=on_event,
                cancel=cancel,
                cancel_name=self.cancel_name,
            )
        return _baseline(name, params, self.mean_label())


class _Round(_Training):
    """One holdout round on the cluster (a `HoldoutRound`): its training rows and targets stay there; the
    targets' `_row`, truth and user_flow_rate column are gathered here, in `_row` order."""

    selected: list[str] | None = None

    def __init__(self, training: _Training, targets: DaskFrame, gathered: pd.DataFrame) -> None:
        super().__init__(training.client, training.train, training.cancel, training.cancel_name)
        self.targets = targets
        self.gathered = gathered

    @property
    def labels(self) -> np.ndarray:
        return self.gathered[cf.TRUTH].to_numpy().astype(np.int8)

    def score(self, name: str, model: FlowModel) -> np.ndarray:
        """The model's probabilities of the targets, in `_row` order (LightGBM predicts on the workers)."""
        if name == "lightgbm":
            scored = predict_frame(self.client, self.targets, cast(Any, model), self.cancel)
            if not np.array_equal(scored[ROW].to_numpy(), self.gathered[ROW].to_numpy()):
                raise RuntimeError("the scored targets are not the gathered ones")
            return scored["p"].to_numpy(np.float64)
        return np.asarray(model.predict_proba(self.gathered, self.gathered), dtype=np.float64)


class _AllRows(_Training):
    """Every training row on the cluster (a `FinalRows`), with the data's fingerprint."""

    def __init__(self, training: _Training, settings: FeatureSettings, fp: str) -> None:
        super().__init__(training.client, training.train, training.cancel, training.cancel_name)
        self.settings = settings
        self.fingerprint = fp

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
        """`name` fitted on every training row on the cluster, as a single-machine model ready to save."""
        try:
            model = self.fit(
                name,
                params,
                on_event=on_event,
                cancel=ev.model_cancel(cancel, {name: own_cancel} if own_cancel else None, name),
            )
        except ev.Cancelled as exc:
            ev.reraise_for_model(exc, cancel)
        return TrainedModel(
            name=name,
            model=model,
            features=list(FEATURE_NAMES),
            params=dict(registry.get_spec(name).params(params)),
            smoothing=self.settings.smoothing,
            flow_only=self.settings.flow_only,
            holdout=dict(holdout or {}),
            fingerprint=self.fingerprint,
            notes=list(model.notes),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            libraries=library_versions(),
        )


class ClusterData:
    """A run's rows on a Dask cluster, as partitions of whole users held in the workers' memory.

    `cancel`: the run's flag (every wait on the cluster watches it); `cancel_name`: the run's
    `CancelBridge` event, which stops LightGBM's rounds on the workers."""

    def __init__(
        self,
        client: DaskClient,
        users: DaskFrame,
        *,
        cancel: threading.Event | None = None,
        cancel_name: str | None = None,
        source: str | None = None,
    ) -> None:
        self.client = client
        self.users = users
        self.cancel = cancel
        self.cancel_name = cancel_name
        self._source = source

    @classmethod
    def load(
        cls,
        client: DaskClient,
        source: Source,
        *,
        n_workers: int,
        npartitions: int | None = None,
        cancel: threading.Event | None = None,
        cancel_name: str | None = None,
    ) -> ClusterData:
        """The rows of `source` (read by the workers) shuffled by user into `npartitions` partitions
        (default: the source's partitions, at least two per worker) and kept on the cluster."""
        if isinstance(source, str | Path):
            rows, name = read_train(source), str(source)
        else:
            rows, name = (source if ROW in source.columns else with_row_ids(source)), None
        parts = npartitions or max(rows.npartitions, 2 * n_workers)
        users = persist(client, cf.by_user(rows, parts), cancel)
        return cls(client, users, cancel=cancel, cancel_name=cancel_name, source=name)

    @property
    def source(self) -> str | None:
        return self._source

    def holdout_rounds(self, rounds: int, contexts: Sequence[int] | None) -> int:
        return int(compute(self.client, cf.count_rounds(self.users, rounds, contexts), self.cancel))

    def _training(self, frame: DaskFrame, flow_only: bool) -> _Training:
        train = frame.map_partitions(_training_part, flow_only, meta=frame._meta)
        return _Training(self.client, train, self.cancel, self.cancel_name)

    def holdout_round(
        self,
        r: int,
        contexts: Sequence[int] | None,
        settings: FeatureSettings,
        *,
        on_event: EventCallback | None,
        cancel: threading.Event | None,
    ) -> _Round:
        fold = cf.fold_frame(self.users, r, smoothing=settings.smoothing, contexts=contexts)
        frame = persist(self.client, fold, cancel)
        targets = frame[frame[cf.ROLE] == 1]
        gathered = compute(self.client, targets[[ROW, cf.TRUTH, USER_FLOW_RATE]], cancel)
        gathered = gathered.sort_values(ROW, kind="stable").reset_index(drop=True)
        return _Round(self._training(frame, settings.flow_only), targets, gathered)

    def final_rows(
        self, settings: FeatureSettings, *, on_event: EventCallback | None, cancel: threading.Event | None
    ) -> _AllRows:
        frame = persist(self.client, cf.cluster_features(self.users, smoothing=settings.smoothing), cancel)
        fp = str(compute(self.client, fingerprint(self.users), cancel))
        return _AllRows(self._training(frame, settings.flow_only), settings, fp)

"""One run on a Dask cluster: the same holdout leaderboard, final fit and saved folders as `core/run.run`.

`cluster_run(source, RunConfig(...), cluster="local:2")` reads the train rows on the workers (a folder of
parts, one file, or a Dask DataFrame), shuffles them once by user (kept in the workers' memory for every
round and the final fit), builds each round's features there (`cluster/features.py`, equal to one
machine's), trains LightGBM there (`cluster/boost.py`) and gathers only what the caller needs: the
targets' labels and probabilities (one row per user and round) and the fitted model. Saving happens
here, on the caller's disk, with `store.save_model` (atomic), after the fit: a cancel leaves no folder.

On a cluster only `lightgbm` trains, with the baselines (`constant`, `user_flow_rate`: a mean and a
feature column, computed there). Every other model is refused before any work, in one sentence: they are
single-machine learners (scikit-learn, torch) that would need all rows gathered to one worker, which
is what running without a cluster does better. `top_k` (a random forest on one machine) is refused too.
Events: `Stage("holdout"/"final"/"done")`, `Progress("evaluate"/"train")` as on one machine, `Log` lines
(the cluster and its dashboard link first), and LightGBM's `BeforeFit`/`AfterEpoch`/`AfterFit` relayed
from the workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from flowtui.core import events as ev
from flowtui.core import registry
from flowtui.core.cluster import features as cf
from flowtui.core.cluster.boost import fit_lightgbm, predict_frame
from flowtui.core.cluster.executor import CancelBridge, compute, persist
from flowtui.core.cluster.lazy import DaskClient, DaskFrame
from flowtui.core.cluster.source import ROW, fingerprint, read_train, with_row_ids
from flowtui.core.cluster.spec import ClusterSession, ClusterSpec, require_dask
from flowtui.core.data.schema import LABEL
from flowtui.core.errors import DataError, ParamError
from flowtui.core.events import EventCallback
from flowtui.core.flow.classifiers.baselines import USER_FLOW_RATE
from flowtui.core.flow.evaluate import Leaderboard, _Fit, _Tally
from flowtui.core.flow.features import FEATURE_NAMES
from flowtui.core.flow.store import TrainedModel, library_versions, save_model
from flowtui.core.registry import FlowModel
from flowtui.core.run import RunResult, _holdout_scores, _holdout_then_final
from flowtui.core.run_config import RunConfig

__all__ = ["CLUSTER_MODELS", "check_cluster_config", "cluster_run"]

#: The models a cluster trains (besides the baselines).
CLUSTER_MODELS: tuple[str, ...] = ("lightgbm",)

Source = str | Path
ClusterLike = ClusterSpec | str | ClusterSession


def check_cluster_config(config: RunConfig) -> RunConfig:
    """`config.validate()`, then ParamError for what a cluster does not do (other models, top_k)."""
    config.validate()
    refused = [n for n in config.chosen() if n not in CLUSTER_MODELS and not registry.get_spec(n).baseline]
    if refused:
        raise ParamError(
            f"on a cluster only {', '.join(CLUSTER_MODELS)} (and the baselines) train; "
            f"{', '.join(refused)} {'runs' if len(refused) == 1 else 'run'} on one machine: "
            "leave the cluster out or choose --model lightgbm"
        )
    if config.top_k is not None:
        raise ParamError("top_k feature selection fits a random forest on one machine: not on a cluster")
    return config


def _open(cluster: ClusterLike | DaskClient) -> ClusterSession:
    if isinstance(cluster, ClusterSession):
        return ClusterSession.borrow(cluster.client)  # the caller's: left open
    if isinstance(cluster, str):
        return ClusterSpec.parse(cluster).start()
    if isinstance(cluster, ClusterSpec):
        return cluster.start()
    return ClusterSession.borrow(cluster)  # a distributed.Client the caller owns


def _rows(source: Source | DaskFrame) -> DaskFrame:
    if isinstance(source, str | Path):
        return read_train(source)
    if ROW in source.columns:
        return source
    return with_row_ids(source)


def _baseline(name: str, params: Mapping[str, object], mean_y: float) -> FlowModel:
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
    """The training rows of a partition, as `features._training_part` keeps them (labelled history rows;
    with `flow_only`, Flow rows only)."""
    keep = (part[cf.ROLE].to_numpy() == 0) & part[LABEL].notna().to_numpy()
    if flow_only:
        keep &= part["listen_type"].to_numpy() == 1
    return cast(pd.DataFrame, part.loc[keep])


def _training_rows(frame: DaskFrame, flow_only: bool) -> DaskFrame:
    return frame.map_partitions(_training_part, flow_only, meta=frame._meta)


class _Job:
    """What the stages of one cluster run share."""

    def __init__(
        self,
        session: ClusterSession,
        config: RunConfig,
        params: Mapping[str, Mapping[str, object]],
        on_event: EventCallback | None,
        cancel: threading.Event | None,
        bridge: CancelBridge,
    ) -> None:
        self.session = session
        self.client = session.client
        self.config = config
        self.params = params
        self.on_event = on_event
        self.cancel = cancel
        self.bridge = bridge

    def emit(self, event: ev.Event) -> None:
        ev.emit(self.on_event, event)

    def fit(self, name: str, train: DaskFrame, mean_y: Callable[[], float]) -> FlowModel:
        if name == "lightgbm":
            return fit_lightgbm(
                self.client,
                train,
                self.params[name],
                FEATURE_NAMES,
                on_event=self.on_event,
                cancel=self.cancel,
                cancel_name=self.bridge.name,
            )
        return _baseline(name, self.params[name], mean_y())

    def scores(self, name: str, model: FlowModel, targets: DaskFrame, gathered: pd.DataFrame) -> np.ndarray:
        """The model's probabilities of the targets, in `_row` order (`gathered`: their `_row`, `_y`, and
        the baselines' column, already in that order)."""
        if name == "lightgbm":
            scored = predict_frame(self.client, targets, cast(Any, model), self.cancel)
            if not np.array_equal(scored[ROW].to_numpy(), gathered[ROW].to_numpy()):
                raise RuntimeError("the scored targets are not the gathered ones")
            return scored["p"].to_numpy(np.float64)
        return np.asarray(model.predict_proba(gathered, gathered), dtype=np.float64)

    def mean_label(self, train: DaskFrame) -> Callable[[], float]:
        cache: list[float] = []

        def get() -> float:
            if not cache:
                total, n = compute(self.client, (train[LABEL].sum(), train.shape[0]), self.cancel)
                cache.append(float(total) / max(int(n), 1))
            return cache[0]

        return get

    def leaderboard(self, users: DaskFrame) -> Leaderboard:
        config = self.config
        contexts = config.target_contexts
        n_rounds = int(compute(self.client, cf.count_rounds(users, config.rounds, contexts), self.cancel))
        if n_rounds == 0:
            where = f" in contexts {sorted(contexts)}" if contexts else ""
            raise DataError(
                None, f"no user has a Flow row (listen_type 1){where} after earlier rows: nothing to hold out"
            )
        names = config.on_leaderboard()
        tally = _Tally(list(names))
        n_steps = n_rounds * (len(names) + 1)
        step = 0
        for r in range(n_rounds):
            ev.check_cancel(self.cancel)
            self.emit(ev.Progress("evaluate", step, n_steps, f"features, round {r + 1}"))
            frame = persist(
                self.client,
                cf.fold_frame(users, r, smoothing=config.smoothing, contexts=contexts),
                self.cancel,
            )
            train = _training_rows(frame, config.flow_only)
            targets = frame[frame[cf.ROLE] == 1]
            gathered = compute(self.client, targets[[ROW, cf.TRUTH, USER_FLOW_RATE]], self.cancel)
            gathered = gathered.sort_values(ROW, kind="stable").reset_index(drop=True)
            tally.ys.append(gathered[cf.TRUTH].to_numpy().astype(np.int8))
            step += 1
            mean_y = self.mean_label(train)
            for name in names:
                step += 1
                if name in tally.errors:
                    continue
                self.emit(ev.Progress("evaluate", step - 1, n_steps, f"{name}, round {r + 1}"))
                try:
                    t0 = time.perf_counter()
                    model = self.fit(name, train, mean_y)
                    t1 = time.perf_counter()
                    p = self.scores(name, model, targets, gathered)
                    t2 = time.perf_counter()
                    if p.shape != (len(gathered),) or not np.isfinite(p).all():
                        raise ValueError(f"predict_proba returned {p.shape} values with non-finite entries")
                except ev.Cancelled:
                    raise
                except DataError:
                    raise
                except Exception as exc:
                    tally.errors[name] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                    self.emit(ev.Log(f"{name} failed: {tally.errors[name]}", level="warning"))
                    continue
                tally.add(name, _Fit(model, p, t1 - t0, t2 - t1), first_round=r == 0)
            del frame, train, targets
        self.emit(ev.Progress("evaluate", n_steps, n_steps, "done"))
        board = tally.leaderboard(rounds=n_rounds, selected=None)
        if board.leak_warning:
            self.emit(ev.Log(board.leak_warning, level="warning"))
        return board

    def final_fits(self, users: DaskFrame, result: RunResult) -> None:
        config = self.config
        assert config.models_dir is not None
        todo = [n for n in config.chosen() if n not in result.failed]
        if not todo:
            return
        ev.check_cancel(self.cancel)
        self.emit(ev.Stage("final"))
        self.emit(ev.Progress("train", 0, len(todo), "features of all rows"))
        frame = persist(self.client, cf.cluster_features(users, smoothing=config.smoothing), self.cancel)
        train = _training_rows(frame, config.flow_only)
        fp = str(compute(self.client, fingerprint(users), self.cancel))
        mean_y = self.mean_label(train)
        board = result.leaderboard
        for i, name in enumerate(todo):
            try:
                model = self.fit(name, train, mean_y)
            except (ev.Cancelled, DataError):
                raise
            except Exception as exc:
                result.failed[name] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                self.emit(ev.Log(f"{name} failed: {result.failed[name]}", level="warning"))
                continue
            spec = registry.get_spec(name)
            trained = TrainedModel(
                name=name,
                model=model,
                features=list(FEATURE_NAMES),
                params=dict(spec.params(self.params[name])),
                smoothing=config.smoothing,
                flow_only=config.flow_only,
                holdout=_holdout_scores(board, name) if board is not None else {},
                fingerprint=fp,
                notes=list(model.notes),
                created=datetime.now(UTC).isoformat(timespec="seconds"),
                libraries=library_versions(),
            )
            ev.check_cancel(self.cancel)
            folder = save_model(trained, config.models_dir / name)
            result.trained[name], result.saved[name] = trained, folder
            self.emit(ev.Saved(name, str(folder)))
            self.emit(ev.Progress("train", i + 1, len(todo), f"{name}: done"))


def cluster_run(
    source: Source | DaskFrame,
    config: RunConfig,
    *,
    cluster: ClusterLike | DaskClient,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
    npartitions: int | None = None,
    on_leaderboard: Callable[[Leaderboard], None] | None = None,
) -> RunResult:
    """`core/run.run` on a Dask cluster: holdout leaderboard, then (with `models_dir`) final fits, saved.

    `source`: a folder of parquet/CSV parts, one file, or a Dask DataFrame of train rows. `cluster`: a
    `ClusterSpec` or its text (`local:N`, `tcp://HOST:PORT`; started and closed here), a `ClusterSession`,
    or a `distributed.Client` the caller owns (left open). `npartitions`: user partitions (default: the
    source's partitions, at least two per worker). Raises ParamError (before any work) for models or
    settings a cluster does not run, ClusterError when the cluster cannot be had, DataError for refused
    data, and `events.Cancelled` when `cancel` is set (the cluster's work is cancelled, a cluster started
    here is closed, nothing is written).
    """
    check_cluster_config(config)
    params = config.resolved_params()
    require_dask()
    session = _open(cluster)
    try:
        n_workers = session.n_workers()
        ev.emit(on_event, ev.Log(f"cluster of {n_workers} workers; {session.dashboard()}"))
        on_cancel = session.close if session.owned else None
        with CancelBridge(session.client, cancel, on_cancel=on_cancel) as bridge:
            job = _Job(session, config, params, on_event, cancel, bridge)
            rows = _rows(source)
            parts = npartitions or max(rows.npartitions, 2 * n_workers)
            users = persist(session.client, cf.by_user(rows, parts), cancel)
            result = _holdout_then_final(
                config,
                lambda: job.leaderboard(users),
                lambda res: job.final_fits(users, res),
                on_event,
                on_leaderboard,
            )
        ev.emit(on_event, ev.Stage("done"))
        return result
    except Exception:
        if cancel is not None and cancel.is_set():
            raise ev.Cancelled("cancelled by the user") from None
        raise
    finally:
        session.close()

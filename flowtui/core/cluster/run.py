"""One run on a Dask cluster: `core.run.run` with the rows on the cluster (the same holdout leaderboard,
final fit and saved folders as on one machine).

`cluster_run(source, RunConfig(...), cluster="local:2")` opens the cluster, reads the train rows on the
workers (a folder of parts, one file, or a Dask DataFrame) into a `ClusterData` (cluster/data.py:
features built there, LightGBM trained there) and hands it to `core.run.run`, whose loop drives the
rounds, the fits, the leaderboard and the final fits as it does for a pandas frame. The fits run one
after another in the caller (`InlineExecutor`): each is one distributed job. Saving happens on the
caller's disk, with `store.save_model` (atomic), after the fit: a cancel leaves no folder.

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
from collections.abc import Callable

from flowtui.core import events as ev
from flowtui.core import registry
from flowtui.core.cluster.data import ClusterData, Source
from flowtui.core.cluster.executor import CancelBridge
from flowtui.core.cluster.lazy import DaskClient
from flowtui.core.cluster.spec import ClusterSession, ClusterSpec, require_dask
from flowtui.core.errors import DataError, ParamError
from flowtui.core.events import EventCallback
from flowtui.core.executor import InlineExecutor
from flowtui.core.flow.evaluate import Leaderboard
from flowtui.core.run import RunResult, run
from flowtui.core.run_config import RunConfig

__all__ = ["CLUSTER_MODELS", "check_cluster_config", "cluster_run"]

#: The models a cluster trains (besides the baselines).
CLUSTER_MODELS: tuple[str, ...] = ("lightgbm",)

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


def cluster_run(
    source: Source,
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
    require_dask()
    session = _open(cluster)
    try:
        n_workers = session.n_workers()
        ev.emit(on_event, ev.Log(f"cluster of {n_workers} workers; {session.dashboard()}"))
        on_cancel = session.close if session.owned else None
        with CancelBridge(session.client, cancel, on_cancel=on_cancel) as bridge:
            data = ClusterData.load(
                session.client,
                source,
                n_workers=n_workers,
                npartitions=npartitions,
                cancel=cancel,
                cancel_name=bridge.name,
            )
            # A DataError found by a worker (rows are read lazily) is the run's, not one model's.
            executor = InlineExecutor(propagate=(DataError,))
            return run(
                data,
                config,
                executor=executor,
                on_event=on_event,
                cancel=cancel,
                on_leaderboard=on_leaderboard,
            )
    except Exception:
        if cancel is not None and cancel.is_set():
            raise ev.Cancelled("cancelled by the user") from None
        raise
    finally:
        session.close()

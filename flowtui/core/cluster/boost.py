"""LightGBM on a Dask cluster (`lightgbm.dask.DaskLGBMClassifier`), trained as the single-machine model is.

Same parameters: `LightGBMModel.lgb_params()` of the same `LightGBMParams`, under the scikit-learn names
`DaskLGBMClassifier` takes. Data-parallel LightGBM builds one model from every worker's rows (histograms
summed over the network), so the trees differ from one machine's only by the histogram bin edges (found
on samples of each worker's rows) and the bagging draws (per worker): the holdout AUC agrees closely,
not bit for bit.

Early stopping, as on one machine, on each user's latest `valid_fraction` of Flow rows (the mask is
`LightGBMModel.valid_mask` run on partitions of whole users, in input order: the very same rows).
`lightgbm.dask` does not support early stopping as such: each worker scores its OWN share of the
validation rows, so the workers would stop at different rounds and the network would hang. Here every
worker gets the WHOLE validation set instead (one copy per training partition; the training rows are cut
into one partition per worker), so every worker computes the same AUC of the same model and they all
stop at the same round. (AUC is unchanged when a worker holds two copies: every count doubles.) The
cost: the validation rows (10% of the Flow rows) are held by every worker.

`max_rows`: above it each row is kept with probability max_rows / rows (per partition, seeded), the
same share as the single machine's exact-size sample; set `max_rows` to null to train on every row,
which is what a cluster is for. Cancelling stops the boosting loop on every worker at the next round.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from flowtui.core import events as ev
from flowtui.core import registry
from flowtui.core.cluster.executor import compute, is_cancelled, persist, topic_events
from flowtui.core.cluster.features import TRUTH
from flowtui.core.cluster.lazy import DaskClient, DaskFrame, dask_dataframe, distributed
from flowtui.core.cluster.source import ROW
from flowtui.core.data.schema import LABEL
from flowtui.core.events import EventCallback
from flowtui.core.flow.classifiers.lightgbm_model import LOGGER, LightGBMModel, LightGBMParams, lightgbm
from flowtui.core.flow.classifiers.lightgbm_text import check_model_text

__all__ = ["dask_params", "fit_lightgbm", "predict_frame"]

VALID = "_valid"
#: lgb_params() names -> the scikit-learn names DaskLGBMClassifier takes (aliases would clash with its defaults).
_SKLEARN_NAMES = {
    "feature_fraction": "colsample_bytree",
    "bagging_fraction": "subsample",
    "bagging_freq": "subsample_freq",
    "lambda_l2": "reg_lambda",
    "seed": "random_state",
}
#: Left to lightgbm.dask: it sets each worker's threads (num_threads) itself.
_DROPPED = ("num_threads",)


def dask_params(params: LightGBMParams) -> dict[str, Any]:
    """The keyword arguments of DaskLGBMClassifier for `params` (the same LightGBM settings)."""
    lgb = LightGBMModel(params).lgb_params()
    out = {_SKLEARN_NAMES.get(k, k): v for k, v in lgb.items() if k not in _DROPPED}
    out["n_estimators"] = params.n_estimators
    return out


class _DropThreadNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "will be ignored" not in record.getMessage()


@contextlib.contextmanager
def _no_thread_notice() -> Iterator[None]:
    """Mute lightgbm.dask's "Parameter n_jobs will be ignored." (it sets each worker's threads itself,
    and the scikit-learn wrapper always passes n_jobs)."""
    notice = _DropThreadNotice()
    LOGGER.addFilter(notice)
    try:
        yield
    finally:
        LOGGER.removeFilter(notice)


def _quiet_thread(pause: float) -> None:
    """On a worker's task thread: LightGBM's log level is per thread (and its network set-up logs before
    any parameter is read), so a tiny Dataset with verbosity -1 sets this thread's level to fatal-only;
    its lines would otherwise reach the stdout the worker shares with the caller (and break --json)."""
    lgb = lightgbm()
    lgb.Dataset(np.zeros((4, 1)), label=np.array([0, 1, 0, 1]), params={"verbosity": -1}).construct()
    time.sleep(pause)  # hold this thread so the worker's other threads take the other copies


def _quiet_workers(client: DaskClient) -> None:
    """`_quiet_thread` on every task thread of every worker."""
    futures = []
    for address, info in client.scheduler_info(n_workers=-1).get("workers", {}).items():
        for _ in range(int(info.get("nthreads", 1))):
            futures.append(
                client.submit(_quiet_thread, 0.2, workers=[address], allow_other_workers=False, pure=False)
            )
    client.gather(futures)


class _WorkerProgress:
    """A LightGBM callback run on each worker: reports each round to the caller (a Dask topic) and stops
    the round loop when the run's cancel event is set. Picklable (it travels to the workers)."""

    order = 5  # before early stopping (order 30), as on one machine

    def __init__(self, topic: str, cancel_name: str | None) -> None:
        self.topic = topic
        self.cancel_name = cancel_name

    def __call__(self, env: Any) -> None:
        if is_cancelled(self.cancel_name):
            raise ev.Cancelled("cancelled by the user")
        metric = None
        for item in env.evaluation_result_list or []:
            if item[1] == "auc":
                metric = float(item[2])
        distributed().get_worker().log_event(
            self.topic, {"iteration": int(env.iteration) + 1, "metric": metric}
        )


#: Network settings lightgbm.dask adds to the booster's parameters: host:port lists that mean nothing
#: once trained (and that `check_model_text` rightly refuses in a saved model).
_NETWORK_KEYS = ("machines", "local_listen_port", "machine_list_filename", "listen_time_out")


def _local_booster(booster: Any, features: list[str]) -> Any:
    """The booster without the cluster's network settings, checked as a saved model.txt will be."""
    keep = [
        line
        for line in booster.model_to_string().split("\n")
        if not any(line.startswith(f"[{key}: ") for key in _NETWORK_KEYS)
    ]
    text = check_model_text("\n".join(keep).encode("ascii"), features, where="the cluster's LightGBM model")
    return lightgbm().Booster(model_str=text)


def _pinned(client: DaskClient, frame: DaskFrame) -> DaskFrame:
    """`frame` with partition i computed on the i-th worker (by address): the same rows always meet the
    same LightGBM rank, which finds the bin edges of the same features on them, so a run is repeatable
    (left to Dask's placement, which worker holds which rows, hence the model, varies from run to run)."""
    workers = sorted(client.scheduler_info(n_workers=-1).get("workers", {}))
    futures = [
        client.compute(part, workers=[workers[i % len(workers)]], allow_other_workers=False)
        for i, part in enumerate(frame.to_delayed())
    ]
    return dask_dataframe().from_delayed(futures, meta=frame._meta, verify_meta=False)


def _keep_sample(
    part: pd.DataFrame, frac: float, seed: int, partition_info: dict[str, Any] | None = None
) -> pd.DataFrame:
    number = partition_info["number"] if partition_info else 0
    rng = np.random.default_rng([seed, number])
    return part[rng.random(len(part)) < frac]


def _with_valid(part: pd.DataFrame, params: LightGBMParams) -> pd.DataFrame:
    """The partition (whole users, input order) with `_valid`: the single machine's validation mask."""
    part = part.sort_values(ROW, kind="stable")
    mask = LightGBMModel(params).valid_mask(part, len(part))
    valid = mask if mask is not None else np.zeros(len(part), dtype=bool)
    return part.assign(**{VALID: valid, LABEL: part[LABEL].to_numpy().astype(np.int8)})


def _predict_part(part: pd.DataFrame, model: LightGBMModel) -> pd.DataFrame:
    features = model.features_ or []
    p = model.predict_proba(part[features]) if len(part) else np.empty(0)
    return pd.DataFrame({ROW: part[ROW].to_numpy(np.int64), "p": np.asarray(p, dtype=np.float64)})


def predict_frame(
    client: DaskClient, rows: DaskFrame, model: LightGBMModel, cancel: threading.Event | None
) -> pd.DataFrame:
    """`_row`, `_y` and the model's probability `p` of each row, computed on the workers, in `_row` order."""
    meta = pd.DataFrame({ROW: np.empty(0, np.int64), "p": np.empty(0, np.float64)})
    scored = rows.map_partitions(_predict_part, model, meta=meta)
    p, truth = compute(client, (scored, rows[[ROW, TRUTH]]), cancel)
    out = truth.merge(p, on=ROW, how="left", validate="one_to_one")
    return cast(pd.DataFrame, out.sort_values(ROW, kind="stable").reset_index(drop=True))


def _training_rows(
    client: DaskClient,
    train: DaskFrame,
    feats: list[str],
    p: LightGBMParams,
    notes: list[str],
    on_event: EventCallback | None,
    cancel: threading.Event | None,
) -> DaskFrame:
    """The columns LightGBM needs of `train`, sampled down to about `max_rows` rows (noted in `notes`)."""
    # (listen_type is a feature too: the frame holds each name once, the raw columns among the features)
    cols = list(dict.fromkeys([*feats, LABEL, "user_id", "ts_listen", "listen_type", ROW]))
    rows = train[cols]
    n = int(compute(client, rows.shape[0], cancel))
    if n == 0:
        raise ValueError("lightgbm: no training rows")
    if p.max_rows is not None and n > p.max_rows:
        frac = p.max_rows / n
        seed = p.random_state if p.random_state is not None else 0
        rows = rows.map_partitions(_keep_sample, frac, seed, meta=rows._meta)
        note = (
            f"trained on a random sample of about {p.max_rows:,} of {n:,} rows (max_rows; null trains on all)"
        )
        notes.append(note)
        ev.emit(on_event, ev.Log(f"lightgbm: {note}"))
    return rows


def _with_validation(
    client: DaskClient, rows: DaskFrame, p: LightGBMParams, cancel: threading.Event | None
) -> tuple[DaskFrame, bool]:
    """`rows` with the `_valid` column (held on the cluster), and whether early stopping has enough rows
    of each label on each side of the split (as on one machine)."""
    meta = rows._meta.assign(**{VALID: np.empty(0, bool), LABEL: np.empty(0, np.int8)})
    rows = persist(client, rows.map_partitions(_with_valid, p, meta=meta), cancel)
    counts = compute(client, rows.groupby([VALID, LABEL]).size(), cancel)
    count = {(bool(v), int(y)): int(c) for (v, y), c in counts.items()}
    n_valid = count.get((True, 0), 0) + count.get((True, 1), 0)
    n_rest = count.get((False, 0), 0) + count.get((False, 1), 0)
    valid_ok = (
        p.valid_fraction > 0
        and n_valid >= 50
        and n_rest >= 50
        and all(count.get((v, y), 0) > 0 for v in (True, False) for y in (0, 1))
    )
    return rows, valid_ok


def _eval_kwargs(rows: DaskFrame, n_copies: int, feats: list[str]) -> dict[str, Any]:
    """The validation rows of `rows` as `DaskLGBMClassifier.fit` takes them: one WHOLE copy per training
    partition (see the module's docstring), scored by AUC."""
    from lightgbm.dask import DaskLGBMClassifier

    valid = rows[rows[VALID]].repartition(npartitions=1)
    (whole,) = valid.to_delayed()
    copies = dask_dataframe().from_delayed([whole] * n_copies, meta=valid._meta, verify_meta=False)
    kwargs: dict[str, Any]
    if "eval_X" in inspect.signature(DaskLGBMClassifier.fit).parameters:  # lightgbm >= 4.7
        kwargs = {"eval_X": (copies[feats],), "eval_y": (copies[LABEL],)}
    else:
        kwargs = {"eval_set": [(copies[feats], copies[LABEL])]}
    kwargs.update(eval_names=["valid"], eval_metric="auc")
    return kwargs


class _RoundRelay:
    """Receives the rounds the workers report (a Dask topic) and passes each on once, in order, as an
    `AfterEpoch` (every worker reports every round)."""

    def __init__(self, on_event: EventCallback | None, total: int) -> None:
        self.on_event = on_event
        self.total = total
        self.start = time.perf_counter()
        self.seen = 0
        self.lock = threading.Lock()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def __call__(self, msg: dict[str, Any]) -> None:
        i = int(msg.get("iteration", 0))
        with self.lock:
            if i <= self.seen:
                return
            self.seen = i
        m = msg.get("metric")
        metric = float(m) if m is not None else None
        ev.emit(
            self.on_event, ev.AfterEpoch("lightgbm", i, self.total, metric=metric, elapsed=self.elapsed())
        )


def _boost(
    client: DaskClient,
    clf: Any,
    fit_rows: DaskFrame,
    feats: list[str],
    fit_kwargs: dict[str, Any],
    *,
    topic: str,
    total: int,
    on_event: EventCallback | None,
    cancel: threading.Event | None,
) -> None:
    """`clf.fit` on the cluster with its rounds relayed from `topic`; Cancelled when `cancel` stopped it."""
    relay = _RoundRelay(on_event, total)
    _quiet_workers(client)
    ev.emit(on_event, ev.BeforeFit("lightgbm", n_epochs=relay.total))
    try:
        with topic_events(client, topic, relay), _no_thread_notice():
            clf.fit(fit_rows[feats], fit_rows[LABEL], **fit_kwargs)
    except Exception as exc:
        if cancel is not None and cancel.is_set():  # the workers stopped themselves (or were closed)
            ev.emit(on_event, ev.AfterFit("lightgbm", relay.elapsed(), cancelled=True))
            raise ev.Cancelled("cancelled by the user") from exc
        raise
    ev.emit(on_event, ev.AfterFit("lightgbm", relay.elapsed()))


def fit_lightgbm(
    client: DaskClient,
    train: DaskFrame,
    params: Mapping[str, object] | None,
    features: Sequence[str],
    *,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
    cancel_name: str | None = None,
) -> LightGBMModel:
    """LightGBM fitted on the training rows `train` (partitions of whole users: features, LABEL, user_id,
    ts_listen, listen_type, `_row`), returned as a single-machine `LightGBMModel` (saved, loaded and used
    for prediction like any other). `cancel_name`: the run's `CancelBridge` event, which stops the rounds."""
    from lightgbm.dask import DaskLGBMClassifier

    model = cast(LightGBMModel, registry.get_spec("lightgbm").build(params))
    p = model.params
    feats = [str(f) for f in features]
    n_workers = max(len(client.scheduler_info(n_workers=-1).get("workers", {})), 1)
    notes: list[str] = [f"trained on a Dask cluster of {n_workers} workers (lightgbm.dask, data-parallel)"]
    ev.check_cancel(cancel)
    rows = _training_rows(client, train, feats, p, notes, on_event, cancel)
    rows, valid_ok = _with_validation(client, rows, p, cancel)
    fit_rows = _pinned(client, (rows[~rows[VALID]] if valid_ok else rows).repartition(npartitions=n_workers))
    topic = f"flowtui-lightgbm-{uuid.uuid4().hex}"
    callbacks: list[Any] = [_WorkerProgress(topic, cancel_name)]
    fit_kwargs: dict[str, Any] = {}
    if valid_ok:
        fit_kwargs = _eval_kwargs(rows, fit_rows.npartitions, feats)
        callbacks.append(lightgbm().early_stopping(p.early_stopping_rounds, verbose=False))
    else:
        note = "too few rows for a validation split: no early stopping"
        notes.append(note)
        ev.emit(on_event, ev.Log(f"lightgbm: {note}"))
    clf = DaskLGBMClassifier(client=client, **dask_params(p))
    _boost(
        client,
        clf,
        fit_rows,
        feats,
        {**fit_kwargs, "callbacks": callbacks},
        topic=topic,
        total=p.n_estimators,
        on_event=on_event,
        cancel=cancel,
    )
    booster = clf.booster_
    best = int(booster.best_iteration)
    if valid_ok and best > 0:
        auc = clf.best_score_["valid"]["auc"]
        notes.append(
            f"early stopping: best iteration {best} of {p.n_estimators} "
            f"(validation AUC {auc:.4f} on each user's latest Flow rows)"
        )
    # The fitted state of a single-machine LightGBMModel: save, load and predict work unchanged.
    model.features_ = feats
    model.booster_ = _local_booster(booster, feats)
    model.best_iteration_ = best if valid_ok and best > 0 else None
    model.notes = notes
    return model

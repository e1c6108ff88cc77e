"""The RBM trained data-parallel with torch.distributed: users sharded over N processes, updates all-reduced.

`fit_data_parallel(rbm, X, nproc=N)` trains an unfitted `RBM` exactly as `rbm.fit(X)` would with the same
(global) `batch_size`, on N processes: the calling process is rank 0 and keeps the fitted RBM, ranks
1..N-1 are spawned (`multiprocessing` spawn) and exit when training ends. Backend: gloo on the CPU, nccl
on CUDA (one GPU per rank). `data_parallel_rbm(N)` makes the registered Flow model `rbm` train this way
within a block, so `core/run.run` (`flowtui train --model rbm --nproc N`) saves one model, from rank 0,
through the ordinary model store.

Why it is the same model. Every rank holds the same parameters, draws the same epoch permutation (the
RBM's own seeded generator) and so the same global batches; rank r owns a contiguous range of users
(rows) and computes, with the RBM's own CD step, the update of the batch's rows in its range. The RBM's
update is p += v, v = momentum v + (lr / n) g - lr wd p (g a SUM over the n rows), so the n_r/n-weighted
sum over ranks of the ranks' new velocities is the velocity of the whole batch; one all-reduce of those
(plus the centring offsets and the loss) per batch. The hidden units' Bernoulli draws come from one
generator per rank seeded alike: before and after its rows each rank skips the draws of the other ranks'
rows, so on the CPU (whose generator draws element by element, in row order) each row gets the numbers it
gets in one process. With k = 1 (the default) that makes N processes equal to one up to float rounding
(`tests/cluster/test_rbm_ddp.py`); with k > 1 the later Gibbs steps' draws are each rank's own (same
distribution, other numbers), and on CUDA the generator draws in parallel, so the draws differ there too.

Cancel: rank 0 puts the caller's cancel flag in each all-reduce; every rank stops after the same batch,
nothing is written. A rank that dies stops the run with one line (DistributedError).

What every rank runs (its shard, the all-reduced batch updates) is `rbm_ddp_rank`; this module is rank 0's
side (start the ranks, join them, stop them) and the registered model's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import multiprocessing as mp
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np

from flowtui.core import events as ev
from flowtui.core import registry
from flowtui.core.cluster import rbm_ddp_rank
from flowtui.core.cluster.rbm_ddp_rank import (
    TIMEOUT,
    DistributedError,
    _check_alive,
    _has_update_seam,
    _init_state,
    _Job,
    _rank_main,
    _Reducer,
    _restore,
    _Shard,
    _train,
)
from flowtui.core.cluster.spec import children_ignore_ctrl_c
from flowtui.core.events import EventCallback
from flowtui.core.flow.rbm_classifier import RBMModel
from flowtui.core.recs.interactions import InteractionMatrix
from flowtui.core.recs.rbm import RBM
from flowtui.core.recs.rbm_networks import build_network, exposure_settings, renamed_events
from flowtui.core.recs.rbm_params import RBMParams
from flowtui.core.recs.rbm_source import Source, resolve_device

__all__ = ["DistributedError", "DistributedRBMModel", "data_parallel_rbm", "fit_data_parallel"]

MAX_PROCESSES = 64


# -- rank 0: the caller ---------------------------------------------------------------------------------
def _context() -> Any:
    """A fork server that has imported the ranks' module once (each later rank starts in a fraction of a
    second, not the seconds torch's import takes), or plain spawn where there is no fork server (Windows)."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([rbm_ddp_rank.__name__])
    return ctx


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def backend_for(device: str) -> str:
    """gloo for the CPU, nccl for CUDA; DistributedError for a device torch.distributed cannot reduce on."""
    if device.startswith("cuda"):
        return "nccl"
    if device == "cpu":
        return "gloo"
    raise DistributedError(f"device {device!r}: data-parallel training runs on the CPU (gloo) or CUDA (nccl)")


def row_ranges(n_rows: int, nproc: int) -> list[tuple[int, int]]:
    """Contiguous, near-equal user ranges, one per rank."""
    bounds = [round(i * n_rows / nproc) for i in range(nproc + 1)]
    return list(itertools.pairwise(bounds))


def fit_data_parallel(
    net: RBM,
    X: Any,
    mask: Any = None,
    *,
    nproc: int,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
    name: str | None = None,
) -> RBM:
    """Fit `net` (an unfitted RBM) on `nproc` processes; this process is rank 0 and keeps the result.

    The same events as `RBM.fit` (BeforeFit, AfterEpoch with the global reconstruction error, AfterFit);
    raises events.Cancelled when `cancel` is set (every rank stops), DistributedError when the processes
    cannot start or one fails, ValueError for a dense input (a DBN's upper layers: not data-parallel)."""
    import torch

    src, backend = _checked_source(net, X, mask, nproc)
    label = name or net.name
    t0 = time.perf_counter()
    ev.emit(on_event, ev.BeforeFit(label, net.n_iter))
    ev.check_cancel(cancel)
    if backend == "nccl":
        torch.cuda.set_device(0)
    net._init(src)  # on ALL rows: the visible biases and centring offsets are the data's
    ranges = row_ranges(src.n_rows, nproc)
    job = _Job(
        params=net.get_params(),
        state=_init_state(net),
        n_rows=src.n_rows,
        n_iter=int(net.n_iter),
        world=nproc,
        backend=backend,
        address=f"tcp://127.0.0.1:{_free_port()}",
        threads=max(1, (os.cpu_count() or 1) // nproc),
        seam=_has_update_seam(net),
    )

    def on_epoch(epoch: int, loss: float) -> None:
        ev.emit(on_event, ev.AfterEpoch(label, epoch + 1, net.n_iter, loss, None, time.perf_counter() - t0))

    try:
        _run_ranks(net, src, ranges, job, on_epoch, cancel)
    except ev.Cancelled:
        ev.emit(on_event, ev.AfterFit(label, time.perf_counter() - t0, cancelled=True))
        raise
    except DistributedError:
        if cancel is not None and cancel.is_set():  # a rank stopped by the same ctrl-c
            ev.emit(on_event, ev.AfterFit(label, time.perf_counter() - t0, cancelled=True))
            raise ev.Cancelled("cancelled by the user") from None
        raise
    net._sync()
    ev.emit(on_event, ev.AfterFit(label, time.perf_counter() - t0))
    return net


def _checked_source(net: RBM, X: Any, mask: Any, nproc: int) -> tuple[Source, str]:
    """The visible rows of X and the backend for `net`'s device; DistributedError (or ValueError for a
    dense input) when they cannot train data-parallel. Fixes `net.random_state` when it is None: every
    rank must draw from the same seed (the model records it)."""
    import torch
    import torch.distributed as dist

    if not 1 <= nproc <= MAX_PROCESSES:
        raise DistributedError(f"nproc must be from 1 to {MAX_PROCESSES}, got {nproc}")
    if dist.is_available() and dist.is_initialized():
        raise DistributedError("torch.distributed is already initialised in this process (torchrun?)")
    src = Source(X, mask, net.implicit_weight, net.catalogue_source_groups(X))
    if src.dense is not None:
        raise ValueError("data-parallel training needs a sparse (masked) matrix, not a dense array")
    device = resolve_device(net.device)
    backend = backend_for(device)
    if backend == "nccl" and nproc > torch.cuda.device_count():
        raise DistributedError(f"nproc {nproc} needs as many CUDA devices; {torch.cuda.device_count()} here")
    if net.random_state is None:
        net.random_state = int(np.random.default_rng().integers(2**31))
    return src, backend


def _run_ranks(
    net: RBM,
    src: Source,
    ranges: list[tuple[int, int]],
    job: _Job,
    on_epoch: Any,
    cancel: threading.Event | None,
) -> None:
    """Start ranks 1..N-1, join them in the process group, train rank 0's shard, and stop them."""
    import torch
    import torch.distributed as dist

    ctx = _context()
    errors = ctx.SimpleQueue()
    procs = [
        ctx.Process(
            target=_rank_main,
            args=(rank, job, _Shard.of(src, lo, hi), errors),
            name=f"flowtui-rbm-rank{rank}",
            daemon=True,
        )
        for rank, (lo, hi) in enumerate(ranges)
        if rank > 0
    ]
    threads_before = torch.get_num_threads()
    joined = False
    try:
        with children_ignore_ctrl_c():  # the fork server and the ranks: ctrl-c is rank 0's to handle
            for p in procs:
                p.start()
        torch.set_num_threads(job.threads)
        _join_group(job, procs, errors, cancel)
        joined = True
        lo, hi = ranges[0]
        shard = _Shard.of(src, lo, hi).source()
        _restore(net, shard, job.state)
        _train(net, shard, lo, hi, job, _Reducer(procs, errors), on_epoch=on_epoch, cancel=cancel)
    finally:
        torch.set_num_threads(threads_before)
        if joined:
            with contextlib.suppress(Exception):
                dist.destroy_process_group()
        _stop(procs)


def _join_group(job: _Job, procs: list[Any], errors: Any, cancel: threading.Event | None) -> None:
    """Rank 0 joins the process group, in a thread so that a rank dying at start-up or a cancel is seen."""
    import torch.distributed as dist

    outcome: list[BaseException | None] = []

    def join() -> None:
        try:
            dist.init_process_group(
                job.backend,
                init_method=job.address,
                rank=0,
                world_size=job.world,
                timeout=timedelta(seconds=TIMEOUT),
            )
            outcome.append(None)
        except BaseException as exc:  # reported below, in the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=join, name="flowtui-rbm-join", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
        if thread.is_alive():
            if cancel is not None and cancel.is_set():
                raise ev.Cancelled("cancelled by the user")
            _check_alive(procs, errors)
    if outcome and outcome[0] is not None:
        raise DistributedError(f"could not start the {job.world} training processes: {outcome[0]}")


def _stop(procs: list[Any]) -> None:
    """Wait for the ranks to leave; terminate any left after a few seconds (they hold no files)."""
    deadline = time.monotonic() + 10
    for p in procs:
        if p.pid is None:
            continue
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.pid is not None and p.is_alive():
            p.terminate()
            p.join(5)


# -- the registered Flow model `rbm`, data-parallel -------------------------------------------------------
class DistributedRBMModel(RBMModel):
    """The Flow model `rbm` whose networks (listen and exposure) train on `nproc` processes. Its files
    are the plain `rbm`'s: `flowtui predict`, `recommend` and the app load it as any `rbm`."""

    def __init__(self, params: RBMParams | None = None, *, nproc: int = 2) -> None:
        super().__init__(params)
        self.nproc = nproc

    def _fit_networks(
        self, matrix: InteractionMatrix, on_event: EventCallback | None, cancel: threading.Event | None
    ) -> None:
        """The networks of `RBMModel.fit`, fitted by `fit_data_parallel` (the rest of `fit` is the same)."""
        p = self.params
        assert isinstance(p, RBMParams)
        self.notes.insert(0, f"trained on {self.nproc} torch.distributed processes")
        if p.exposure_weight and p.validation_fraction:
            self.notes.append(
                f"no early stopping on several processes: the exposure network trained {p.exposure_n_iter} epochs"
            )
        net = build_network(p)
        assert isinstance(net, RBM)
        self.net_ = fit_data_parallel(net, matrix, nproc=self.nproc, on_event=on_event, cancel=cancel)
        self.exposure_ = None
        if p.exposure_weight:
            w = float(p.exposure_weight)
            expo = build_network(p, **exposure_settings(p))
            assert isinstance(expo, RBM)
            self.exposure_ = fit_data_parallel(
                expo,
                matrix.as_played(w),
                nproc=self.nproc,
                on_event=renamed_events(on_event, f"{self.kind} exposure"),
                cancel=cancel,
            )


class _Factory:
    """The registry's factory of `rbm` inside `data_parallel_rbm` (a class: the registry ranks models by
    their factory's module)."""

    def __init__(self, nproc: int) -> None:
        self.nproc = nproc
        self.__module__ = RBMModel.__module__

    def __call__(self, params: RBMParams) -> DistributedRBMModel:
        return DistributedRBMModel(params, nproc=self.nproc)


@contextlib.contextmanager
def data_parallel_rbm(nproc: int) -> Iterator[None]:
    """Within the block, the registered model `rbm` trains on `nproc` torch.distributed processes
    (nproc 1: unchanged). Not thread-safe: the registry is the process's."""
    if not 1 <= nproc <= MAX_PROCESSES:
        raise DistributedError(f"nproc must be from 1 to {MAX_PROCESSES}, got {nproc}")
    if nproc == 1:
        yield
        return
    spec = registry.get_spec("rbm")
    registry.register(dataclasses.replace(spec, factory=_Factory(nproc)))
    try:
        yield
    finally:
        registry.register(spec)

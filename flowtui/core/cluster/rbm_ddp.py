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
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from flowtui.core import events as ev
from flowtui.core import registry
from flowtui.core.cluster.spec import children_ignore_ctrl_c
from flowtui.core.events import EventCallback
from flowtui.core.recs.interactions import InteractionMatrix
from flowtui.core.recs.rbm import RBM
from flowtui.core.recs.rbm_models import RBMModel, build_network, exposure_settings
from flowtui.core.recs.rbm_params import RBMParams
from flowtui.core.recs.rbm_source import Source, resolve_device

if TYPE_CHECKING:
    import torch

__all__ = ["DistributedError", "DistributedRBMModel", "data_parallel_rbm", "fit_data_parallel"]

#: Seconds the ranks wait for each other (start-up, then each all-reduce) before giving up.
TIMEOUT = 300.0
#: Seconds between two looks at the other ranks while rank 0 waits on an all-reduce.
POLL = 0.0005
MAX_PROCESSES = 64


class DistributedError(RuntimeError):
    """The processes could not be started, or one of them failed; one plain sentence."""


# -- what every rank runs -------------------------------------------------------------------------------
@dataclasses.dataclass
class _Shard:
    """Rows [lo, hi) of the visible matrix, as plain arrays (pickled to a spawned rank)."""

    lo: int
    hi: int
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    weights: np.ndarray | None
    n_features: int
    implicit_weight: float
    groups: dict[str, np.ndarray]  # the catalogue levels (each item's group), the same on every rank

    @classmethod
    def of(cls, src: Source, lo: int, hi: int) -> _Shard:
        v = src.values[lo:hi]
        a, b = int(src.values.indptr[lo]), int(src.values.indptr[hi])
        w = None if src.weights is None else src.weights[a:b].copy()
        return cls(lo, hi, v.indptr, v.indices, v.data, w, src.n_features, src.implicit_weight, src.groups)

    def source(self) -> Source:
        shape = (self.hi - self.lo, self.n_features)
        values = sp.csr_matrix((self.data, self.indices, self.indptr), shape=shape)
        mask = (
            None if self.weights is None else sp.csr_matrix((self.weights, self.indices, self.indptr), shape)
        )
        return Source(values, mask, self.implicit_weight, self.groups)


@dataclasses.dataclass
class _Job:
    """What every rank needs: the RBM's arguments, its initial state, the global row count, the epochs."""

    params: dict[str, Any]
    state: dict[str, np.ndarray]  # WT, b, e, c, d, o, lam after the RBM's _init on all rows
    n_rows: int
    n_iter: int
    world: int
    backend: str
    address: str
    threads: int
    seam: bool  # rank 0's choice of update path (`_has_update_seam`), the same on every rank


def _init_state(net: RBM) -> dict[str, np.ndarray]:
    names = ("WT", "b", "e", "c", "d", "o", "lam")
    tensors = (*net._params(), net._o, net._lam)
    return {n: t.detach().cpu().numpy().copy() for n, t in zip(names, tensors, strict=True)}


def _restore(net: RBM, shard: Source, state: dict[str, np.ndarray]) -> None:
    """`net` initialised on its shard (device, generators: the same on every rank), then given rank 0's
    parameters (whose visible biases and centring offsets come from ALL rows)."""
    import torch

    net._init(shard)
    t = {k: torch.from_numpy(v) for k, v in state.items()}
    net._set_params(t["WT"], t["b"], t["e"], t["c"], t["d"])
    net._o = t["o"].to(net.device_)
    net._lam = t["lam"].to(net.device_)


def _skip_draws(gen: torch.Generator, count: int, device: str) -> None:
    """Advance `gen` past `count` Bernoulli draws (the other ranks' rows of a batch)."""
    import torch

    if count > 0:
        torch.bernoulli(torch.zeros(count, device=device), generator=gen)


class _Reducer:
    """One all-reduce (sum) of a flat float32 buffer per batch; rank 0 watches the other ranks meanwhile."""

    def __init__(self, procs: list[Any] | None, errors: Any) -> None:
        self.procs = procs or []
        self.errors = errors

    def __call__(self, buf: torch.Tensor) -> None:
        import torch.distributed as dist

        if not self.procs:
            dist.all_reduce(buf)
            return
        work = dist.all_reduce(buf, async_op=True)
        deadline = time.monotonic() + TIMEOUT
        last = time.monotonic()
        while not work.is_completed():
            time.sleep(POLL)
            now = time.monotonic()
            if now - last > 0.25:
                last = now
                _check_alive(self.procs, self.errors)
                if now > deadline:
                    raise DistributedError(f"the other processes did not answer within {TIMEOUT:.0f} s")
        try:
            work.wait()
        except RuntimeError as exc:  # gloo's own report of a lost peer: name the rank when it is gone
            for _ in range(20):
                _check_alive(self.procs, self.errors)
                time.sleep(0.05)
            raise DistributedError(f"the all-reduce failed: {str(exc).splitlines()[0][:200]}") from None


def _check_alive(procs: list[Any], errors: Any) -> None:
    for rank, p in enumerate(procs, start=1):
        if not p.is_alive():
            why = ""
            with contextlib.suppress(Exception):
                while not errors.empty():
                    r, msg = errors.get()
                    why = f": {msg}" if r == rank or not why else why
            raise DistributedError(f"training process {rank} stopped (exit code {p.exitcode}){why}")


def _has_update_seam(net: RBM) -> bool:
    """Whether the RBM splits its step into `compute_update` (sums over a batch's rows, nothing applied)
    and `apply_update` (the summed statistics applied): then the ranks all-reduce those sums."""
    return callable(getattr(net, "compute_update", None)) and callable(getattr(net, "apply_update", None))


def _train(
    net: RBM,
    shard: Source,
    lo: int,
    hi: int,
    job: _Job,
    reduce: _Reducer,
    *,
    on_epoch: Any = None,
    cancel: threading.Event | None = None,
) -> None:
    """The epochs of one rank (rank 0 passes `on_epoch(epoch, loss)` and `cancel`).

    With the RBM's update seam, each rank's `compute_update` sums are all-reduced and applied by every
    rank. Without it, each rank applies its own step (`_cd_step`, the learning rate over its own rows)
    and the ranks' new velocities, weighted by their share of the batch's rows, are all-reduced: the
    same update, since the velocity is linear in the gradient sum and the rest is the same on every rank."""
    import torch

    dev = net.device_
    H = int(net.n_components)
    size = int(net.batch_size)
    params = net._params()
    seam = job.seam
    api: Any = net  # the seam is new in RBM: typed loosely so that this module checks against either version
    if seam:
        shapes = [tuple(p.shape) for p in params]
        if len(getattr(net, "_cat", ())):  # the catalogue weights' gradient follows the parameters'
            shapes.append(tuple(net._cat.shape))
        shapes += [tuple(net._lam.shape), (3,)]
    else:
        shapes = [tuple(v.shape) for v in net._vel] + [tuple(net._lam.shape), (2,)]
    sizes = [int(np.prod(s)) for s in shapes]
    n_buf = sum(sizes)
    buf = torch.zeros(n_buf + 1, device=dev)  # the last entry: rank 0's stop flag
    with torch.no_grad():
        for epoch in range(job.n_iter):
            k = net._k_for(epoch)
            order = net._rng.permutation(job.n_rows)
            err_sum, w_sum = 0.0, 0.0
            for start in range(0, job.n_rows, size):
                idx = np.sort(order[start : start + size])
                a, b = int(np.searchsorted(idx, lo)), int(np.searchsorted(idx, hi))
                old = None if seam else [p.clone() for p in params]
                buf.zero_()
                _skip_draws(net._gen, a * H, dev)
                if b > a:
                    bt = shard.batch(idx[a:b] - lo, dev, transposed=True)
                    if seam:
                        ups = api.compute_update(bt, k)
                        torch.cat([u.reshape(-1) for u in ups], out=buf[:n_buf])
                    else:
                        err, w = net._cd_step(bt, k)
                        stats = torch.tensor([err, w], device=dev)
                        flat = [v.reshape(-1) for v in net._vel] + [net._lam.reshape(-1), stats]
                        torch.cat(flat, out=buf[:n_buf])
                        buf[: n_buf - 2].mul_((b - a) / len(idx))
                _skip_draws(net._gen, (len(idx) - b) * H, dev)
                buf[n_buf] = 1.0 if cancel is not None and cancel.is_set() else 0.0
                reduce(buf)
                if float(buf[n_buf]) > 0:
                    raise ev.Cancelled("cancelled by the user")
                parts = [t.view(s) for t, s in zip(torch.split(buf[:n_buf], sizes), shapes, strict=True)]
                if seam:
                    api.apply_update(parts)
                    err, w = float(parts[-1][1]), float(parts[-1][2])
                else:
                    assert old is not None
                    for p, v, p0, t in zip(params, net._vel, old, parts, strict=False):
                        v.copy_(t)
                        p.copy_(p0).add_(v)
                    net._lam.copy_(parts[-2])
                    err, w = float(parts[-1][0]), float(parts[-1][1])
                err_sum += err
                w_sum += w
            net.n_iter_ += 1
            if on_epoch is not None:
                on_epoch(epoch, err_sum / max(w_sum, 1.0))


def _rank_main(rank: int, job: _Job, shard: _Shard, errors: Any) -> None:
    """A spawned rank: join the group, train on its shard, leave. Errors go to `errors` as one line."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ctrl-c is rank 0's to handle (it stops every rank)
    try:
        import torch
        import torch.distributed as dist

        torch.set_num_threads(job.threads)
        if job.backend == "nccl":
            torch.cuda.set_device(rank % torch.cuda.device_count())
        dist.init_process_group(
            job.backend,
            init_method=job.address,
            rank=rank,
            world_size=job.world,
            timeout=timedelta(seconds=TIMEOUT),
        )
        try:
            net = RBM(**job.params)
            src = shard.source()
            _restore(net, src, job.state)
            _train(net, src, shard.lo, shard.hi, job, _Reducer(None, None))
        except ev.Cancelled:
            pass
        finally:
            with contextlib.suppress(Exception):
                dist.destroy_process_group()
    except Exception as exc:
        with contextlib.suppress(Exception):
            errors.put((rank, f"{type(exc).__name__}: {' '.join(str(exc).split())}"))
        raise SystemExit(1) from None


# -- rank 0: the caller ---------------------------------------------------------------------------------
def _context() -> Any:
    """A fork server that has imported this module once (each later rank starts in a fraction of a second,
    not the seconds torch's import takes), or plain spawn where there is no fork server (Windows)."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
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
    if net.random_state is None:  # every rank must draw from the same seed: fix it now (the model records it)
        net.random_state = int(np.random.default_rng().integers(2**31))
    label = name or net.name
    t0 = time.perf_counter()
    ev.emit(on_event, ev.BeforeFit(label, net.n_iter))
    ev.check_cancel(cancel)
    if backend == "nccl":
        torch.cuda.set_device(0)
    net._init(src)  # on ALL rows: the visible biases and centring offsets are the data's
    ranges = row_ranges(src.n_rows, nproc)
    threads = max(1, (os.cpu_count() or 1) // nproc)
    job = _Job(
        params=net.get_params(),
        state=_init_state(net),
        n_rows=src.n_rows,
        n_iter=int(net.n_iter),
        world=nproc,
        backend=backend,
        address=f"tcp://127.0.0.1:{_free_port()}",
        threads=threads,
        seam=_has_update_seam(net),
    )
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
        torch.set_num_threads(threads)
        _join_group(job, procs, errors, cancel)
        joined = True
        lo, hi = ranges[0]
        shard = _Shard.of(src, lo, hi).source()
        _restore(net, shard, job.state)

        def on_epoch(epoch: int, loss: float) -> None:
            ev.emit(
                on_event, ev.AfterEpoch(label, epoch + 1, net.n_iter, loss, None, time.perf_counter() - t0)
            )

        _train(net, shard, lo, hi, job, _Reducer(procs, errors), on_epoch=on_epoch, cancel=cancel)
    except ev.Cancelled:
        ev.emit(on_event, ev.AfterFit(label, time.perf_counter() - t0, cancelled=True))
        raise
    except DistributedError:
        if cancel is not None and cancel.is_set():  # a rank stopped by the same ctrl-c
            ev.emit(on_event, ev.AfterFit(label, time.perf_counter() - t0, cancelled=True))
            raise ev.Cancelled("cancelled by the user") from None
        raise
    finally:
        torch.set_num_threads(threads_before)
        if joined:
            with contextlib.suppress(Exception):
                dist.destroy_process_group()
        _stop(procs)
    net._sync()
    ev.emit(on_event, ev.AfterFit(label, time.perf_counter() - t0))
    return net


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
                on_event=_relabel(on_event, f"{self.kind} exposure"),
                cancel=cancel,
            )


def _relabel(on_event: EventCallback | None, model: str) -> EventCallback | None:
    if on_event is None:
        return None
    target = on_event

    def relabel(e: ev.Event) -> None:
        if isinstance(e, (ev.BeforeFit, ev.AfterEpoch, ev.AfterFit)):
            e = dataclasses.replace(e, model=model)
        target(e)

    return relabel


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

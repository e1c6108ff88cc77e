"""What every rank of a data-parallel RBM fit runs (`rbm_ddp`): its shard of users, the batch updates
all-reduced over the ranks, and the entry point of a spawned rank.

Rank 0 (the caller, `rbm_ddp.fit_data_parallel`) runs `_train` too, on its own shard. torch is imported
lazily: the fork server preloads this module cheaply.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from flowtui.core import events as ev
from flowtui.core.recs.rbm import RBM
from flowtui.core.recs.rbm_source import Source

if TYPE_CHECKING:
    import torch

#: Seconds the ranks wait for each other (start-up, then each all-reduce) before giving up.
TIMEOUT = 300.0
#: Seconds between two looks at the other ranks while rank 0 waits on an all-reduce.
POLL = 0.0005


class DistributedError(RuntimeError):
    """The processes could not be started, or one of them failed; one plain sentence."""


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


@dataclasses.dataclass
class _Buffer:
    """The flat float32 buffer all-reduced after each batch: the update's tensors (`shapes`, `sizes`
    entries each, `n` in all), then rank 0's stop flag."""

    buf: torch.Tensor
    shapes: list[tuple[int, ...]]
    sizes: list[int]
    n: int

    @classmethod
    def for_net(cls, net: RBM, seam: bool) -> _Buffer:
        """The layout of `net`'s update: the seam's statistics, or the velocities, offsets and loss."""
        import torch

        if seam:
            shapes = [tuple(p.shape) for p in net._params()]
            if len(getattr(net, "_cat", ())):  # the catalogue weights' gradient follows the parameters'
                shapes.append(tuple(net._cat.shape))
            shapes += [tuple(net._lam.shape), (3,)]
        else:
            shapes = [tuple(v.shape) for v in net._vel] + [tuple(net._lam.shape), (2,)]
        sizes = [int(np.prod(s)) for s in shapes]
        n = sum(sizes)
        return cls(torch.zeros(n + 1, device=net.device_), shapes, sizes, n)  # the last entry: the stop flag

    def parts(self) -> list[torch.Tensor]:
        """The reduced buffer as the update's tensors."""
        import torch

        chunks = torch.split(self.buf[: self.n], self.sizes)
        return [t.view(s) for t, s in zip(chunks, self.shapes, strict=True)]


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
    """The epochs of one rank (rank 0 passes `on_epoch(epoch, loss)` and `cancel`): every rank draws the
    same permutation, so the same global batches, and steps through them in lockstep (`_batch_step`)."""
    import torch

    size = int(net.batch_size)
    flat = _Buffer.for_net(net, job.seam)
    with torch.no_grad():
        for epoch in range(job.n_iter):
            k = net._k_for(epoch)
            order = net._rng.permutation(job.n_rows)
            err_sum, w_sum = 0.0, 0.0
            for start in range(0, job.n_rows, size):
                idx = np.sort(order[start : start + size])
                err, w = _batch_step(net, shard, (lo, hi), idx, k, job.seam, flat, reduce, cancel)
                err_sum += err
                w_sum += w
            net.n_iter_ += 1
            if on_epoch is not None:
                on_epoch(epoch, err_sum / max(w_sum, 1.0))


def _batch_step(
    net: RBM,
    shard: Source,
    rows: tuple[int, int],
    idx: np.ndarray,
    k: int,
    seam: bool,
    flat: _Buffer,
    reduce: _Reducer,
    cancel: threading.Event | None,
) -> tuple[float, float]:
    """One global batch `idx` on this rank (its rows in [lo, hi) = `rows`); returns the batch's (error,
    weight) summed over the ranks.

    With the RBM's update seam, each rank's `compute_update` sums are all-reduced and applied by every
    rank. Without it, each rank applies its own step (`_cd_step`, the learning rate over its own rows)
    and the ranks' new velocities, weighted by their share of the batch's rows, are all-reduced: the
    same update, since the velocity is linear in the gradient sum and the rest is the same on every rank."""
    import torch

    lo, hi = rows
    dev = net.device_
    H = int(net.n_components)
    params = net._params()
    api: Any = net  # the seam is new in RBM: typed loosely so that this module checks against either version
    buf, n_buf = flat.buf, flat.n
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
            own = [v.reshape(-1) for v in net._vel] + [net._lam.reshape(-1), stats]
            torch.cat(own, out=buf[:n_buf])
            buf[: n_buf - 2].mul_((b - a) / len(idx))
    _skip_draws(net._gen, (len(idx) - b) * H, dev)
    buf[n_buf] = 1.0 if cancel is not None and cancel.is_set() else 0.0
    reduce(buf)
    if float(buf[n_buf]) > 0:
        raise ev.Cancelled("cancelled by the user")
    parts = flat.parts()
    if seam:
        api.apply_update(parts)
        return float(parts[-1][1]), float(parts[-1][2])
    assert old is not None
    for p, v, p0, t in zip(params, net._vel, old, parts, strict=False):
        v.copy_(t)
        p.copy_(p0).add_(v)
    net._lam.copy_(parts[-2])
    return float(parts[-1][0]), float(parts[-1][1])


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

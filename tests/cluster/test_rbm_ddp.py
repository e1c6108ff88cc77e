"""The RBM on torch.distributed: 2 gloo processes give one process's model; cancel stops every rank."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flowtui.core import events as ev
from flowtui.core.cluster.rbm_ddp import (
    DistributedError,
    data_parallel_rbm,
    fit_data_parallel,
    row_ranges,
)
from flowtui.core.errors import ParamError
from flowtui.core.recs.interactions import InteractionMatrix
from flowtui.core.recs.rbm import RBM

torch = pytest.importorskip("torch")

#: batch 64 over 120 users: two full batches and one of 56 each epoch (unequal shares per rank).
SMALL: dict[str, Any] = {
    "n_components": 12,
    "batch_size": 64,
    "n_iter": 3,
    "random_state": 0,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def matrix(synth_train: pd.DataFrame) -> InteractionMatrix:
    return InteractionMatrix.from_frame(synth_train, "media", max_items=3000)


def _children() -> set[int]:
    psutil = pytest.importorskip("psutil")
    # the fork server that starts the ranks stays for the session: the ranks are what must be gone
    keep = ("resource_tracker", "forkserver")
    return {
        p.pid
        for p in psutil.Process().children(recursive=True)
        if not any(k in " ".join(p.cmdline()) for k in keep)
    }


def _max_diff(a: RBM, b: RBM) -> dict[str, float]:
    sa, sb = a.state_dict(), b.state_dict()
    return {k: float((sa[k] - sb[k]).abs().max()) for k in sa}


@pytest.mark.parametrize(
    "extra",
    [
        {},  # masked (listen/skip) data, momentum and weight decay: the defaults
        {"implicit_weight": 0.05, "centered": True, "momentum": 0.9},  # the exposure network's dense path
    ],
    ids=["masked", "implicit-centered"],
)
def test_two_processes_equal_one(matrix: InteractionMatrix, extra: dict[str, Any]) -> None:
    """Same global batch: 2 gloo processes give the weights of one `RBM.fit`, to float32 rounding, and
    the same per-epoch reconstruction error."""
    params = SMALL | extra
    X = matrix.as_played(0.05) if extra else matrix
    one_events: list[ev.Event] = []
    one = RBM(**params).fit(X, on_event=one_events.append)
    events: list[ev.Event] = []
    two = fit_data_parallel(RBM(**params), X, nproc=2, on_event=events.append)
    diffs = _max_diff(one, two)
    assert max(diffs.values()) < 2e-5, diffs
    assert float(one.state_dict()["components"].abs().max()) > 1e-2  # it trained (not both at zero)
    if extra:  # the implicit network learns the synthetic catalogue's weights on both sides alike
        assert list(one.groups_) == list(two.groups_) == ["artist", "album"]
        assert float(one._cat.abs().max()) > 1e-3
    # the loss relayed by rank 0 is the whole batch's, epoch by epoch
    losses = [e.loss for e in events if isinstance(e, ev.AfterEpoch)]
    one_losses = [e.loss for e in one_events if isinstance(e, ev.AfterEpoch)]
    assert len(losses) == 3 and np.allclose(losses, one_losses, rtol=1e-5)  # type: ignore[arg-type]
    assert isinstance(events[0], ev.BeforeFit) and isinstance(events[-1], ev.AfterFit)
    assert not events[-1].cancelled
    assert not torch.distributed.is_initialized()  # the group is gone; another run may start


def test_without_the_update_seam_too(matrix: InteractionMatrix, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other reduction (each rank steps, velocities averaged by row share) gives the same model: it is
    the path taken with an RBM that has no compute_update/apply_update."""
    from flowtui.core.cluster import rbm_ddp

    monkeypatch.setattr(rbm_ddp, "_has_update_seam", lambda net: False)
    one = RBM(**SMALL).fit(matrix)
    two = fit_data_parallel(RBM(**SMALL), matrix, nproc=2)
    diffs = _max_diff(one, two)
    assert max(diffs.values()) < 2e-5, diffs


def test_other_seeds_differ(matrix: InteractionMatrix) -> None:
    """The equality above is not an accident of a model that does not move: another seed differs."""
    a = RBM(**SMALL).fit(matrix)
    b = RBM(**(SMALL | {"random_state": 1})).fit(matrix)
    assert max(_max_diff(a, b).values()) > 1e-3


def test_cancel_stops_every_rank(matrix: InteractionMatrix) -> None:
    """Cancel after the first epoch: Cancelled, AfterFit(cancelled), no training process left behind."""
    before = _children()
    cancel = threading.Event()
    events: list[ev.Event] = []

    def on_event(e: ev.Event) -> None:
        events.append(e)
        if isinstance(e, ev.AfterEpoch):
            cancel.set()

    net = RBM(**(SMALL | {"n_iter": 50}))
    t0 = time.monotonic()
    with pytest.raises(ev.Cancelled):
        fit_data_parallel(net, matrix, nproc=2, on_event=on_event, cancel=cancel)
    assert time.monotonic() - t0 < 60
    assert [e.epoch for e in events if isinstance(e, ev.AfterEpoch)] == [1]
    assert isinstance(events[-1], ev.AfterFit) and events[-1].cancelled
    assert _children() <= before
    assert not torch.distributed.is_initialized()


def test_refusals(matrix: InteractionMatrix) -> None:
    with pytest.raises(DistributedError, match="nproc"):
        fit_data_parallel(RBM(**SMALL), matrix, nproc=0)
    with pytest.raises(ValueError, match="sparse"):
        fit_data_parallel(RBM(**SMALL), np.ones((4, 3), np.float32), nproc=2)
    with pytest.raises(ParamError, match="no MPS device"):  # a device this machine lacks: named first
        fit_data_parallel(RBM(**(SMALL | {"device": "mps"})), matrix, nproc=2)


def test_an_existing_device_without_a_backend_is_refused(
    matrix: InteractionMatrix, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    with pytest.raises(DistributedError, match=r"CPU \(gloo\) or CUDA"):
        fit_data_parallel(RBM(**(SMALL | {"device": "mps"})), matrix, nproc=2)


def test_row_ranges_cover_every_user_once() -> None:
    for n, k in ((120, 2), (7, 3), (2, 4), (19918, 5)):
        ranges = row_ranges(n, k)
        assert len(ranges) == k and ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        sizes = [hi - lo for lo, hi in ranges]
        assert max(sizes) - min(sizes) <= 1


def test_registry_swap_is_undone() -> None:
    from flowtui.core import registry
    from flowtui.core.cluster.rbm_ddp import DistributedRBMModel

    plain, names = registry.get_spec("rbm"), registry.model_names()
    with data_parallel_rbm(2):
        assert isinstance(registry.get_spec("rbm").build(None, "quick"), DistributedRBMModel)
        assert registry.model_names() == names  # the listing keeps its order
    assert registry.get_spec("rbm") is plain
    assert type(plain.build(None, "quick")) is not DistributedRBMModel
    with pytest.raises(DistributedError), data_parallel_rbm(0):
        pass


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_nccl_equals_one_process(matrix: InteractionMatrix) -> None:
    """On CUDA (nccl): one process equals RBM.fit; N = the GPUs trains and gives a close loss."""
    params = SMALL | {"device": "cuda"}
    one = RBM(**params).fit(matrix)
    via = fit_data_parallel(RBM(**params), matrix, nproc=1)
    assert max(_max_diff(one, via).values()) < 1e-4
    n = torch.cuda.device_count()
    if n >= 2:
        events: list[ev.Event] = []
        fit_data_parallel(RBM(**params), matrix, nproc=n, on_event=events.append)
        losses = [e.loss for e in events if isinstance(e, ev.AfterEpoch)]
        assert len(losses) == 3 and all(np.isfinite(losses))  # type: ignore[arg-type]


def test_a_rank_that_dies_stops_the_fit_in_one_line(matrix: InteractionMatrix) -> None:
    """Rank 1 killed between two epochs: rank 0 does not hang on the next all-reduce; DistributedError."""
    psutil = pytest.importorskip("psutil")
    killed: list[int] = []

    def on_event(e: ev.Event) -> None:
        if isinstance(e, ev.AfterEpoch) and not killed:
            me = psutil.Process()
            ranks = [p for p in me.children(recursive=True) if p.ppid() != me.pid]
            for p in ranks:
                p.kill()
                killed.append(p.pid)

    t0 = time.monotonic()
    with pytest.raises(DistributedError, match="training process 1 stopped"):
        fit_data_parallel(RBM(**(SMALL | {"n_iter": 50})), matrix, nproc=2, on_event=on_event)
    assert killed and time.monotonic() - t0 < 60
    assert not torch.distributed.is_initialized()

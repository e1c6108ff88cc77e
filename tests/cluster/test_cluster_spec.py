"""ClusterSpec parsing, lazy imports, connecting to a running scheduler, and DaskExecutor's contract."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from flowtui.core import events as ev
from flowtui.core.cluster.spec import ClusterSpec
from flowtui.core.errors import ParamError


@pytest.mark.parametrize(
    ("text", "kind", "n", "address"),
    [
        ("local:2", "local", 2, ""),
        (" local:16 ", "local", 16, ""),
        ("tcp://10.0.0.5:8786", "tcp", 0, "tcp://10.0.0.5:8786"),
        ("tcp://scheduler.example:8786", "tcp", 0, "tcp://scheduler.example:8786"),
        ("tcp://[::1]:8786", "tcp", 0, "tcp://[::1]:8786"),
    ],
)
def test_parse(text: str, kind: str, n: int, address: str) -> None:
    spec = ClusterSpec.parse(text)
    assert (spec.kind, spec.n_workers, spec.address) == (kind, n, address)
    assert ClusterSpec.parse(str(spec)) == spec


def test_parse_local_alone_means_one_worker_per_cpu() -> None:
    assert ClusterSpec.parse("local").n_workers >= 1


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("local:0", "N from 1 to 256"),
        ("local:1000", "N from 1 to 256"),
        ("local:two", "local:N"),
        ("tcp://host", "tcp://HOST:PORT"),
        ("tcp://host:70000", "port must be from 1 to 65535"),
        ("http://host:8786", "local:N"),
        ("", "local:N"),
    ],
)
def test_parse_refuses(text: str, match: str) -> None:
    with pytest.raises(ParamError, match=match):
        ClusterSpec.parse(text)


def test_importing_core_and_the_cluster_package_loads_no_dask() -> None:
    code = (
        "import sys, flowtui.core, flowtui.core.cluster, flowtui.core.run\n"
        "from flowtui.core.cluster import ClusterSpec\n"
        "ClusterSpec.parse('local:2')\n"
        "print(','.join(sorted(m for m in ('dask', 'distributed', 'lightgbm.dask') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ---------------------------------------------------------------------------------------------------------
# With a cluster


def _square(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x * x


def _cancels(x: int) -> int:
    if x == 1:
        raise ev.Cancelled("cancelled by the user")
    return x


def _slow(x: int) -> int:
    time.sleep(5)
    return x


def test_dask_executor_outcomes_in_task_order(session: Any) -> None:
    from flowtui.core.cluster.executor import DaskExecutor

    out = DaskExecutor(session.client).map(_square, [1, 2, 3, 4])
    assert out[:2] == [1, 4] and out[3] == 16
    assert isinstance(out[2], ValueError) and str(out[2]) == "three"
    assert DaskExecutor(session.client).map(_square, []) == []


def test_dask_executor_cancelled_propagates(session: Any) -> None:
    from flowtui.core.cluster.executor import DaskExecutor

    with pytest.raises(ev.Cancelled):
        DaskExecutor(session.client).map(_cancels, [0, 1, 2])
    flag = threading.Event()
    timer = threading.Timer(0.3, flag.set)
    timer.start()
    t0 = time.perf_counter()
    with pytest.raises(ev.Cancelled):
        DaskExecutor(session.client, cancel=flag).map(_slow, [1, 2])
    assert time.perf_counter() - t0 < 4  # did not wait for the tasks


def test_dask_executor_refuses_unpicklable_work(session: Any) -> None:
    from flowtui.core.cluster.executor import DaskExecutor

    lock = threading.Lock()
    with pytest.raises(TypeError, match="cannot send this work"):
        DaskExecutor(session.client).map(lambda t: lock.locked(), [1])


def test_tcp_spec_joins_a_running_scheduler_and_leaves_it_running(session: Any) -> None:
    address = session.client.scheduler.address  # tcp://127.0.0.1:PORT
    with ClusterSpec.parse(address).start() as joined:
        assert joined.cluster is None and joined.n_workers() == 2
    assert session.client.submit(sum, [2, 3]).result(timeout=30) == 5


def test_unreachable_scheduler_is_a_cluster_error() -> None:
    pytest.importorskip("distributed", reason="the cluster extra is not installed")
    from flowtui.core.cluster.spec import ClusterError

    with pytest.raises(ClusterError, match=re.escape("cannot reach the Dask scheduler at tcp://127.0.0.1:9")):
        ClusterSpec.parse("tcp://127.0.0.1:9").start(timeout=2)

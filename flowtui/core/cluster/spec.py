"""Which cluster a run uses: `local:N` starts one on this machine, `tcp://HOST:PORT` joins a running one.

`local:N` starts a `distributed.LocalCluster` of N worker PROCESSES with one thread each. Processes, not
threads, because (1) LightGBM's distributed training keeps its network state per process, so two LightGBM
ranks cannot share one process: `lightgbm.dask` with two thread-workers in one process would not train;
(2) the feature code is numpy and pandas, which hold the GIL in factorize/groupby/concat, so threads
would serialise much of it. One thread per worker because the machine this was written on has two cores:
two processes x one thread uses both with no oversubscription (LightGBM's OpenMP follows the worker's
thread count). The price is that data between stages crosses process boundaries (serialised), which a
real multi-machine cluster pays anyway. Each worker's memory limit is the machine's memory / N
(Dask's default), beyond which it spills to disk and then pauses.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, cast

from flowtui.core.cluster.lazy import DaskClient, distributed
from flowtui.core.errors import ParamError

__all__ = [
    "CLUSTER_EXTRA",
    "ClusterError",
    "ClusterSession",
    "ClusterSpec",
    "children_ignore_ctrl_c",
    "require_dask",
]

CLUSTER_EXTRA = 'pip install -e ".[cluster]"'
#: Most workers a `local:N` cluster may start (far above any one machine's useful count; refuses typos).
MAX_LOCAL_WORKERS = 256
_LOCAL = re.compile(r"local(?::(\d+))?")
_TCP = re.compile(r"tcp://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")


class ClusterError(RuntimeError):
    """The cluster could not be started or reached, or lacks what the run needs; one plain sentence."""


def require_dask() -> None:
    """Raise ClusterError naming the extra to install when dask.dataframe or distributed is missing."""
    try:
        importlib.import_module("dask.dataframe")
        importlib.import_module("distributed")
    except ImportError as exc:
        raise ClusterError(
            f"running on a cluster needs dask and distributed ({exc}): {CLUSTER_EXTRA}"
        ) from None


@dataclass(frozen=True)
class ClusterSpec:
    """`local:N` (N worker processes here) or `tcp://HOST:PORT` (a running Dask scheduler)."""

    kind: Literal["local", "tcp"]
    n_workers: int = 0
    address: str = ""

    @classmethod
    def parse(cls, text: str) -> ClusterSpec:
        """The spec written as `local:N`, `local` (one worker per CPU) or `tcp://HOST:PORT`; ParamError else."""
        s = text.strip()
        m = _LOCAL.fullmatch(s)
        if m:
            n = int(m.group(1)) if m.group(1) is not None else (os.cpu_count() or 1)
            if not 1 <= n <= MAX_LOCAL_WORKERS:
                raise ParamError(
                    f"cluster local:N needs N from 1 to {MAX_LOCAL_WORKERS} workers, got {text!r}"
                )
            return cls("local", n_workers=n)
        m = _TCP.fullmatch(s)
        if m:
            port = int(m.group(2))
            if not 1 <= port <= 65535:
                raise ParamError(f"cluster port must be from 1 to 65535, got {text!r}")
            return cls("tcp", address=s)
        raise ParamError(
            f"cluster must be local:N (N worker processes here) or tcp://HOST:PORT (a Dask scheduler), got {text!r}"
        )

    def __str__(self) -> str:
        return f"local:{self.n_workers}" if self.kind == "local" else self.address

    def start(self, *, timeout: float = 60.0) -> ClusterSession:
        """Start the local cluster or connect to the scheduler; the session closes what it started."""
        require_dask()
        Client, LocalCluster = distributed().Client, distributed().LocalCluster

        if self.kind == "local":
            try:
                with children_ignore_ctrl_c():
                    cluster = LocalCluster(
                        n_workers=self.n_workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=":0",
                        silence_logs=logging.CRITICAL,
                    )
            except Exception as exc:
                raise ClusterError(
                    f"could not start a local cluster of {self.n_workers} workers: {exc}"
                ) from exc
            try:
                client = Client(cluster, timeout=timeout)
                from flowtui.core.cluster.worker import StdoutToStderr

                client.register_plugin(StdoutToStderr(), name=StdoutToStderr.name)
            except Exception as exc:
                cluster.close()
                raise ClusterError(f"could not start the local cluster: {exc}") from exc
            return ClusterSession(client, cluster)
        try:
            client = Client(self.address, timeout=timeout)
        except Exception as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {self.address}: {exc}") from exc
        return ClusterSession(client, None)


@contextlib.contextmanager
def children_ignore_ctrl_c() -> Iterator[None]:
    """SIGINT ignored while child processes start (a local cluster's, the RBM's ranks): they inherit it
    (Python and asyncio keep an inherited SIG_IGN), so a ctrl-c in the terminal reaches only the caller,
    which cancels the run and closes what it started, instead of every child dying with a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _has_bokeh() -> bool:
    """Dask serves its dashboard only when bokeh is installed."""
    return importlib.util.find_spec("bokeh") is not None


class ClusterSession:
    """A Dask client, and the local cluster when this session started it (closed with the session)."""

    def __init__(self, client: DaskClient, cluster: Any | None = None) -> None:
        self.client = client
        self.cluster = cluster

    @classmethod
    def borrow(cls, client: DaskClient) -> ClusterSession:
        """A session around a client the caller owns: closing the session leaves the client open."""
        session = cls(client, None)
        session._borrowed = True
        return session

    _borrowed = False

    @property
    def owned(self) -> bool:
        """Whether closing this session closes the client (and the local cluster)."""
        return not self._borrowed

    def n_workers(self) -> int:
        """Workers connected now."""
        return len(cast(dict[str, Any], self.client.scheduler_info(n_workers=-1).get("workers", {})))

    def dashboard(self) -> str:
        """One line for the log: the dashboard's link, or why there is none."""
        info = cast(dict[str, Any], self.client.scheduler_info(n_workers=0))
        address = str(info.get("address", "?"))
        try:
            served = bool(self.client.run_on_scheduler(_has_bokeh))  # the status pages need bokeh there
        except Exception:
            served = False
        if not served:
            return (
                f"scheduler {address}; no dashboard (pip install bokeh where the scheduler runs to serve it)"
            )
        return f"Dask dashboard: {self.client.dashboard_link} (scheduler {address})"

    def close(self) -> None:
        """Close the client and stop the local cluster, when this session owns them (idempotent)."""
        if not self.owned:
            return
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()
            self.cluster = None

    def __enter__(self) -> ClusterSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

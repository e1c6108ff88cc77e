"""Waiting on cluster work without losing the cancel flag, and `DaskExecutor` for the run's executor seam.

The caller's `cancel` is a `threading.Event`, which cannot travel to a worker. `compute`/`persist` here
submit the work and poll the flag while they wait: when it is set, the futures are cancelled and
`events.Cancelled` is raised; nothing was written, since cluster work writes nothing but in-memory
results. Work that runs inside one long task (LightGBM's training) watches a `distributed.Event` instead,
which `CancelBridge` sets from the caller's flag, and which stops the boosting loop on every worker.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, cast

from flowtui.core import events as ev
from flowtui.core.cluster.lazy import DaskClient, distributed
from flowtui.core.cluster.source import RemoteDataError

__all__ = ["CancelBridge", "DaskExecutor", "compute", "persist"]

T = TypeVar("T")
R = TypeVar("R")
#: Seconds between two looks at the cancel flag while waiting on the cluster.
POLL = 0.1


def _raise_remote(exc: BaseException) -> None:
    """Re-raise a worker's error as the caller expects it (DataError, Cancelled), else as it is."""
    if isinstance(exc, RemoteDataError):
        raise exc.to_data_error() from None
    raise exc


def _wait(client: DaskClient, futures: list[Any], cancel: threading.Event | None) -> None:
    """Block until every future is finished; Cancelled (futures cancelled) when `cancel` is set."""
    wait = distributed().wait
    while True:
        if cancel is not None and cancel.is_set():
            client.cancel(futures, force=True)
            raise ev.Cancelled("cancelled by the user")
        try:
            wait(futures, timeout=POLL)
        except TimeoutError:
            continue
        return


def compute(client: DaskClient, collection: Any, cancel: threading.Event | None = None) -> Any:
    """The computed value of a Dask collection or scalar (a tuple of them: a tuple of values), gathered to
    the caller; cancellable. One graph: what the collections share is computed once."""
    many = isinstance(collection, tuple | list)
    futures = client.compute(list(collection) if many else [collection])
    _wait(client, futures, cancel)
    try:
        values = client.gather(futures)
    except Exception as exc:
        _raise_remote(exc)
    return tuple(values) if many else values[0]


def persist(client: DaskClient, collection: T, cancel: threading.Event | None = None) -> T:
    """`collection` computed and held in the workers' memory (nothing gathered); cancellable."""
    kept = client.persist(collection)
    futures = distributed().futures_of(kept)
    _wait(client, futures, cancel)
    for f in futures:
        if f.status == "error":
            exc = f.exception()
            _raise_remote(exc if exc is not None else RuntimeError("a cluster task failed"))
    return cast(T, kept)


class CancelBridge:
    """Sets a `distributed.Event` (named `self.name`) on the scheduler when the caller's `cancel` is set,
    so that long tasks on workers can stop themselves (`is_cancelled(name)`). `on_cancel` then runs after
    `grace` seconds if the bridge is still open (e.g. closing a local cluster whose tasks did not stop)."""

    def __init__(
        self,
        client: DaskClient,
        cancel: threading.Event | None,
        *,
        grace: float = 30.0,
        on_cancel: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.cancel = cancel
        self.grace = grace
        self.on_cancel = on_cancel
        self.name = f"flowtui-cancel-{uuid.uuid4().hex}"
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def _watch(self) -> None:
        assert self.cancel is not None
        while not self._closed.is_set():
            if self.cancel.wait(POLL):
                break
        if self._closed.is_set():
            return
        with contextlib.suppress(Exception):
            distributed().Event(self.name, client=self.client).set()
        if self._closed.wait(self.grace) or self.on_cancel is None:
            return
        with contextlib.suppress(Exception):
            self.on_cancel()

    def __enter__(self) -> CancelBridge:
        if self.cancel is not None:
            self._thread = threading.Thread(target=self._watch, name="flowtui-cancel-bridge", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            distributed().Event(self.name, client=self.client).clear()  # forget the scheduler-side event


def is_cancelled(name: str | None) -> bool:
    """On a worker: whether the run's `CancelBridge` was triggered (False off a cluster)."""
    if not name:
        return False
    try:
        return bool(distributed().Event(name).is_set())
    except (ValueError, RuntimeError):  # no client on this thread: not running on a cluster
        return False


class DaskExecutor:
    """An `Executor` (core/executor.py) whose tasks run on a Dask cluster, one future each.

    Outcomes come back in task order, a task's exception as its outcome; `events.Cancelled` raised by a
    task, or the caller's `cancel` flag, cancels the other futures and propagates. `fn` and the tasks
    are pickled to the workers: they must not hold a `threading.Event`, an open file or a callback into
    the caller (the closures of `core/run.py` do today: see docs/SCALE.md), and anything they write lands
    on the worker's disk.
    """

    def __init__(self, client: DaskClient, *, cancel: threading.Event | None = None) -> None:
        self.client = client
        self.cancel = cancel

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R | Exception]:
        if not tasks:
            return []
        try:
            futures = self.client.map(fn, list(tasks), pure=False)
        except Exception as exc:  # pickling fn or a task failed before anything ran
            raise TypeError(f"DaskExecutor cannot send this work to the cluster: {exc}") from exc
        _wait(self.client, futures, self.cancel)
        out: list[R | Exception] = []
        for fut in futures:
            if fut.status != "error":
                out.append(fut.result())
                continue
            error = fut.exception()
            if isinstance(error, ev.Cancelled):
                self.client.cancel(futures, force=True)
                raise error
            if isinstance(error, RemoteDataError):
                error = error.to_data_error()
            out.append(error if isinstance(error, Exception) else RuntimeError(str(error)))
        return out


@contextlib.contextmanager
def topic_events(client: DaskClient, topic: str, handler: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """Receive `log_event(topic, msg)` messages sent by workers while the block runs (msg dicts)."""

    def receive(event: Any) -> None:
        _, msg = event
        if isinstance(msg, dict):
            with contextlib.suppress(Exception):
                handler(msg)

    client.subscribe_topic(topic, receive)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(topic)

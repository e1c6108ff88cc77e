"""Where the fits of a run execute: the seam a cluster executor plugs into.

An executor maps a function over tasks and returns each task's outcome in order: its result, or the
exception it raised. `events.Cancelled` is never returned: it stops the map and propagates, so a cancel
reaches the caller at once. `InlineExecutor` runs tasks one after another in the calling thread (the
default); `ThreadExecutor` runs them on a thread pool. A Dask or torch.distributed executor implements the
same `map`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from flowtui.core.events import Cancelled

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs `fn` on every task; outcomes in task order, exceptions as values (Cancelled propagates)."""

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R | Exception]: ...


class InlineExecutor:
    """Each task in turn, in the calling thread."""

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R | Exception]:
        out: list[R | Exception] = []
        for task in tasks:
            try:
                out.append(fn(task))
            except Cancelled:
                raise
            except Exception as exc:
                out.append(exc)
        return out


class ThreadExecutor:
    """Tasks on a pool of `max_workers` threads (fns must share nothing mutable but thread-safe callbacks)."""

    def __init__(self, max_workers: int = 2) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R | Exception]:
        with ThreadPoolExecutor(self.max_workers) as pool:
            futures = [pool.submit(fn, task) for task in tasks]
            out: list[R | Exception] = []
            for fut in futures:
                exc = fut.exception()
                if isinstance(exc, Cancelled):
                    for other in futures:
                        other.cancel()
                    raise exc
                if exc is not None and not isinstance(exc, Exception):
                    raise exc
                out.append(exc if exc is not None else fut.result())
            return out

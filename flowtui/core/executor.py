"""Where the fits of a run execute: the seam a cluster executor plugs into.

An executor maps a function over tasks and returns each task's outcome in order: its result, or the
exception it raised. `events.Cancelled` is never returned: it stops the map and propagates, so a cancel
reaches the caller at once. `InlineExecutor` runs tasks one after another in the calling thread (the
default; a cluster run uses it too, since each of its fits drives the cluster from the caller); a Dask
executor (`flowtui.core.cluster.executor.DaskExecutor`) implements the same `map` with one task a future.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from flowtui.core.events import Cancelled

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs `fn` on every task; outcomes in task order, exceptions as values (Cancelled propagates)."""

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R | Exception]: ...


class InlineExecutor:
    """Each task in turn, in the calling thread.

    `propagate`: exception types that stop the map and reach the caller like `Cancelled` instead of
    becoming one task's outcome (a cluster run passes DataError: its rows are read lazily, by whichever
    fit first needs them, so a bad file is the run's error, not one model's)."""

    def __init__(self, *, propagate: tuple[type[Exception], ...] = ()) -> None:
        self.propagate: tuple[type[Exception], ...] = (Cancelled, *propagate)

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R | Exception]:
        out: list[R | Exception] = []
        for task in tasks:
            try:
                out.append(fn(task))
            except self.propagate:
                raise
            except Exception as exc:
                out.append(exc)
        return out

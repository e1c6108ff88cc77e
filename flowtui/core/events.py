"""Progress events and cancellation shared by every long-running engine function.

Engine loops take `on_event` (a callable receiving these frozen dataclasses) and `cancel`
(a `threading.Event`). The CLI turns events into a rich progress bar, the TUI into Messages.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn


@dataclass(frozen=True)
class Event:
    """Base class of all progress events."""


@dataclass(frozen=True)
class Progress(Event):
    """`done` of `total` units of `task` are finished (total may be None when unknown)."""

    task: str
    done: float
    total: float | None = None
    message: str = ""


@dataclass(frozen=True)
class BeforeFit(Event):
    """A model starts training."""

    model: str
    n_epochs: int | None = None


@dataclass(frozen=True)
class AfterEpoch(Event):
    """One epoch (or tree, or round) of `model` finished."""

    model: str
    epoch: int
    n_epochs: int
    loss: float | None = None
    metric: float | None = None
    elapsed: float = 0.0


@dataclass(frozen=True)
class AfterFit(Event):
    """A model finished training (or was cancelled)."""

    model: str
    seconds: float
    cancelled: bool = False


@dataclass(frozen=True)
class Log(Event):
    """A line of text worth showing the user (a sample size used, a fallback taken...)."""

    message: str
    level: str = "info"  # "info" | "warning"


@dataclass(frozen=True)
class Stage(Event):
    """A run enters a stage: "holdout" (the leaderboard), "final" (fits on all rows) or "done"."""

    stage: str


@dataclass(frozen=True)
class Saved(Event):
    """A model was fitted on all rows and saved to `path`."""

    model: str
    path: str


EventCallback = Callable[[Event], None]


class Cancelled(Exception):
    """Raised inside engine work when its cancel event is set; no partial files are left behind."""


class ModelCancelled(Exception):
    """One model of a run was cancelled by the user; the run goes on with the others."""


class LinkedEvent(threading.Event):
    """A cancel flag that is also set when its parent is: one model's cancel inside a whole run's cancel."""

    def __init__(self, parent: threading.Event | None, own: threading.Event) -> None:
        super().__init__()
        self.parent = parent
        self.own = own

    def is_set(self) -> bool:
        return self.own.is_set() or (self.parent is not None and self.parent.is_set())


def model_cancel(
    run_cancel: threading.Event | None, per_model: Mapping[str, threading.Event] | None, model: str
) -> threading.Event | None:
    """The cancel flag a model's fit watches: the run's, linked with the model's own flag when it has one."""
    own = (per_model or {}).get(model)
    return run_cancel if own is None else LinkedEvent(run_cancel, own)


def reraise_for_model(exc: Cancelled, run_cancel: threading.Event | None) -> NoReturn:
    """A Cancelled caught inside one model's fit: the run's cancel propagates, a model's own becomes
    `ModelCancelled` (the run records the model as cancelled and goes on)."""
    if run_cancel is not None and run_cancel.is_set():
        raise exc
    raise ModelCancelled("cancelled by the user") from exc


def emit(on_event: EventCallback | None, event: Event) -> None:
    """Send `event` to `on_event` if there is a listener."""
    if on_event is not None:
        on_event(event)


def check_cancel(cancel: threading.Event | None) -> None:
    """Raise `Cancelled` if `cancel` is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled by the user")

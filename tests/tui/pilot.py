"""Helpers the pilot tests share: the app on tiny data, waiting for its workers, waiting for a condition."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.clock import MockClock

from flowtui.tui.app import FlowApp, make_app


def tiny_app(tiny: tuple[Path, Path], models: Path, **kwargs: Any) -> FlowApp:
    """The app on the (train, test) pair `tiny`, models in `models`, a mock clock, on the CPU."""
    return make_app(tiny[0], tiny[1], models, clock=MockClock(), device="CPU", **kwargs)


async def settle(app: FlowApp, pilot) -> None:  # type: ignore[no-untyped-def]
    """Let every worker of the app finish, and the screen catch up."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def until(pilot, condition: Callable[[], bool], seconds: float = 8.0) -> None:  # type: ignore[no-untyped-def]
    """Let the app run until `condition()` holds (fails after `seconds`)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await pilot.pause(0.05)

"""A save killed hard at one of its steps: the fault injection both kinds of model folder are tested with."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from types import ModuleType


def crash_in_child(
    store: ModuleType, work: Callable[[], object], at: str | None, delay: float | None = None
) -> None:
    """Run `work` in a forked child that dies hard (no cleanup) when `store`'s save reaches step `at`
    (`store._fault_hook`), or is SIGKILLed after `delay` seconds."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            if at is not None:
                store._fault_hook = lambda name: os._exit(9) if name == at else None
            work()
        finally:
            os._exit(0)
    if delay is not None:
        time.sleep(delay)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)

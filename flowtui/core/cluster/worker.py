"""What runs on the workers of a local cluster besides the tasks (imports distributed: load it lazily)."""

from __future__ import annotations

import os
import sys
from typing import Any

from distributed import WorkerPlugin

__all__ = ["StdoutToStderr"]


class StdoutToStderr(WorkerPlugin):
    """The workers' standard output (the file descriptor, so native libraries too: LightGBM's network
    threads print there whatever its log level) goes to standard error. Local workers share the caller's
    stdout, which belongs to the caller's output (`--json`)."""

    name = "flowtui-stdout-to-stderr"

    def setup(self, worker: Any) -> None:
        sys.stdout.flush()
        os.dup2(2, 1)

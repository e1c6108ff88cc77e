"""Atomic writes for `flowtui.core.data`: a file is replaced whole or not at all.

`atomic_path` and `write_csv` delegate to `flowtui.core.safe_files`, which refuses outputs that are links,
pipes, devices, folders or read-only files, fsyncs the data and keeps a replaced file's permissions; here a
missing folder is created (as these names always did).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from flowtui.core import safe_files

__all__ = ["atomic_path", "write_csv"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` atomically.

    On an exception (a crash, a cancel) the temporary file is removed and `path` is untouched. A missing
    folder is created; an output that is not a regular file (a link, a pipe, a device, a folder) or is
    read-only is refused with `safe_files.UnsafePathError` (a DataError) before anything is written.
    """
    with safe_files.atomic_path(path, make_parents=True) as tmp:
        yield tmp


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write `frame` as CSV atomically (pyarrow's fast writer for all-numeric frames); see `atomic_path`."""
    safe_files.write_csv(frame, path, make_parents=True)

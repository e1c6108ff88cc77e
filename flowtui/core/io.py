"""Read and validate DSG17 CSV or parquet files; parquet cache; atomic writes.

PROVISIONAL minimal version: the data-layer work replaces the internals, keeping these signatures.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from flowtui.core.events import EventCallback
from flowtui.core.schema import DTYPES, TEST_COLUMNS, TRAIN_COLUMNS, DataError, DataWarning, Kind


@dataclass
class Dataset:
    """A validated DSG17 table with compact dtypes, and what validation found."""

    frame: pd.DataFrame
    kind: Kind
    path: Path | None = None
    warnings: list[DataWarning] = field(default_factory=list)
    from_cache: bool = False

    @property
    def n_rows(self) -> int:
        return len(self.frame)


def load_dataset(
    path: str | Path,
    *,
    kind: Kind | None = None,
    use_cache: bool = True,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> Dataset:
    """Load a train or test file (CSV, CSV.gz or parquet), validate it and return a Dataset.

    `kind` is detected from the header when None. Raises DataError for a refused file.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(p, "file not found")
    frame = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    if kind is None:
        kind = "test" if "sample_id" in frame.columns else "train"
    cols = TRAIN_COLUMNS if kind == "train" else TEST_COLUMNS
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(p, "missing required columns", expected=", ".join(missing))
    frame = frame[list(cols)].astype({c: DTYPES[c] for c in cols})
    return Dataset(frame=frame, kind=kind, path=p)


def from_frame(frame: pd.DataFrame, kind: Kind | None = None) -> Dataset:
    """Validate an in-memory frame (tests, the generator) the same way a file is validated."""
    if kind is None:
        kind = "test" if "sample_id" in frame.columns else "train"
    cols = TRAIN_COLUMNS if kind == "train" else TEST_COLUMNS
    return Dataset(
        frame=frame[list(cols)].astype({c: DTYPES[c] for c in cols}).reset_index(drop=True), kind=kind
    )


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` atomically.

    On an exception (a crash, a cancel) the temporary file is removed and `path` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write `frame` as CSV atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)

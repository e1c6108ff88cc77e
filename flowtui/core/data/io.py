"""Load and validate DSG17 train and test data: the public entry of `flowtui.core.data`'s I/O.

`load_dataset` reads a CSV, CSV.gz or parquet file (`reader`), applies the value rules (`validate`) and
keeps the result in the load cache (`cache`); `from_frame` applies the same rules to an in-memory frame.

Line numbers count the header as line 1 and the first data row as line 2; blank lines are skipped by the
parser and not counted.
"""

from __future__ import annotations

import csv
import threading
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from flowtui.core.data import cache, reader
from flowtui.core.data.cache import CACHE_VERSION
from flowtui.core.data.offenders import Source, to_compact
from flowtui.core.data.schema import DataWarning, Kind, columns_for, optional_columns
from flowtui.core.data.validate import DROPPABLE, drop_set, validate
from flowtui.core.errors import DataError
from flowtui.core.events import EventCallback, Log, Progress, check_cancel, emit

__all__ = [
    "CACHE_VERSION",
    "DROPPABLE",
    "Dataset",
    "check_test_users",
    "from_frame",
    "load_dataset",
]

#: Errors of a file that cannot be read at all (as opposed to one whose values break a rule).
_READ_ERRORS = (pa.ArrowException, OSError, EOFError, zlib.error, UnicodeError, csv.Error)


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

    def warning_counts(self) -> dict[str, int]:
        """{warning code: count}, in the order the warnings were found."""
        return {w.code: w.count for w in self.warnings}


def load_dataset(
    path: str | Path,
    *,
    kind: Kind | None = None,
    use_cache: bool = True,
    drop: Collection[str] = (),
    drop_bogus_timestamps: bool = False,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> Dataset:
    """Load a train or test file (CSV, CSV.gz or parquet), validate it and return a Dataset.

    `kind` is detected from the header when None (`sample_id` without `is_listened` means test).
    `drop` names warning codes (see `DROPPABLE`) whose rows are removed, reported as a `dropped_rows`
    warning; `drop_bogus_timestamps=True` adds "bogus_timestamp" and "future_timestamp". Raises DataError
    for a refused file and `Cancelled` when `cancel` is set. A damaged or unreadable cache entry is
    reported as a warning (a `Log` event) and rebuilt, never an error.
    """
    p = Path(path)
    drops = drop_set(drop, drop_bogus_timestamps)
    reader.check_file(p)
    check_cancel(cancel)
    entry: cache.Entry | None = None
    if use_cache:
        try:
            entry = cache.entry_for(p, drops)
        except OSError as exc:
            raise DataError(p, f"cannot read file: {reader.os_reason(exc)}") from None
        hit, problem = cache.read_cache(entry, kind)
        if problem is not None:
            emit(
                on_event,
                Log(f"{p}: ignoring the load cache ({problem}); reading the file again", level="warning"),
            )
        if hit is not None:
            emit(on_event, Progress("load", 3, 3, "from cache"))
            frame, cached_kind, cached_warnings = hit
            return Dataset(frame=frame, kind=cached_kind, path=p, warnings=cached_warnings, from_cache=True)
    emit(on_event, Progress("load", 0, 3, "parse"))
    parquet = reader.is_parquet(p)
    try:
        arrays, kind, warnings = reader.read_parquet(p, kind) if parquet else reader.read_csv(p, kind)
    except OSError as exc:
        raise DataError(p, f"cannot read file: {reader.os_reason(exc)}") from None
    except _READ_ERRORS as exc:
        raise DataError(p, f"cannot read file: {reader.first_line(exc)}") from None
    check_cancel(cancel)
    emit(on_event, Progress("load", 1, 3, "validate"))
    frame, value_warnings = validate(arrays, kind, Source(p, csv=not parquet), drops)
    ds = Dataset(frame=frame, kind=kind, path=p, warnings=warnings + value_warnings)
    check_cancel(cancel)
    if entry is not None:
        emit(on_event, Progress("load", 2, 3, "cache"))
        _store(entry, ds, on_event)
    emit(on_event, Progress("load", 3, 3, "done"))
    return ds


def _store(entry: cache.Entry, ds: Dataset, on_event: EventCallback | None) -> None:
    """Keep `ds` in the load cache unless its source changed while it was read; a failure is a warning."""
    if not cache.unchanged(entry):
        emit(
            on_event, Log(f"{entry.source}: the file changed while it was read; not cached", level="warning")
        )
        return
    try:
        cache.write_cache(entry, ds.frame, ds.kind, ds.warnings)
    except (OSError, pa.ArrowException) as exc:
        reason = reader.os_reason(exc) if isinstance(exc, OSError) else reader.first_line(exc)
        emit(
            on_event, Log(f"could not write the load cache in {entry.path.parent}: {reason}", level="warning")
        )


def from_frame(
    frame: pd.DataFrame,
    kind: Kind | None = None,
    *,
    drop: Collection[str] = (),
    name: str | None = None,
) -> Dataset:
    """Validate an in-memory frame with the same rules as a file; returns a copy with compact dtypes.

    Errors and warnings locate offenders by row position (`row 0` is the first row); `name` labels the
    frame in messages. Extra columns are left out of the result and reported as a warning; a train
    frame's `plays` column is kept (finite numbers >= 0).
    """
    cols = [str(c) for c in frame.columns]
    kind = reader.detect_kind(name, cols, kind)
    required = columns_for(kind)
    optional = optional_columns(kind, cols)
    warnings = reader.extra_column_warning(cols, (*required, *optional))
    arrays: dict[str, pa.ChunkedArray] = {}
    for c in required:
        s = frame[c]
        try:
            arr = pa.array(s, from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError):
            arr = pa.array(s.astype(str).to_numpy(), type=pa.string())
        arrays[c] = pa.chunked_array([arr])
    src = Source(Path(name) if name else None, csv=False)
    converted = {c: to_compact(c, a, src) for c, a in arrays.items()}
    for c in optional:
        try:
            raw = pa.array(frame[c], from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError):
            raw = pa.array(frame[c].astype(str).to_numpy(), type=pa.string())
        converted[c] = reader.weight_column(c, raw, src)
    out, value_warnings = validate(converted, kind, src, drop_set(drop, False))
    return Dataset(frame=out, kind=kind, path=None, warnings=warnings + value_warnings)


def check_test_users(train: Dataset, test: Dataset) -> list[DataWarning]:
    """A warning for test users who have no row in `train` (cold start); empty when all have history."""
    test_users = test.frame["user_id"].to_numpy()
    missing = ~np.isin(test_users, train.frame["user_id"].to_numpy())
    n = int(missing.sum())
    if n == 0:
        return []
    examples = tuple(str(u) for u in np.unique(test_users[missing])[:5])
    return [
        DataWarning(
            "test_user_without_history",
            "test rows whose user has no train history",
            n,
            "user_id",
            examples,
        )
    ]

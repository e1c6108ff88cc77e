"""Train rows for a cluster: a folder of parquet or CSV parts, or one file, read by the workers themselves.

A folder's parts (`*.parquet`, `*.pq`, `*.csv`, `*.csv.gz`, one format per folder, in name order) become one
partition each, loaded and checked on a worker by the same `load_dataset` as on one machine (compact
dtypes; a refused part raises DataError naming the part, its line and column). One big CSV is cut into
blocks of `blocksize` bytes, one big parquet file into its row groups; each block is checked by
`from_frame`'s rules (a refusal names the file and the block; a cell that is not an integer at all is
reported by the CSV parser, without its line: check such a file with `flowtui data validate`, or give the
cluster parts). The rows keep their order: file by file,
block by block. Each row gets `_row`, its position in that order as (partition << 40) + position, which is
how the features of a row are matched with the single-machine ones and how results are put back in order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd

from flowtui.core.cluster.lazy import DaskFrame, dask, dask_dataframe
from flowtui.core.data.schema import DTYPES, TRAIN_COLUMNS
from flowtui.core.errors import DataError

__all__ = ["ROW", "RemoteDataError", "list_parts", "raw_meta", "read_train", "with_row_ids"]

ROW = "_row"
#: Bits of `_row` that hold the position inside a partition (2**40 rows a partition at most).
_ROW_BITS = 40
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz")
DEFAULT_BLOCKSIZE = 64_000_000

P = ParamSpec("P")
R = TypeVar("R")


class RemoteDataError(Exception):
    """A DataError raised on a worker, in a form that survives pickling (DataError's own does not);
    `to_data_error()` rebuilds it on the caller's side."""

    def __init__(self, fields: dict[str, Any]) -> None:
        super().__init__(fields)
        self.fields = fields

    @classmethod
    def of(cls, exc: DataError) -> RemoteDataError:
        keys = ("line", "column", "expected", "found", "examples", "count")
        return cls({"path": exc.path, "message": exc.message, **{k: getattr(exc, k) for k in keys}})

    def to_data_error(self) -> DataError:
        f = dict(self.fields)
        return DataError(f.pop("path"), f.pop("message"), **f)

    def __str__(self) -> str:
        return str(self.to_data_error())


def portable_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a function run on workers so that a DataError reaches the caller (as RemoteDataError)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DataError as exc:
            raise RemoteDataError.of(exc) from None

    return wrapper


def raw_meta() -> pd.DataFrame:
    """An empty frame with the train columns in their compact dtypes."""
    return pd.DataFrame({c: np.empty(0, dtype=DTYPES[c]) for c in TRAIN_COLUMNS})


def list_parts(path: str | Path) -> list[Path]:
    """The part files of `path` (a folder: its parquet or CSV parts in name order; a file: itself)."""
    p = Path(path)
    if p.is_file():
        if not p.name.endswith(PARQUET_SUFFIXES + CSV_SUFFIXES):
            raise DataError(
                p, "not a parquet or CSV file", expected="a name ending in .parquet, .pq, .csv, .csv.gz"
            )
        return [p]
    if not p.is_dir():
        raise DataError(p, "no such file or folder")
    parts = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(PARQUET_SUFFIXES + CSV_SUFFIXES))
    if not parts:
        raise DataError(
            p, "the folder holds no parquet or CSV parts", expected="*.parquet, *.pq, *.csv or *.csv.gz"
        )
    kinds = {f.name.endswith(PARQUET_SUFFIXES) for f in parts}
    if len(kinds) > 1:
        raise DataError(p, "the folder mixes parquet and CSV parts", expected="one format per folder")
    return parts


@portable_errors
def _load_part(path: str) -> pd.DataFrame:
    """One part, loaded and checked on a worker exactly as `load_dataset` loads a train file."""
    from flowtui.core.data.io import load_dataset

    return load_dataset(path, kind="train", use_cache=False).frame


@portable_errors
def _check_block(
    frame: pd.DataFrame, path: str, partition_info: dict[str, Any] | None = None
) -> pd.DataFrame:
    """A block of one big file checked by the in-memory rules (compact dtypes; DataError names the block)."""
    from flowtui.core.data.io import from_frame

    block = partition_info["number"] if partition_info else 0
    return from_frame(frame.reset_index(drop=True), kind="train", name=f"{path} (block {block})").frame


def read_train(path: str | Path, *, blocksize: int = DEFAULT_BLOCKSIZE) -> DaskFrame:
    """The train rows of `path` as a Dask DataFrame in the file order, with `_row` (see the module doc)."""
    dd = dask_dataframe()

    parts = list_parts(path)
    meta = raw_meta()
    single = parts[0]
    if len(parts) == 1 and single.name.endswith(CSV_SUFFIXES) and single.stat().st_size > blocksize:
        if single.name.endswith(".gz"):
            frame = dd.from_map(_load_part, [str(single)], meta=meta)  # gzip cannot be split
        else:
            raw = dd.read_csv(
                str(single),
                blocksize=blocksize,
                usecols=list(TRAIN_COLUMNS),
                dtype=dict.fromkeys(TRAIN_COLUMNS, "int64"),
            )
            frame = raw.map_partitions(_check_block, str(single), meta=meta)
    elif len(parts) == 1 and single.name.endswith(PARQUET_SUFFIXES):
        raw = dd.read_parquet(str(single), columns=list(TRAIN_COLUMNS), split_row_groups=True)
        frame = raw.map_partitions(_check_block, str(single), meta=meta)
    else:
        frame = dd.from_map(_load_part, [str(f) for f in parts], meta=meta)
    return with_row_ids(frame)


def _add_row_ids(frame: pd.DataFrame, partition_info: dict[str, Any] | None = None) -> pd.DataFrame:
    number = partition_info["number"] if partition_info else 0
    rows = (np.int64(number) << np.int64(_ROW_BITS)) + np.arange(len(frame), dtype=np.int64)
    return frame.reset_index(drop=True).assign(**{ROW: rows})


def with_row_ids(frame: DaskFrame) -> DaskFrame:
    """`frame` with `_row` (partition << 40 + position): sorting by it restores the input order."""
    meta = frame._meta.assign(**{ROW: np.empty(0, dtype=np.int64)})
    return frame.map_partitions(_add_row_ids, meta=meta)


def _row_hashes(part: pd.DataFrame) -> pd.DataFrame:
    hashes = pd.util.hash_pandas_object(part.drop(columns=[ROW]), index=False).to_numpy()
    return pd.DataFrame({ROW: part[ROW].to_numpy(np.int64), "hash": hashes})


def _digest(parts: list[pd.DataFrame]) -> str:
    import hashlib

    both = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({ROW: [], "hash": []})
    hashes = both["hash"].to_numpy(np.uint64)[np.argsort(both[ROW].to_numpy(np.int64), kind="stable")]
    return f"{len(hashes)}:{hashlib.sha1(hashes.tobytes()).hexdigest()[:16]}"


def fingerprint(rows: DaskFrame) -> Any:
    """A Delayed str: `modelfiles.fingerprint` of the rows in input (`_row`) order, whatever their partitioning
    (the same value as on one machine for the same columns and dtypes). Each partition hashes its rows;
    one task sorts the (row, hash) pairs, 16 bytes a row, and digests them."""
    delayed = dask().delayed
    return delayed(_digest)([delayed(_row_hashes)(p) for p in rows.to_delayed()])

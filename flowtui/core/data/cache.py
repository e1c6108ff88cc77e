"""The load cache: a validated frame and its warnings, kept to make the next load of the same file fast.

One Arrow IPC file (uncompressed, one record batch) per source version under `paths.cache_dir()`. Arrow IPC
rather than parquet: on a 7.5M-row train, parquet's encode and decode cost about 1 s to write and 0.4 s to
read, against 0.2 s and 0.1 s for IPC, and the 10x reload target needs the latter.

Never stale. An entry's name is a hash of the source's resolved path, device, inode, size, mtime_ns and
ctime_ns (any write, `touch -r` included, moves the ctime), of a blake2b digest of sampled content (the
first and last 64 KiB and 64 blocks of 64 KiB spread evenly across the file: an edit that keeps size and
both times still changes the key when it lands in a sampled block) and of the load options that change
the frame (`drop`). The file kind is not part of the key: `load_dataset(p)` and `load_dataset(p,
kind="train")` give the same frame and share one entry (an entry of the other kind is a miss).
A source that changes while it is parsed is not cached.

Never damaged. The Arrow file is followed by a trailer, `_MAGIC` and a 32-byte blake2b digest of the CRC-32
of every 4 MiB chunk of the Arrow bytes (chunks checked in parallel threads; CRC-32 runs at memory speed,
where a blake2b of the whole 330 MB would cost more than the reload itself). It is verified before any
byte is used: a missing trailer, a digest mismatch or unreadable Arrow data is a miss with a reason,
which `load_dataset` reports as a warning (a Log event) before it parses again and rewrites the entry.

Private when the source is. An entry gets the read permissions of its source and is writable by its owner
only; a new cache folder is made 0700. Entries are written beside their final name and renamed into place
(never truncated in place, so a memory map of an older entry stays valid); older versions of the same
source are removed when a new one is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from flowtui.core import paths
from flowtui.core.data.schema import DTYPES, PLAYS, PLAYS_DTYPE, DataWarning, Kind, columns_for

#: Bump when validation rules or the cache layout change: old caches are then rebuilt.
CACHE_VERSION = 4  # 4: a train file's optional `plays` column is kept
_BLOCK = 64 * 1024
_N_BLOCKS = 64
_MAGIC = b"FLOWSUM1"
_DIGEST_SIZE = 32
_TRAILER = len(_MAGIC) + _DIGEST_SIZE
_CHUNK = 4 << 20
_MAX_THREADS = 8

#: What the cache holds: the validated frame, its kind and the warnings validation found.
Cached = tuple[pd.DataFrame, Kind, list[DataWarning]]


@dataclass(frozen=True)
class Entry:
    """The cache entry of one version of a source file."""

    path: Path  # the cache file
    source: Path
    ident: tuple[int, int, int, int, int]  # device, inode, size, mtime_ns, ctime_ns of the source
    mode: int  # permission bits of the cache file


def _identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def sample_digest(fd: int, size: int) -> bytes:
    """blake2b of `size` and sampled blocks of an open file: all of it when small, else the head, the tail
    and `_N_BLOCKS` blocks of `_BLOCK` bytes spread evenly between them."""
    h = hashlib.blake2b(digest_size=16)
    h.update(size.to_bytes(8, "little"))
    if size <= (_N_BLOCKS + 2) * _BLOCK:
        offsets: Sequence[int] = range(0, size, _BLOCK)
    else:
        last = size - _BLOCK
        offsets = [round(i * last / (_N_BLOCKS + 1)) for i in range(_N_BLOCKS + 2)]
    for off in offsets:
        h.update(os.pread(fd, _BLOCK, off))
    return h.digest()


def entry_for(p: Path, drop: frozenset[str]) -> Entry:
    """The cache entry for this exact version of `p` (a regular file): its name changes when the file does.

    Raises OSError when `p` cannot be opened or is not a regular file (never opened then: no blocking on
    a named pipe)."""
    fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{p} is not a regular file")
        sample = sample_digest(fd, st.st_size)
    finally:
        os.close(fd)
    resolved = os.path.realpath(p)
    meta = [CACHE_VERSION, resolved, *_identity(st), sample.hex()]
    ident = hashlib.blake2b(json.dumps(meta).encode(), digest_size=12).hexdigest()
    opts = hashlib.blake2b(json.dumps(sorted(drop)).encode(), digest_size=4).hexdigest()
    prefix = hashlib.blake2b(resolved.encode(), digest_size=8).hexdigest()
    mode = (stat.S_IMODE(st.st_mode) & 0o444) | 0o600
    return Entry(paths.cache_dir() / f"{prefix}-{ident}-{opts}.arrow", p, _identity(st), mode)


def unchanged(entry: Entry) -> bool:
    """Is the source still the version `entry` was made for (same inode, size and times)?"""
    try:
        return _identity(os.stat(entry.source)) == entry.ident
    except OSError:
        return False


def _parallel(fn: Callable[[int], int], n_chunks: int) -> list[int]:
    """`fn(i)` for every chunk index, in threads when there are several (zlib and pread release the GIL)."""
    n_threads = min(_MAX_THREADS, os.cpu_count() or 1, n_chunks)
    if n_threads <= 1:
        return [fn(i) for i in range(n_chunks)]
    with ThreadPoolExecutor(n_threads, thread_name_prefix="flowtui-cache-crc") as pool:
        return list(pool.map(fn, range(n_chunks)))


def _digest(size: int, crcs: list[int]) -> bytes:
    h = hashlib.blake2b(digest_size=_DIGEST_SIZE)
    h.update(size.to_bytes(8, "little"))
    h.update(np.asarray(crcs, dtype="<u4").tobytes())
    return h.digest()


def body_digest(view: memoryview) -> bytes:
    """The checksum kept in an entry's trailer: blake2b of the length and of the CRC-32 of every 4 MiB."""
    n_chunks = max(1, -(-len(view) // _CHUNK))
    return _digest(len(view), _parallel(lambda i: zlib.crc32(view[i * _CHUNK : (i + 1) * _CHUNK]), n_chunks))


def file_digest(path: Path) -> bytes:
    """`body_digest` of a whole file, read in chunks (not mapped: its pages do not count as this
    process's memory)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        n_chunks = max(1, -(-size // _CHUNK))
        return _digest(size, _parallel(lambda i: zlib.crc32(os.pread(fd, _CHUNK, i * _CHUNK)), n_chunks))
    finally:
        os.close(fd)


def read_cache(entry: Entry, kind: Kind | None) -> tuple[Cached | None, str | None]:
    """(the cached (frame, kind, warnings), None) on a hit; (None, None) on a plain miss (no entry, or one
    of another kind than `kind`); (None, reason) when the entry is damaged and must be rebuilt.

    Only a regular file is opened: a named pipe, a device or a link where the entry should be is a damaged
    entry (opening a pipe would block forever), which the next write replaces."""
    try:
        st = os.lstat(entry.path)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot read it: {exc}"
    if not stat.S_ISREG(st.st_mode):
        return None, "not a regular file"
    try:
        # Memory-mapped: the one copy made is into the frame's own (writable) arrays.
        with pa.memory_map(str(entry.path), "r") as f:
            return _read_mapped(f.read_buffer(), kind)
    except FileNotFoundError:
        return None, None
    except (OSError, pa.ArrowException) as exc:
        return None, f"cannot read it: {exc}"


def _read_mapped(buf: pa.Buffer, kind: Kind | None) -> tuple[Cached | None, str | None]:
    view = memoryview(buf)
    if len(view) <= _TRAILER or bytes(view[-_TRAILER:-_DIGEST_SIZE]) != _MAGIC:
        return None, "no checksum trailer (truncated or not a flowtui cache file)"
    body = view[:-_TRAILER]
    if body_digest(body) != bytes(view[-_DIGEST_SIZE:]):
        return None, "checksum mismatch"
    try:
        table = ipc.open_file(buf.slice(0, len(body))).read_all()
        meta = json.loads((table.schema.metadata or {})[b"flowtui"])
        cached_kind: Kind = meta["kind"]
        cols = columns_for(cached_kind)
        if cached_kind == "train" and table.column_names[-1:] == [PLAYS]:
            cols = (*cols, PLAYS)
        if meta["version"] != CACHE_VERSION or tuple(table.column_names) != cols:
            return None, "written by another version of flowtui"
        if kind is not None and kind != cached_kind:
            return None, None
        arrays: dict[str, np.ndarray] = {}
        for c in cols:
            col = table.column(c)
            dtype = PLAYS_DTYPE if c == PLAYS else DTYPES[c]
            if col.type != pa.from_numpy_dtype(dtype) or col.null_count:
                return None, f"unexpected column {c!r}"
            arrays[c] = np.array(col.to_numpy(), copy=True)
        del table, col
        warnings = [DataWarning(**{**w, "examples": tuple(w["examples"])}) for w in meta["warnings"]]
    except (pa.ArrowException, KeyError, TypeError, ValueError) as exc:
        return None, f"unreadable Arrow data ({type(exc).__name__})"
    return (pd.DataFrame(arrays, copy=False), cached_kind, warnings), None


def _make_folder(folder: Path) -> None:
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)


def write_cache(entry: Entry, frame: pd.DataFrame, kind: Kind, warnings: list[DataWarning]) -> None:
    """Write the entry (Arrow IPC, then its checksum trailer) and rename it into place; then remove
    older versions of the same source. Raises OSError or ArrowException when it cannot be written."""
    meta = {"version": CACHE_VERSION, "kind": kind, "warnings": [asdict(w) for w in warnings]}
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({"flowtui": json.dumps(meta)})
    folder = entry.path.parent
    _make_folder(folder)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    tmp = folder / f".{entry.path.name}.{secrets.token_hex(4)}.tmp"
    os.close(os.open(tmp, flags, 0o600))
    try:
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=max(1, table.num_rows))
        del table
        digest = file_digest(tmp)
        with open(tmp, "ab") as out:
            out.write(_MAGIC + digest)
        os.chmod(tmp, entry.mode)
        os.replace(tmp, entry.path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _evict_older(entry)


def _evict_older(entry: Entry) -> None:
    """Remove the entries of other versions of the same source (other options of this version stay)."""
    prefix, ident, _ = entry.path.name.split("-", 2)
    for old in entry.path.parent.glob(f"{prefix}-*.arrow"):
        parts = old.name.split("-")
        if len(parts) < 3 or parts[1] != ident:
            with contextlib.suppress(OSError):
                old.unlink()

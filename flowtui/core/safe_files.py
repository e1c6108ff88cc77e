"""Safe writes: every file and folder flowtui writes goes through here, so no output destroys what is not its.

Files (`atomic_path`, `atomic_write`, `write_csv`): the data goes to a temporary file in the target's folder,
is flushed to disk (fsync), then `os.replace`s the target in one step; a crash or a cancel leaves the old
file whole. A replaced file keeps its permissions; a new one gets those a plain `open()` would give.

What is refused (`UnsafePathError`, a `DataError`: the CLI exits 2 with one line naming the path and what
it is). flowtui replaces only regular files, so it refuses an output path that is:
- a symbolic link (also a broken or looping one): flowtui never writes through a link nor replaces the link
  with a file; give the link's target instead, or remove the link;
- a named pipe (FIFO), a character or block device (`/dev/full`, `/dev/null`), a socket, or a folder;
- a read-only file, or a file in a folder that is missing (unless the caller asks for it to be created),
  is not a folder, or is read-only.

Folders: `exchange` swaps two paths in one step where the system can (Linux's
`renameat2(RENAME_EXCHANGE)`), and `folder_lock` serialises the writers of a folder `DIR/NAME` with an
`fcntl.flock` on `DIR/.NAME.lock`, which never waits: a second writer gets `FolderBusyError` at once. How a
model folder is written beside its target and swapped in is `flowtui.core.modelfiles.swap`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import secrets
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pandas as pd

from flowtui.core.errors import DataError

__all__ = [
    "FolderBusyError",
    "FolderLock",
    "UnsafePathError",
    "WriteError",
    "atomic_path",
    "atomic_write",
    "check_input_file",
    "check_output_dir",
    "check_output_path",
    "describe",
    "exchange",
    "file_sha256",
    "folder_lock",
    "fsync_dir",
    "write_csv",
    "write_error",
]


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of the file at `path` (read in 1 MiB chunks): the checksums of saved model files."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class UnsafePathError(DataError):
    """A path flowtui refuses to write to or read from; `str(err)` is one line naming it and what it is."""

    def __init__(self, path: str | Path, message: str) -> None:
        super().__init__(path, message)


class FolderBusyError(UnsafePathError):
    """Another writer (process or thread) holds the folder's lock."""


class WriteError(DataError):
    """An output that could not be written (disk full, I/O error...): names the output, never the
    temporary file it was being written to; the output is left as it was."""

    def __init__(self, path: str | Path, message: str) -> None:
        super().__init__(path, message)


def write_error(target: Path, temporary: Path, exc: OSError) -> WriteError:
    """`exc`, raised while writing `temporary` for `target`, as a WriteError naming `target` only."""
    return WriteError(target, "cannot write: " + _os_reason(exc).replace(str(temporary), str(target)))


# ---------------------------------------------------------------------------------------------------------
# What is at a path


def describe(path: str | Path) -> str | None:
    """What is at `path` without following a final symbolic link ("a file", "a folder", "a named pipe
    (FIFO)", "a character device", "a symbolic link loop"...), or None when nothing is there.

    Raises UnsafePathError when the path cannot be looked at (a parent is a file, a loop or unreadable)."""
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise UnsafePathError(p, "a part of this path is not a folder") from None
    except OSError as exc:
        raise UnsafePathError(p, _os_reason(exc)) from None
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        try:
            os.stat(p)
        except FileNotFoundError:
            return "a broken symbolic link"
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "a symbolic link loop"
        return "a symbolic link"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop in this path"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENOTDIR:
        return "a part of this path is not a folder"
    return exc.strerror or str(exc)


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def _check_folder(folder: Path, *, create: bool, what: str = "folder") -> None:
    """`folder` is (or, with `create`, can be made) a writable folder; UnsafePathError otherwise."""
    kind = describe(folder)
    if kind is None:
        if not create:
            raise UnsafePathError(folder, f"{what} does not exist")
        if folder.parent == folder:
            raise UnsafePathError(folder, f"{what} does not exist")
        _check_folder(folder.parent, create=True)
        return
    if kind == "a symbolic link":  # a link to a folder is a fine place to write into
        if not folder.is_dir():
            raise UnsafePathError(folder, f"is a symbolic link to something that is not a folder ({what})")
    elif kind != "a folder":
        raise UnsafePathError(folder, f"is {kind}, not a folder")
    if not _writable(folder):
        raise UnsafePathError(folder, f"{what} is read-only (cannot create files in it)")


def check_output_path(path: str | Path, *, make_parents: bool = False) -> Path:
    """Check that a regular file may be written at `path`; returns it as a Path.

    Refuses (UnsafePathError) a symbolic link (flowtui never writes through links: give the target), a
    named pipe, a device, a socket, a folder, a read-only file, and a path whose folder is missing (unless
    `make_parents`), not a folder, or read-only. Nothing is created or changed.
    """
    p = Path(path)
    if str(path) == "" or p.name in ("", ".", ".."):
        raise UnsafePathError(p, "is not a file name")
    try:
        _check_folder(p.parent, create=make_parents)
    except UnsafePathError as exc:
        raise UnsafePathError(p, f"cannot write here ({exc.one_line()})") from None
    kind = describe(p)
    if kind is None:
        return p
    if kind != "a file":
        links = "" if "link" not in kind else " (flowtui does not write through links: give its target)"
        raise UnsafePathError(p, f"is {kind}; flowtui replaces only regular files{links}")
    # No write bit at all is read-only for everyone, root included (who may write anything): the file
    # would be replaced by a rename, which file modes do not stop.
    if not os.access(p, os.W_OK) or not os.stat(p).st_mode & 0o222:
        raise UnsafePathError(p, "is a read-only file; flowtui will not replace it")
    return p


def check_output_dir(path: str | Path) -> Path:
    """Check that `path` is a writable folder or can be created as one (its parents too); returns it."""
    _check_folder(Path(path), create=True)
    return Path(path)


def check_input_file(path: str | Path, what: str = "file") -> Path:
    """Check that `path` is a readable regular file (a link to one is fine); returns it.

    A missing file is "not found"; a folder, device, named pipe (reading one could block forever),
    broken link or link loop is named as what it is."""
    p = Path(path)
    kind = describe(p)
    if kind is None:
        raise UnsafePathError(p, f"{what} not found")
    if kind == "a symbolic link":
        if p.is_file():
            kind = "a file"
        else:
            kind = describe(p.resolve()) or "a broken symbolic link"
            kind = f"a symbolic link to {kind}"
    if kind != "a file":
        raise UnsafePathError(p, f"is {kind}, not a {what}")
    if not os.access(p, os.R_OK):
        raise UnsafePathError(p, f"{what} is not readable (permission denied)")
    return p


# ---------------------------------------------------------------------------------------------------------
# Atomic files


def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entries (renames, new files) to disk; best effort where a system cannot."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_temp(target: Path) -> Path:
    """A new empty file `.NAME.XXXXXXXX.tmp` beside `target`, created with mode 0666 less the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask: no os.umask() race
        except FileExistsError:
            continue
        except OSError as exc:
            raise UnsafePathError(target.parent, f"cannot create a file here: {_os_reason(exc)}") from None
        os.close(fd)
        return tmp
    raise UnsafePathError(target.parent, "cannot find a free temporary file name")  # pragma: no cover


@contextlib.contextmanager
def atomic_path(path: str | Path, *, make_parents: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path` for the caller to write; on success it replaces `path`.

    The path is checked first (`check_output_path`: no links, pipes, devices, folders, read-only files).
    On success the temporary file is fsynced, given the replaced file's permissions (or those of a new
    file), checked again against a link or pipe put there meanwhile, and renamed over `path`. On an
    exception (a crash, a cancel) it is removed and `path` is untouched; an OSError while writing (a full
    disk) becomes a WriteError naming `path`. `make_parents` creates a missing
    folder (and its parents).
    """
    target = check_output_path(path, make_parents=make_parents)
    if make_parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(os.stat(target).st_mode) if describe(target) == "a file" else None
    tmp = _create_temp(target)
    try:
        try:
            yield tmp
            _fsync_file(tmp)
            if mode is not None:
                os.chmod(tmp, mode)
        except OSError as exc:  # a full disk, an I/O error: say so about the output, not the temporary file
            raise write_error(target, tmp, exc) from None
        check_output_path(target)  # a link or pipe may have appeared while we wrote
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise write_error(target, tmp, exc) from None
        fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_write(
    path: str | Path, *, encoding: str = "utf-8", make_parents: bool = False
) -> Iterator[TextIO]:
    """Yield a text file to write; on success it replaces `path` atomically (see `atomic_path`)."""
    with atomic_path(path, make_parents=make_parents) as tmp, tmp.open("w", encoding=encoding) as fh:
        yield fh


def write_csv(frame: pd.DataFrame, path: str | Path, *, make_parents: bool = False) -> None:
    """Write `frame` as CSV atomically (pyarrow's fast writer for all-numeric frames); see `atomic_path`."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    numeric = all(
        pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in frame.dtypes
    )
    with atomic_path(path, make_parents=make_parents) as tmp:
        if numeric and len(frame.columns) > 0:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            pacsv.write_csv(
                table, tmp, write_options=pacsv.WriteOptions(quoting_style="none", quoting_header="none")
            )
        else:
            frame.to_csv(tmp, index=False)


# ---------------------------------------------------------------------------------------------------------
# Folders: the atomic exchange of two paths, the write lock


def lock_file(target: Path) -> Path:
    """The lock file of folder `target`: `.NAME.lock` beside it (kept; an empty file)."""
    return target.with_name(f".{target.name}.lock")


# renameat2(2) with RENAME_EXCHANGE swaps two paths atomically (Linux 3.15+, glibc 2.28+).
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_renameat2: Callable[..., int] | None = None
_renameat2_looked_up = False
#: Tests set this to False to exercise the portable two-rename swap.
EXCHANGE_ENABLED = True


def exchange(a: Path, b: Path) -> bool:
    """Swap paths `a` and `b` in one step; False where the system or file system cannot."""
    global _renameat2, _renameat2_looked_up
    if not EXCHANGE_ENABLED or not sys.platform.startswith("linux"):
        return False
    if not _renameat2_looked_up:
        _renameat2_looked_up = True
        with contextlib.suppress(OSError, AttributeError):
            fn = ctypes.CDLL(None, use_errno=True).renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            fn.restype = ctypes.c_int
            _renameat2 = fn
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


@dataclass
class FolderLock:
    """A held folder lock. `fresh`: this holder took it (no other holder in this process), so no writer of
    the folder is running anywhere and leftovers may be cleaned. `mutex` serialises this process's writers
    that share the lock."""

    key: str
    fd: int
    shared: bool
    fresh: bool = True
    users: int = 1
    mutex: threading.Lock = field(default_factory=threading.Lock)


_HOLDS: dict[str, FolderLock] = {}
_HOLDS_GUARD = threading.Lock()


def _busy(target: Path, lock: Path, who: str) -> FolderBusyError:
    why = f"is being written by {who} (lock {lock.name}); wait for it to finish or choose another folder"
    return FolderBusyError(target, why)


def _open_lock(target: Path) -> int:
    lock = lock_file(target)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(lock, flags, 0o666)
    except OSError as exc:
        kind = describe(lock) if exc.errno == errno.ELOOP else None
        reason = f"is {kind}" if kind else f"cannot create the lock file: {_os_reason(exc)}"
        raise UnsafePathError(lock, reason) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePathError(lock, f"is {describe(lock)}, not a lock file")
    if sys.platform != "win32":
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _busy(target, lock, "another flowtui process") from None
            raise UnsafePathError(lock, f"cannot lock: {_os_reason(exc)}") from None
    return fd


@contextlib.contextmanager
def folder_lock(target: str | Path, *, shared: bool = False) -> Iterator[FolderLock]:
    """Hold the write lock of folder `target` (an flock on `.NAME.lock` beside it) for the block.

    Never waits: another process holding it raises FolderBusyError at once. Inside one process,
    `shared=True` lets later `folder_lock` calls (any thread) join this hold (the CLI holds the folders of
    a whole run, whose saves happen in worker threads); an exclusive hold refuses any other. The parent
    folder must exist.
    """
    t = Path(target)
    key = os.path.join(os.path.realpath(t.parent), t.name)
    with _HOLDS_GUARD:
        held = _HOLDS.get(key)
        if held is not None:
            if not held.shared:
                raise _busy(t, lock_file(t), "another thread of this process")
            held.users += 1
            hold = FolderLock(held.key, held.fd, held.shared, fresh=False, mutex=held.mutex)
        else:
            hold = FolderLock(key, _open_lock(t), shared)
            _HOLDS[key] = hold
            held = hold
    try:
        yield hold
    finally:
        with _HOLDS_GUARD:
            held.users -= 1
            if held.users == 0:
                del _HOLDS[key]
                os.close(held.fd)  # releases the flock


def lock_is_held(target: str | Path) -> bool:
    """Does this process hold the lock of `target` (in any thread)?"""
    t = Path(target)
    with _HOLDS_GUARD:
        return os.path.join(os.path.realpath(t.parent), t.name) in _HOLDS

"""Swapping a model folder in: a temporary sibling, the swap, and the recovery of what a crash left.

A folder `DIR/NAME` is replaced by writing the new one beside it as `DIR/.NAME.XXXXXXXX.tmp` and swapping
it in. On Linux the swap is one `renameat2(RENAME_EXCHANGE)` call (`safe_files.exchange`), so there is no
moment when neither the old nor the new folder is at `DIR/NAME`; elsewhere (or on a file system without
it) the old folder steps aside to `DIR/.NAME.old-PID` and the new one steps in, and `recover_folder` puts a
complete folder back when a crash fell between those two renames. Every step here is taken holding the
folder's lock (`safe_files.folder_lock`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from flowtui.core import safe_files
from flowtui.core.safe_files import FolderBusyError, UnsafePathError

__all__ = ["interrupted", "leftovers", "recover", "recover_folder", "swap_in", "temp_folder"]

_LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?:[a-z0-9_]{8}\.tmp|old-\d+)")


def _tmp_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}\.tmp")


def _old_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(name)}\.old-\d+")


def temp_folder(target: Path) -> Path:
    """A new empty folder `.NAME.XXXXXXXX.tmp` beside `target` (the parent must exist), with the mode a
    plain `mkdir` gives (mkdtemp's 0700 would make a shared models folder unreadable to others)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789_"
    for _ in range(100):
        token = "".join(secrets.choice(alphabet) for _ in range(8))
        tmp = target.with_name(f".{target.name}.{token}.tmp")
        try:
            os.mkdir(tmp, 0o777)  # the kernel applies the umask
        except FileExistsError:
            continue
        return tmp
    raise UnsafePathError(target.parent, "cannot find a free temporary folder name")  # pragma: no cover


def leftovers(target: Path) -> list[Path]:
    """What interrupted swaps of `target` left beside it: `.NAME.XXXXXXXX.tmp` and `.NAME.old-PID`."""
    tmp, old = _tmp_pattern(target.name), _old_pattern(target.name)
    try:
        with os.scandir(target.parent) as it:
            names = [e.name for e in it if tmp.fullmatch(e.name) or old.fullmatch(e.name)]
    except OSError:
        return []
    return [target.parent / n for n in sorted(names)]


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def recover_folder(target: Path, is_complete: Callable[[Path], bool]) -> Path | None:
    """Clean up after interrupted swaps of `target`; call it holding the folder's lock.

    When `target` is missing, the newest complete leftover (`is_complete(path)`) is renamed into place:
    a finished new folder (`.tmp`) before a set-aside old one (`.old-PID`). Every other leftover is removed.
    Returns the leftover put in place, or None.
    """
    found = leftovers(target)
    restored: Path | None = None
    if found and not os.path.lexists(target):
        tmp_re = _tmp_pattern(target.name)

        def rank(p: Path) -> tuple[bool, float]:
            with contextlib.suppress(OSError):
                return bool(tmp_re.fullmatch(p.name)), p.lstat().st_mtime
            return False, 0.0

        for cand in sorted(found, key=rank, reverse=True):
            if cand.is_dir() and not cand.is_symlink() and is_complete(cand):
                os.rename(cand, target)
                restored = cand
                break
    for p in found:
        if p != restored:
            _remove(p)
    if found:
        safe_files.fsync_dir(target.parent)
    return restored


def swap_in(tmp: Path, target: Path, step: Callable[[str], None] | None = None) -> Path | None:
    """Put the complete folder `tmp` at `target`; returns the path now holding the previous folder (for
    the caller to remove), or None when there was none. Call it holding the folder's lock.

    With RENAME_EXCHANGE the two trade places in one step (the old folder ends at `tmp`). Otherwise the old
    folder is renamed to `.NAME.old-PID` and `tmp` to `target`; an exception between the two renames puts
    the old folder back, and a crash there is repaired by `recover_folder`. `step(name)` is called between
    the steps (a test hook).
    """
    if not os.path.lexists(target):
        os.rename(tmp, target)
        return None
    if safe_files.exchange(tmp, target):
        return tmp
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if os.path.lexists(old):
        _remove(old)
    os.rename(target, old)
    try:
        if step is not None:
            step("old_moved")
        os.rename(tmp, target)
    except BaseException:
        if not os.path.lexists(target):
            os.rename(old, target)
        raise
    return old


def recover(folder: Path, is_complete: Callable[[Path], bool], wait: float = 2.0) -> None:
    """Clean up after an interrupted save of `folder` before reading it (and put a complete folder back
    when it is missing).

    Does nothing when there is nothing left over, or when this process is saving it. When another process
    holds the lock and `folder` is missing, waits up to `wait` seconds for its swap to finish."""
    if not leftovers(folder) or safe_files.lock_is_held(folder):
        return
    deadline = time.monotonic() + wait
    while True:
        try:
            with safe_files.folder_lock(folder) as lock:
                if lock.fresh:
                    recover_folder(folder, is_complete)
            return
        except FolderBusyError:
            if os.path.lexists(folder) or time.monotonic() > deadline:
                return
            time.sleep(0.05)
        except (UnsafePathError, OSError):
            return  # a read-only models folder: read what is there


def interrupted(models_dir: Path) -> list[Path]:
    """The folders of `models_dir` that an interrupted save left missing beside its leftovers."""
    try:
        names = {m["name"] for p in models_dir.iterdir() if (m := _LEFTOVER.fullmatch(p.name))}
    except OSError:
        return []
    return [models_dir / n for n in sorted(names) if not os.path.lexists(models_dir / n)]

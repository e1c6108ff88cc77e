"""Saving a model folder: never destroys what is not a model, never leaves a half model.

- `DIR/NAME` is replaced only when it is a flowtui model folder or an empty folder (`target.check_target`);
  anything else is refused before anything is written.
- The new model is written to `DIR/.NAME.XXXXXXXX.tmp` (files fsynced, meta.json last, so a `.tmp` folder
  with a valid meta.json is complete) and swapped in (`swap.swap_in`).
- Writers of one folder are serialised by an flock on `DIR/.NAME.lock` (`safe_files.folder_lock`); a second
  writer gets `FolderBusyError` at once.
- Crash leftovers (`.NAME.*.tmp`, `.NAME.old-*`) are cleaned by the next save (and by a load, `swap.recover`);
  when `DIR/NAME` itself is missing, the newest complete leftover (new before old; `is_sealed`, a folder of
  any kind, so that a reader of one kind never deletes the other's only copy) is put back into place.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flowtui.core.modelfiles.kind import META_FILE, FolderKind, ModelFolderError, read_json
from flowtui.core.modelfiles.members import check_files, seal
from flowtui.core.modelfiles.meta import read_meta, write_meta
from flowtui.core.modelfiles.swap import recover_folder, swap_in, temp_folder
from flowtui.core.modelfiles.target import check_target
from flowtui.core.safe_files import folder_lock, fsync_dir

__all__ = ["is_complete", "is_sealed", "save_folder"]


def is_complete(folder: Path, kind: FolderKind) -> bool:
    """Does `folder` hold a whole model folder of `kind` (a meta.json that checks, and all its files)?"""
    try:
        read_meta(folder, kind)
    except ModelFolderError:
        return False
    return True


def is_sealed(folder: Path) -> bool:
    """Does `folder` hold a whole model folder of any kind: a meta.json naming its model and its files,
    every listed file there with its checksum, and nothing else? (What an interrupted swap may put back:
    a folder of either kind, so that no reader deletes the other kind's only copy.)"""
    try:
        meta = read_json(folder / META_FILE, "meta.json")
        if not isinstance(meta, dict) or not isinstance(meta.get("model"), str):
            return False
        files = meta.get("files")
        if not isinstance(files, dict):
            return False
        check_files(folder, files, ModelFolderError)
    except (ModelFolderError, OSError):
        return False
    return True


def _nothing(step: str) -> None:
    return None


def save_folder(
    target: Path,
    kind: FolderKind,
    write: Callable[[Path], dict[str, Any]],
    step: Callable[[str], None] = _nothing,
) -> Path:
    """Save a model of `kind` at `target` atomically and return `target` (see the module docstring).

    `write(tmp)` writes the model's files into the empty folder `tmp` and returns its meta.json without
    "files", which is added here. `step(name)` is called between the steps ("locked", "cleaned",
    "tmp_created", "meta_written", "old_moved" in the two-rename swap, "swapped", "done"): a test hook.
    Raises `kind.error` when `target` is not a model folder, FolderBusyError when another writer holds it,
    and whatever `write` raises (the previous model survives); an OSError (a full disk) is raised as
    `kind.error` naming `target` when `kind.wraps_os_errors`.
    """
    check_target(target, kind.error)
    target.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(target) as lock, lock.mutex:
        step("locked")
        # leftovers now are a crashed writer's: this process's other writers wait on the mutex, and
        # another process's on the flock
        recover_folder(target, is_sealed)
        step("cleaned")
        check_target(target, kind.error)  # again, now that no other writer can change it
        tmp = temp_folder(target)
        old: Path | None = None
        try:
            step("tmp_created")
            meta = write(tmp)
            meta["files"] = seal(tmp, kind.error)
            write_meta(tmp, meta)
            fsync_dir(tmp)
            step("meta_written")
            old = swap_in(tmp, target, step)
            fsync_dir(target.parent)
            step("swapped")
        except BaseException as exc:
            for leftover in (tmp, old):
                if leftover is not None and leftover != target and os.path.lexists(leftover):
                    shutil.rmtree(leftover, ignore_errors=True)
            if isinstance(exc, OSError) and kind.wraps_os_errors:
                reason = (exc.strerror or str(exc)).replace(str(tmp), str(target))  # never the .tmp name
                raise kind.error(target, f"cannot save the model: {reason}") from None
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        step("done")
    return target

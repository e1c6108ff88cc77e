"""The files of a model folder: listed with their checksums in meta.json "files", nothing else inside.

A member's name is a plain name, or `sub/name` for a model's subfolder (at most 4 parts): never `..`, an
absolute path or a backslash; links, pipes and devices inside a model folder are refused.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from flowtui.core.modelfiles.kind import META_FILE, ModelFolderError
from flowtui.core.safe_files import describe, file_sha256, fsync_dir

__all__ = ["check_files", "check_member", "entries", "seal"]

_MEMBER_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def entries(
    folder: Path, error: type[ModelFolderError] = ModelFolderError, prefix: str = "", depth: int = 0
) -> list[str]:
    """Every file in `folder` as a `/`-separated relative name; `error` on a link, a special file or
    nesting deeper than a model writes."""
    out: list[str] = []
    try:
        with os.scandir(folder) as it:
            found = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise error(folder, f"cannot read folder: {exc.strerror or exc}") from None
    for e in found:
        rel = f"{prefix}{e.name}"
        if e.is_symlink():
            raise error(folder / e.name, "is a symbolic link inside a model folder (refused)")
        if e.is_dir(follow_symlinks=False):
            if depth >= 3:
                raise error(folder / e.name, "is nested too deep for a model folder")
            out.extend(entries(folder / e.name, error, f"{rel}/", depth + 1))
        elif e.is_file(follow_symlinks=False):
            out.append(rel)
        else:
            raise error(folder / e.name, f"is {describe(folder / e.name)} inside a model folder")
    return out


def check_member(folder: Path, name: object, error: type[ModelFolderError] = ModelFolderError) -> Path:
    """`folder / name` for a "files" entry of meta.json; `error` for anything but a plain name inside."""
    parts = name.split("/") if isinstance(name, str) else []
    if not parts or len(parts) > 4 or not all(_MEMBER_PART.fullmatch(p) for p in parts) or name == META_FILE:
        raise error(
            folder / META_FILE,
            f"meta.json lists a bad file name, not a plain name inside the folder: {name!r}",
        )
    return folder.joinpath(*parts)


def check_files(folder: Path, files: dict[str, Any], error: type[ModelFolderError]) -> None:
    """Every file `files` lists is in `folder` with its checksum, and `folder` holds nothing else."""
    present = set(entries(folder, error))  # refuses links and special files anywhere inside
    for name, digest in files.items():
        f = check_member(folder, name, error)
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise error(folder / META_FILE, f"meta.json has no valid checksum for {name!r}")
        if name not in present:
            raise error(f, "model file missing")
        if file_sha256(f) != digest:
            raise error(f, "model file damaged (checksum differs from meta.json: truncated or edited?)")
    extra = sorted(present - set(files) - {META_FILE})
    if extra:
        raise error(
            folder / extra[0], "file not listed in meta.json: flowtui model folders hold only their own files"
        )


def seal(folder: Path, error: type[ModelFolderError]) -> dict[str, str]:
    """The "files" of meta.json for a folder being saved (name -> SHA-256), every file and subfolder
    flushed to disk first; `error` when the model wrote a name that is not a plain one."""
    names = entries(folder, error)
    for name in names:
        check_member(folder, name, error)
    for name in names:
        fd = os.open(folder / name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for sub in sorted({str(Path(n).parent) for n in names}, key=len, reverse=True):
        fsync_dir(folder / sub)
    return {name: file_sha256(folder / name) for name in names}

"""May a model be saved at a path? Only where nothing is, into an empty folder, or over a flowtui model
folder: anything else (a file, a link, a pipe, a folder of other files, a model folder with a file added)
is refused before anything is written, as is a models folder (`--out`) that is itself a symbolic link."""

from __future__ import annotations

import os
from pathlib import Path

from flowtui.core.modelfiles.kind import META_FILE, ModelFolderError, read_json
from flowtui.core.modelfiles.members import entries
from flowtui.core.safe_files import check_output_dir, describe

__all__ = ["check_target"]


def _foreign(error: type[ModelFolderError], folder: Path, why: str) -> ModelFolderError:
    return error(
        folder, f"{why}; flowtui replaces only its own model folders (move it away or choose another folder)"
    )


def check_target(folder: str | Path, error: type[ModelFolderError] = ModelFolderError) -> None:
    """May a model be saved into `folder`? Only when nothing is there, it is an empty folder, or a flowtui
    model folder (of any kind) holding nothing but the files its meta.json lists (a damaged model may be
    replaced). Raises `error` (UnsafePathError for the parent folder) otherwise; changes nothing."""
    target = Path(folder)
    if not target.name or target.name in (".", ".."):
        raise error(target, "is not a folder name")
    check_output_dir(target.parent)
    if describe(target.parent) == "a symbolic link":  # a save would replace folders in the link's target
        raise error(
            target.parent,
            f"is a symbolic link; flowtui saves models only into a real folder, never through a link "
            f"(give its target: {os.path.realpath(target.parent)})",
        )
    kind = describe(target)
    if kind is None:
        return
    if kind != "a folder":
        raise _foreign(error, target, f"is {kind}, not a model folder")
    try:
        names = entries(target)
    except ModelFolderError as exc:
        raise _foreign(error, target, f"holds {exc.path}, which {exc.message}") from None
    if not names:
        return
    if META_FILE not in names:
        raise _foreign(error, target, "is a folder without meta.json, not a flowtui model folder")
    try:
        meta = read_json(target / META_FILE, "meta.json")
    except ModelFolderError:
        raise _foreign(error, target, "holds a meta.json that flowtui did not write") from None
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), str) or not isinstance(files, dict):
        raise _foreign(error, target, "holds a meta.json that flowtui did not write")
    extra = [n for n in names if n != META_FILE and n not in files]
    if extra:
        shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
        raise _foreign(error, target, f"holds files flowtui did not write ({shown})")
    if not os.access(target, os.W_OK | os.X_OK):
        raise error(target, "is read-only; flowtui cannot replace it")

"""meta.json: read with its field and file checks (brought to the current format version), and written.

Every meta.json names its model ("model"), the model's parameters ("params"), its format version
("format_version") and the SHA-256 of every other file in the folder ("files"); each `FolderKind` adds its
own fields.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flowtui.core.modelfiles.kind import META_FILE, FolderKind, read_json
from flowtui.core.modelfiles.members import check_files
from flowtui.core.modelfiles.versions import migrate
from flowtui.core.safe_files import UnsafePathError, describe

__all__ = ["read_meta", "write_meta"]


def read_meta(folder: str | Path, kind: FolderKind) -> dict[str, Any]:
    """The checked meta.json of a model folder of `kind`, at the current format version; `kind.error`
    when the folder or meta.json is missing, bad or of a version this flowtui does not read, when a listed
    file is missing or damaged, or when the folder holds a file meta.json does not list."""
    folder = Path(folder)
    try:
        found = describe(folder)
    except UnsafePathError as exc:
        raise kind.error(folder, exc.message) from None
    if found is None:
        raise kind.error(folder, f"model folder not found (train one with `{kind.trainer}`)")
    if found != "a folder" and not (found == "a symbolic link" and folder.is_dir()):
        raise kind.error(folder, f"is {found}, not a model folder")
    path = folder / META_FILE
    meta = read_json(path, "meta.json", kind.error)
    if not isinstance(meta, dict):
        raise kind.error(path, "meta.json is not a JSON object")
    if kind.format is not None and meta.get("format") != kind.format:
        raise kind.error(path, f"not a {kind.what} folder (written by `{kind.trainer}`)")
    meta = migrate(meta, path, kind)
    for key, type_ in (("model", str), *kind.fields, ("params", dict)):
        if not isinstance(meta.get(key), type_):
            raise kind.error(path, f"meta.json lacks a valid {key!r}")
    if not isinstance(meta.get("files"), dict):
        raise kind.error(path, "meta.json lacks the list of model files")
    check_files(folder, meta["files"], kind.error)
    return meta


def _json_safe(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    """Write `folder/meta.json` (indented; numpy scalars and paths as plain values) and flush it to disk."""
    with (folder / META_FILE).open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(meta, indent=2, default=_json_safe))
        fh.flush()
        os.fsync(fh.fileno())

"""Which data files flowtui wrote, so that a writer replaces only those, never a user's own file.

`data synth` records the files it wrote in `synth.json` beside them (name, size and the checksum of every
byte, `cache.file_digest`); `data import` already keeps `OUT.ids.json`, whose checksum names the data it
belongs to. A writer calls the check below before anything is written: an existing output that is its own
input, or a file that no record shows flowtui wrote (or that changed since), is refused with a DataError.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flowtui.core.data.cache import file_digest
from flowtui.core.data.idmap import IdMap
from flowtui.core.errors import DataError

SYNTH_MANIFEST = "synth.json"
_SYNTH_FORMAT = "flowtui-synth"
#: Files whose presence marks a folder as a saved model (a model folder is never a data folder).
_MODEL_MARKERS = ("meta.json",)


def _checksum(path: Path) -> dict[str, Any]:
    return {"size": path.stat().st_size, "checksum": file_digest(path).hex()}


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _manifest(folder: Path) -> dict[str, Any]:
    """The files listed in `folder/synth.json` (empty when there is none or it cannot be read)."""
    try:
        doc = json.loads((folder / SYNTH_MANIFEST).read_text(encoding="utf-8"))
        files = doc["files"] if doc.get("format") == _SYNTH_FORMAT else {}
        return files if isinstance(files, dict) else {}
    except (OSError, UnicodeError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return {}


def check_synth_target(folder: str | Path, names: tuple[str, ...]) -> None:
    """Refuse to write `names` into `folder` when one exists and is not a file `data synth` wrote there
    (as it was written), or when `folder` is a saved model's folder."""
    out = Path(folder)
    for marker in _MODEL_MARKERS:
        if (out / marker).exists():
            raise DataError(out, f"is a saved model's folder ({marker}); choose another folder for the data")
    listed = _manifest(out)
    for name in names:
        path = out / name
        if not (path.exists() or path.is_symlink()):
            continue
        if path.is_symlink() or not path.is_file():
            continue  # the safe writer refuses it, naming what it is
        try:
            mine = listed.get(name) == _checksum(path)
        except OSError:
            mine = False
        if not mine:
            raise DataError(
                path,
                "exists and was not written by `flowtui data synth` (or changed since): flowtui never "
                "replaces a file it did not make; choose another --out folder or move the file",
            )


def synth_manifest(paths: dict[str, Path], seed: int, users: int) -> str:
    """The `synth.json` text recording the files just written (call it on the temporary files)."""
    files = {Path(name).name: _checksum(tmp) for name, tmp in paths.items()}
    doc = {"format": _SYNTH_FORMAT, "version": 1, "seed": seed, "users": users, "files": files}
    return json.dumps(doc, indent=2) + "\n"


def check_import_target(out: str | Path, log: str | Path | None) -> None:
    """Refuse an import output that is the log being imported, or an existing file that is not an earlier
    `data import` output (one whose `.ids.json` beside it names its data as it is now)."""
    target = Path(out)
    if not target.name or target.name in (".", ".."):
        raise DataError(target, "names no file", expected="a file name, e.g. runs/plays.csv")
    if not (target.exists() or target.is_symlink()):
        return
    if log is not None and _same_file(target, Path(log)):
        raise DataError(target, "is the log being imported; choose another --out (the log is never replaced)")
    if target.is_symlink() or not target.is_file():
        return  # the safe writer refuses it with its own message
    try:
        earlier = IdMap.for_dataset(target) is not None
    except DataError:
        earlier = False
    if not earlier:
        raise DataError(
            target,
            "exists and was not written by `flowtui data import` (or changed since): flowtui never replaces "
            "a file it did not make; choose another --out or move the file",
        )

"""What tells one kind of model folder from another (`FolderKind`), the error its readers raise, and the
size-limited JSON reader every meta.json and data sketch goes through."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowtui.core.errors import DataError
from flowtui.core.safe_files import describe

__all__ = ["META_FILE", "FolderKind", "Migration", "ModelFolderError", "read_json"]

META_FILE = "meta.json"
_MAX_JSON_BYTES = 16 << 20
#: Deeper than any file flowtui writes; deeper documents (a RecursionError later, when printed) are refused.
_MAX_JSON_DEPTH = 64

#: One step of a kind's format history: a meta.json of version v in, the same model as version v + 1 out.
Migration = Callable[[dict[str, Any]], dict[str, Any]]


class ModelFolderError(DataError):
    """A model folder that is missing, damaged, from an incompatible version, or not ours to replace (the
    CLI exits 2); each kind raises its own subclass."""

    def __init__(self, path: str | Path, message: str) -> None:
        super().__init__(path, message)


@dataclass(frozen=True)
class FolderKind:
    """One kind of model folder (Flow models, recommenders): how its meta.json is told and checked.

    `error` is what its readers raise; `what` names it in messages ("model", "recommender"); `version` is
    the format version written now and `migrations[v]` turns a meta.json of an older version v into version
    v + 1 (the reader sets "format_version"); `format` is the value of meta.json "format" that marks the
    kind (None: it writes no "format"); `trainer` the command that writes it; `fields` the fields every
    meta.json of the kind holds besides "model", "params" and "files", with their types; `wraps_os_errors`
    whether a failed save (a full disk) is raised as `error` naming the folder rather than as the OSError.
    """

    error: type[ModelFolderError]
    what: str
    version: int
    trainer: str
    migrations: Mapping[int, Migration] = field(default_factory=dict)
    format: str | None = None
    fields: tuple[tuple[str, type], ...] = ()
    wraps_os_errors: bool = False

    def __post_init__(self) -> None:
        oldest = min(self.migrations, default=self.version)
        if sorted(self.migrations) != list(range(oldest, self.version)):
            raise ValueError(f"{self.what}: migrations must step from version {oldest} to {self.version}")

    @property
    def readable(self) -> str:
        """The versions this flowtui reads, e.g. "1 to 2"."""
        oldest = min(self.migrations, default=self.version)
        return str(self.version) if oldest == self.version else f"{oldest} to {self.version}"


def read_json(path: Path, what: str, error: type[ModelFolderError] = ModelFolderError) -> Any:
    """The JSON document in the regular file `path` (`what` names it in messages); `error` when it is
    missing, not a file, too large or not JSON."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise error(path, f"missing {what}: not a flowtui model folder") from None
    except OSError as exc:
        raise error(path, f"unreadable {what} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(path, f"{what} is {describe(path)}, not a file")
    if st.st_size > _MAX_JSON_BYTES:
        raise error(path, f"{what} is too large ({st.st_size:,} bytes)")
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        detail = " ".join(str(exc).split())
        raise error(path, f"unreadable {what} ({detail})") from None
    if _too_deep(doc):
        raise error(path, f"unreadable {what} (nested deeper than {_MAX_JSON_DEPTH} levels)")
    return doc


def _too_deep(doc: Any) -> bool:
    """Is `doc` nested deeper than `_MAX_JSON_DEPTH` lists and objects? (No recursion.)"""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth >= _MAX_JSON_DEPTH:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False

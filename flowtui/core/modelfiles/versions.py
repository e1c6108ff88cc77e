"""Versions: the format version of a meta.json (and its migration to the current one), and the versions of
the libraries a saved model was made with."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from flowtui.core.modelfiles.kind import FolderKind

__all__ = ["library_versions", "migrate"]


def library_versions(libs: Iterable[str]) -> dict[str, str]:
    """The installed versions of the distributions `libs` (those not installed are left out)."""
    out: dict[str, str] = {}
    for lib in libs:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[lib] = metadata.version(lib)
    return out


def migrate(meta: dict[str, Any], path: Path, kind: FolderKind) -> dict[str, Any]:
    """`meta` (read from `path`) brought to `kind`'s current format version one step at a time; `kind.error`
    for a version this flowtui does not read (a newer flowtui's, or not a version at all)."""
    version = meta.get("format_version")
    if type(version) is not int or not (version == kind.version or version in kind.migrations):
        raise kind.error(
            path,
            f"incompatible {kind.what} format version {version!r} (this flowtui reads {kind.readable})",
        )
    while version < kind.version:
        meta = {**kind.migrations[version](dict(meta)), "format_version": version + 1}
        version += 1
    return meta

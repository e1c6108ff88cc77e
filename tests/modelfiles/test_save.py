"""`save_folder` and `read_meta` for any kind of model folder (a toy kind here): the kind's own error, its
format tag, and what a failed write leaves (the previous folder, nothing beside it)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from flowtui.core.modelfiles import META_FILE, FolderKind, ModelFolderError
from flowtui.core.modelfiles.meta import read_meta
from flowtui.core.modelfiles.save import save_folder


class ToyError(ModelFolderError):
    """The toy kind's error."""


TOY = FolderKind(ToyError, "toy", 1, "make toy", format="toy-folder", fields=(("size", int),))


def writer(text: str, fail: OSError | None = None) -> Any:
    def write(tmp: Path) -> dict[str, Any]:
        (tmp / "weights.txt").write_text(text)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "more.txt").write_text(text * 2)
        if fail is not None:
            raise fail
        return {"format": "toy-folder", "format_version": 1, "model": "toy", "params": {}, "size": len(text)}

    return write


def siblings(folder: Path) -> list[str]:
    return sorted(os.listdir(folder.parent))


def test_a_toy_kind_is_saved_read_and_replaced(tmp_path: Path) -> None:
    folder = save_folder(tmp_path / "toy", TOY, writer("abc"))
    meta = read_meta(folder, TOY)
    assert meta["size"] == 3 and sorted(meta["files"]) == ["sub/more.txt", "weights.txt"]
    save_folder(folder, TOY, writer("abcdef"))
    assert read_meta(folder, TOY)["size"] == 6 and siblings(folder) == [".toy.lock", "toy"]


def test_the_kind_names_its_own_errors(tmp_path: Path) -> None:
    with pytest.raises(ToyError, match=r"model folder not found \(train one with `make toy`\)"):
        read_meta(tmp_path / "absent", TOY)
    folder = save_folder(tmp_path / "toy", TOY, writer("abc"))
    (folder / META_FILE).write_text('{"format": "other", "format_version": 1}')
    with pytest.raises(ToyError, match=r"not a toy folder \(written by `make toy`\)"):
        read_meta(folder, TOY)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_text("meow")
    with pytest.raises(ToyError, match=r"without meta\.json, not a flowtui model folder"):
        save_folder(foreign, TOY, writer("abc"))


@pytest.mark.parametrize("wraps", [False, True])
def test_a_failed_write_keeps_the_previous_folder(tmp_path: Path, wraps: bool) -> None:
    kind = FolderKind(ToyError, "toy", 1, "make toy", format="toy-folder", wraps_os_errors=wraps)
    folder = save_folder(tmp_path / "toy", kind, writer("abc"))
    before = (folder / META_FILE).read_bytes()
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(ToyError if wraps else OSError) as info:
        save_folder(folder, kind, writer("abcdef", fail=full))
    if wraps:
        assert str(info.value) == f"{folder}: cannot save the model: {os.strerror(errno.ENOSPC)}"
    assert (folder / META_FILE).read_bytes() == before and siblings(folder) == [".toy.lock", "toy"]

"""Recommender folders: a fitted recommender's files plus `meta.json`, written atomically.

A folder `DIR/NAME` holds what the model's `save` writes (numpy arrays in an .npz read with
allow_pickle=False, JSON, torch tensors read with weights_only=True: no code runs from the files) and a
`meta.json`: format name and version, the model's name and flat parameters, whether it learnt implicit
data, the item and user vocabulary sizes, the data fingerprint, fit time, notes, library versions and
each file's SHA-256. `save_recommender` follows `flow/store.py`'s `save_model` with the same
`safe_files` primitives: it replaces only an empty folder or a flowtui model folder, holds the folder's
lock, writes a temporary sibling folder (files fsynced, meta.json last) and swaps it in, so a crash or a
cancel leaves the previous model intact; `load_recommender` turns any damage into a one-line
`RecommenderFileError`. The `format` key tells these
folders from the Flow models' (`flowtui train`), which `flow/store.py` reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from flowtui.core import events as ev
from flowtui.core.errors import DataError
from flowtui.core.recs.interactions import MAX_ITEMS, recommender_matrix
from flowtui.core.recs.recommender import RecommenderBase

if TYPE_CHECKING:
    from flowtui.core.modelfiles.data_match import DataDescription

from flowtui.core.safe_files import (
    check_output_dir,
    describe,
    file_sha256,
    folder_lock,
    fsync_dir,
    recover_folder,
    swap_in,
    temp_folder,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "RecommenderFileError",
    "data_fingerprint",
    "is_recommender_folder",
    "load_recommender",
    "read_recommender_meta",
    "save_recommender",
    "train_recommender",
]

FORMAT = "flowtui-recommender"
FORMAT_VERSION = 1
META_FILE = "meta.json"
_LIBRARIES = ("flowtui", "numpy", "scipy", "torch", "implicit")


class RecommenderFileError(DataError):
    """A recommender folder that is missing, damaged or from an incompatible version (the CLI exits 2)."""

    def __init__(self, path: str | Path, message: str) -> None:
        super().__init__(path, message)


def library_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for lib in _LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return out


def data_fingerprint(frame: pd.DataFrame) -> str:
    """A short content hash of a data frame: row count and a SHA-1 of its row hashes."""
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return f"{len(frame)}:{hashlib.sha1(hashes.tobytes()).hexdigest()[:16]}"


def check_recommender_target(folder: str | Path) -> None:
    """May `save_recommender` write `folder`? Only when nothing is there, it is an empty folder, or a
    flowtui model folder (a meta.json naming a model and its files, and nothing but those files).
    Raises RecommenderFileError (UnsafePathError for the parent folder) otherwise; changes nothing."""
    target = Path(folder)
    if target.name in ("", ".", ".."):
        raise RecommenderFileError(target, "is not a folder name")
    check_output_dir(target.parent)
    kind = describe(target)
    if kind is None:
        return
    if kind != "a folder":
        raise RecommenderFileError(target, f"is {kind}, not a model folder; flowtui will not replace it")
    names = sorted(p.name for p in target.iterdir())
    if not names:
        return
    foreign = "is not a flowtui model folder; flowtui will not replace it"
    try:
        meta = json.loads((target / META_FILE).read_text())
    except (OSError, ValueError):
        raise RecommenderFileError(target, foreign) from None
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict) or not isinstance(meta.get("model"), str):
        raise RecommenderFileError(target, foreign)
    extra = [n for n in names if n != META_FILE and n not in files]
    if extra:
        raise RecommenderFileError(target, f"holds files flowtui did not write ({', '.join(extra[:3])})")


def _complete(folder: Path) -> bool:
    try:
        read_recommender_meta(folder)
    except RecommenderFileError:
        return False
    return True


def save_recommender(
    model: RecommenderBase,
    folder: str | Path,
    *,
    fingerprint: str = "",
    extra: dict[str, Any] | None = None,
    data: DataDescription | None = None,
) -> Path:
    """Write the fitted `model` and its meta.json into `folder` (see the module docstring): refused
    (RecommenderFileError) when `folder` is something other than a model folder, FolderBusyError when
    another writer holds it; the previous model survives any failure. `data` (`describe_data` of the
    training frame) is kept as meta.json "data" plus `data_sketch.json`, so the model can tell later
    whether it meets its own data (`recommend.check_model_data`)."""
    from flowtui.core.modelfiles.data_match import SKETCH_FILE
    from flowtui.core.params import schema_of

    model.check_fitted()
    target = Path(folder)
    check_recommender_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(target) as lock, lock.mutex:
        if lock.fresh:
            recover_folder(target, _complete)
        check_recommender_target(target)  # again, now that no other writer can change it
        tmp = temp_folder(target)
        old: Path | None = None
        try:
            model.save(tmp)
            if data is not None:
                (tmp / SKETCH_FILE).write_text(json.dumps(data.sketch_doc()))
                fingerprint = fingerprint or data.fingerprint
            names = sorted(p.name for p in tmp.iterdir())
            params = schema_of(model.params_cls).flatten(model.params)
            meta = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "model": model.name,
                "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
                "level": "media",
                "implicit": model.implicit_,
                "n_items": len(model.item_ids_),
                "n_users": model.n_users_,
                "data_fingerprint": fingerprint,
                **({"data": data.summary()} if data is not None else {}),
                "fit_seconds": round(model.fit_seconds_, 3),
                "notes": model.notes,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "libraries": library_versions(),
                **(extra or {}),
                "files": {name: file_sha256(tmp / name) for name in names},
            }
            for name in names:
                fd = os.open(tmp / name, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            with (tmp / META_FILE).open("w", encoding="utf-8") as fh:
                fh.write(json.dumps(meta, indent=2))
                fh.flush()
                os.fsync(fh.fileno())
            fsync_dir(tmp)
            old = swap_in(tmp, target)
            fsync_dir(target.parent)
        except BaseException:
            for leftover in (tmp, old):
                if leftover is not None and leftover != target and os.path.lexists(leftover):
                    shutil.rmtree(leftover, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target


def is_recommender_folder(folder: str | Path) -> bool:
    """Does `folder` hold a meta.json of this format (a folder written by `save_recommender`)?"""
    try:
        meta = json.loads((Path(folder) / META_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def read_recommender_meta(folder: str | Path) -> dict[str, Any]:
    """The checked meta.json of a recommender folder; RecommenderFileError when missing, bad or damaged."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RecommenderFileError(folder, "model folder not found (train one with `flowtui train-recs`)")
    path = folder / META_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecommenderFileError(path, "missing meta.json: not a flowtui model folder") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecommenderFileError(path, f"unreadable meta.json ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RecommenderFileError(path, "not a recommender folder (written by `flowtui train-recs`)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise RecommenderFileError(
            path,
            f"incompatible recommender format version {meta.get('format_version')!r} "
            f"(this flowtui reads {FORMAT_VERSION})",
        )
    for key, kind in (("model", str), ("params", dict), ("files", dict)):
        if not isinstance(meta.get(key), kind):
            raise RecommenderFileError(path, f"meta.json lacks a valid {key!r}")
    for name, digest in meta["files"].items():
        if not isinstance(name, str) or Path(name).name != name or name in (".", "..", META_FILE):
            raise RecommenderFileError(path, f"meta.json lists a bad file name {name!r}")
        f = folder / name
        if not f.is_file():
            raise RecommenderFileError(f, "model file missing")
        if file_sha256(f) != digest:
            raise RecommenderFileError(f, "model file damaged (checksum differs from meta.json)")
    return meta


def load_recommender(folder: str | Path) -> RecommenderBase:
    """The fitted recommender saved in `folder` by `save_recommender`; RecommenderFileError on damage."""
    from flowtui.core import registry

    folder = Path(folder)
    meta = read_recommender_meta(folder)
    try:
        spec = registry.get_recommender(meta["model"])
    except KeyError as exc:
        raise RecommenderFileError(folder / META_FILE, str(exc.args[0])) from None
    try:
        model: RecommenderBase = spec.load(folder, dict(meta["params"]))
    except Exception as exc:  # any library error on a damaged file becomes one clear line
        detail = " ".join(str(exc).split())
        raise RecommenderFileError(
            folder, f"cannot load {meta['model']} recommender: {type(exc).__name__}: {detail}"
        ) from None
    model.trained_on = _training_data(folder, meta)
    fp = meta.get("data_fingerprint")
    model.trained_fingerprint = fp if isinstance(fp, str) else ""
    return model


def _training_data(folder: Path, meta: dict[str, Any]) -> DataDescription | None:
    """The training data recorded in a recommender folder (None for folders saved before it was kept)."""
    from flowtui.core.modelfiles.data_match import SKETCH_FILE, DataDescription

    summary = meta.get("data")
    if summary is None:
        return None
    if not isinstance(summary, dict) or SKETCH_FILE not in meta["files"]:
        raise RecommenderFileError(
            folder / META_FILE, f"meta.json: 'data' does not name a listed {SKETCH_FILE}"
        )
    try:
        doc = json.loads((folder / SKETCH_FILE).read_text(encoding="utf-8"))
        return DataDescription.from_docs(summary, doc)
    except (OSError, UnicodeError, ValueError, TypeError) as exc:
        raise RecommenderFileError(folder / SKETCH_FILE, f"damaged data sketch ({exc})") from None


def train_recommender(
    frame: pd.DataFrame,
    name: str,
    overrides: Mapping[str, object] | None = None,
    preset: str = "full",
    *,
    implicit: bool | None = None,
    max_items: int | None = MAX_ITEMS,
    on_event: ev.EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> RecommenderBase:
    """The registered recommender `name` (parameters checked: ParamError) fitted on every row of `frame`
    (`recommender_matrix`: listen/skip labels, or plays when `implicit` or the log has no skip)."""
    from flowtui.core import registry

    model = registry.get_recommender(name).build(overrides, preset)
    matrix = recommender_matrix(frame, implicit=implicit, max_items=max_items)
    return model.fit(matrix, on_event=on_event, cancel=cancel)

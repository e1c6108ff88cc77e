"""Recommender folders: a fitted recommender's files plus `meta.json`, on `modelfiles`.

A folder `DIR/NAME` holds what the model's `save` writes (numpy arrays in an .npz read with
allow_pickle=False, JSON, torch tensors read with weights_only=True: no code runs from the files),
`data_sketch.json` when the training data was described, and a `meta.json`: format name and version, the
model's name and flat parameters, whether it learnt implicit data, the item and user vocabulary sizes, the
data fingerprint, the training data's description ("data", absent when `save_recommender` was given none),
fit time, notes, library versions and each file's SHA-256. Saving is atomic and replaces only an empty
folder or a flowtui model folder (`modelfiles.save`), so a crash or a cancel leaves the previous model
intact; `load_recommender` turns any damage into a one-line `RecommenderFileError`. The `format` key tells
these folders from the Flow models' (`flowtui train`), which `flow/store.py` reads.

Format versions: 1 (the only one so far).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from flowtui.core import events as ev
from flowtui.core.modelfiles import META_FILE, FolderKind, ModelFolderError
from flowtui.core.modelfiles import library_versions as installed_versions
from flowtui.core.modelfiles.data_match import DataDescription, read_training_data, write_sketch
from flowtui.core.modelfiles.kind import read_json
from flowtui.core.modelfiles.meta import read_meta
from flowtui.core.modelfiles.save import is_sealed, save_folder
from flowtui.core.modelfiles.swap import recover
from flowtui.core.modelfiles.target import check_target
from flowtui.core.params import schema_of
from flowtui.core.recs.interactions import MAX_ITEMS, recommender_matrix
from flowtui.core.recs.recommender import RecommenderBase

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "RecommenderFileError",
    "check_recommender_target",
    "is_recommender_folder",
    "load_recommender",
    "read_recommender_meta",
    "save_recommender",
    "train_recommender",
]

FORMAT = "flowtui-recommender"
FORMAT_VERSION = 1
_LIBRARIES = ("flowtui", "numpy", "scipy", "torch", "implicit")


class RecommenderFileError(ModelFolderError):
    """A recommender folder that is missing, damaged or from an incompatible version (the CLI exits 2)."""


KIND = FolderKind(
    error=RecommenderFileError,
    what="recommender",
    version=FORMAT_VERSION,
    trainer="flowtui train-recs",
    format=FORMAT,
    fields=(
        ("data_fingerprint", str),
        ("n_items", int),
        ("n_users", int),
        ("implicit", bool),
        ("level", str),
    ),
)
_SKETCH = "data_sketch.json"

#: The points between the steps of `save_recommender` at which `_fault_hook(step)` is called (fault-injection
#: tests raise or exit there): `modelfiles.save.save_folder`'s steps.
_fault_hook: Callable[[str], None] | None = None


def _step(name: str) -> None:
    hook = _fault_hook
    if hook is not None:
        hook(name)


def check_recommender_target(folder: str | Path) -> None:
    """May `save_recommender` write `folder`? Only when nothing is there, it is an empty folder, or a
    flowtui model folder (a meta.json naming a model and its files, and nothing but those files).
    Raises RecommenderFileError (UnsafePathError for the parent folder) otherwise; changes nothing."""
    check_target(folder, RecommenderFileError)


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
    model.check_fitted()

    def write(tmp: Path) -> dict[str, Any]:
        model.save(tmp)
        if data is not None:
            write_sketch(tmp, data)
        params = schema_of(model.params_cls).flatten(model.params)
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": model.name,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
            "level": "media",
            "implicit": model.implicit_,
            "n_items": len(model.item_ids_),
            "n_users": model.n_users_,
            "data_fingerprint": fingerprint or (data.fingerprint if data is not None else ""),
            **({"data": data.summary()} if data is not None else {}),
            "fit_seconds": round(model.fit_seconds_, 3),
            "notes": model.notes,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "libraries": installed_versions(_LIBRARIES),
            **(extra or {}),
        }

    return save_folder(Path(folder), KIND, write, _step)


def is_recommender_folder(folder: str | Path) -> bool:
    """Does `folder` hold a meta.json of this format (a folder written by `save_recommender`)? A folder
    that an interrupted save left missing is put back first (waiting out another process's swap)."""
    if not os.path.lexists(folder):
        recover(Path(folder), is_sealed)
    try:
        meta = read_json(Path(folder) / META_FILE, "meta.json")
    except ModelFolderError:
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def read_recommender_meta(folder: str | Path) -> dict[str, Any]:
    """The checked meta.json of a recommender folder; RecommenderFileError when missing, bad or damaged.
    What an interrupted save left beside it is cleaned up first (a missing folder put back)."""
    recover(Path(folder), is_sealed)
    meta = read_meta(folder, KIND)
    path = Path(folder) / META_FILE
    if meta["level"] != "media":  # the only level a recommender is saved at
        raise RecommenderFileError(path, f"meta.json 'level' is {meta['level']!r}; expected 'media'")
    if "data" not in meta and _SKETCH in meta["files"]:
        raise RecommenderFileError(path, f"meta.json has no 'data' section for its {_SKETCH}")
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
    _check_against_state(folder, meta, model)
    # "data" is absent when the model was saved without a description of its training data
    model.trained_on = read_training_data(folder, meta["files"], meta.get("data"), RecommenderFileError)
    model.trained_fingerprint = meta["data_fingerprint"]
    return model


def _check_against_state(folder: Path, meta: dict[str, Any], model: RecommenderBase) -> None:
    """meta.json's description of the model agrees with what its state files hold."""
    found = {"n_items": len(model.item_ids_), "n_users": model.n_users_, "implicit": model.implicit_}
    for key, value in found.items():
        if meta[key] != value or type(meta[key]) is not type(value):
            raise RecommenderFileError(
                folder / META_FILE, f"meta.json {key!r} is {meta[key]!r}, but the saved model has {value!r}"
            )


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

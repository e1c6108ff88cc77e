"""Flow model folders: a fitted classifier's own files (no pickle) plus `meta.json`, on `modelfiles`.

A saved Flow model is a folder `DIR/NAME` holding what the model's `save` writes, `data_sketch.json` (the
ids of its training data) and a `meta.json`: format version, model name, features, parameters, smoothing,
flow_only, holdout scores, data fingerprint and description, notes, creation time, library versions, and
the SHA-256 of every other file in the folder. Saving is atomic and refuses to replace what is not a model
folder (`modelfiles.save`); loading turns any damage into a one-line `ModelFileError` (the CLI exits 2):
the folder's files and checksums (`modelfiles.members`), then meta.json's fields and parameters against the
model's schema, before the model's loader runs.

Format versions: 2 (now) holds every field above; 1 (before this version) is read through
`migrate_1_to_2`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowtui.core import registry
from flowtui.core.errors import DataError, ParamError
from flowtui.core.modelfiles import META_FILE, FolderKind, ModelFolderError
from flowtui.core.modelfiles import library_versions as installed_versions
from flowtui.core.modelfiles.data_match import (
    DataDescription,
    DataMatch,
    DataMismatchError,
    check_data,
    read_training_data,
    write_sketch,
)
from flowtui.core.modelfiles.meta import read_meta as read_folder_meta
from flowtui.core.modelfiles.save import is_sealed, save_folder
from flowtui.core.modelfiles.swap import interrupted, recover
from flowtui.core.modelfiles.target import check_target
from flowtui.core.registry import FlowModel
from flowtui.core.safe_files import FolderBusyError

__all__ = [
    "FORMAT_VERSION",
    "META_FILE",
    "SAVE_STEPS",
    "DataMatch",
    "DataMismatchError",
    "FolderBusyError",
    "ModelFileError",
    "SavedModel",
    "TrainedModel",
    "check_data",
    "check_model_target",
    "library_versions",
    "list_models",
    "load_model",
    "migrate_1_to_2",
    "read_meta",
    "save_model",
]

FORMAT_VERSION = 2
_LIBRARIES = ("flowtui", "numpy", "pandas", "scikit-learn", "lightgbm", "skops", "torch")

#: The points between the steps of `save_model` at which `_fault_hook(step)` is called (fault-injection
#: tests raise or exit there); "old_moved" happens only in the two-rename swap.
SAVE_STEPS = (
    "locked",
    "cleaned",
    "tmp_created",
    "model_written",
    "meta_written",
    "old_moved",
    "swapped",
    "done",
)
_fault_hook: Callable[[str], None] | None = None


def _step(name: str) -> None:
    hook = _fault_hook
    if hook is not None:
        hook(name)


class ModelFileError(ModelFolderError):
    """A model folder that is missing, corrupted, from an incompatible version, or not ours to replace
    (the CLI exits 2)."""


def migrate_1_to_2(meta: dict[str, Any]) -> dict[str, Any]:
    """Format 1 to 2: folders saved before the training data was described have no "data"; in 2 it is
    always there ({} when the trainer recorded none)."""
    return {**meta, "data": meta.get("data", {})}


KIND = FolderKind(
    error=ModelFileError,
    what="model",
    version=FORMAT_VERSION,
    trainer="flowtui train",
    migrations={1: migrate_1_to_2},
    fields=(("features", list),),
    wraps_os_errors=True,
)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a saved Flow model depends on."""
    return installed_versions(_LIBRARIES)


@dataclass
class TrainedModel:
    """A fitted model with everything needed to predict again and to explain how it was made."""

    name: str
    model: FlowModel
    features: list[str]
    params: dict[str, Any]
    smoothing: float = 10.0
    flow_only: bool = False
    holdout: dict[str, Any] = field(default_factory=dict)  # auc, logloss, accuracy, n, rounds
    fingerprint: str = ""
    notes: list[str] = field(default_factory=list)
    created: str = ""
    libraries: dict[str, str] = field(default_factory=dict)
    #: The training data (source file, rows, id sketches): set by the trainer, and by `load_model` from
    #: the folder.
    data: DataDescription | None = None

    def meta(self) -> dict[str, Any]:
        """The `meta.json` document (without "files", which `save_model` adds)."""
        return {
            "format_version": FORMAT_VERSION,
            "model": self.name,
            "features": self.features,
            "params": self.params,
            "smoothing": self.smoothing,
            "flow_only": self.flow_only,
            "holdout": self.holdout,
            "data_fingerprint": self.fingerprint,
            "data": self.data.summary() if self.data is not None else {},
            "notes": self.notes,
            "created": self.created or datetime.now(UTC).isoformat(timespec="seconds"),
            "libraries": self.libraries or library_versions(),
        }


# ---------------------------------------------------------------------------------------------------------
# Saving


def check_model_target(folder: str | Path) -> None:
    """May `save_model` write `folder`? Only when nothing is there, it is an empty folder, or a flowtui model
    folder holding nothing but the files its meta.json lists (a damaged model may be replaced). Raises
    ModelFileError (or UnsafePathError for the parent folder) otherwise; changes nothing.
    """
    check_target(folder, ModelFileError)


def save_model(trained: TrainedModel, folder: str | Path) -> Path:
    """Write `trained` into `folder` atomically and return it (`modelfiles.save`).

    Raises ModelFileError when `folder` is something other than a flowtui model folder or cannot be
    written (a full disk), FolderBusyError when another writer holds it, and whatever else the model's
    writer raises (the previous model survives).
    """

    def write(tmp: Path) -> dict[str, Any]:
        trained.model.save(tmp)
        _step("model_written")
        if trained.data is not None:
            write_sketch(tmp, trained.data)
        return trained.meta()

    return save_folder(Path(folder), KIND, write, _step)


# ---------------------------------------------------------------------------------------------------------
# Loading


def read_meta(folder: str | Path) -> dict[str, Any]:
    """The checked `meta.json` of a model folder (at format version 2); ModelFileError when missing, bad or
    incompatible, when a listed file is missing or damaged, or when the folder holds a file meta.json does
    not list."""
    return read_folder_meta(folder, KIND)


def _meta_fields(meta: dict[str, Any], path: Path) -> dict[str, Any]:
    """The fields of meta.json other than the model's parameters, checked; ModelFileError when edited
    into something flowtui cannot use."""
    from flowtui.core.flow.features import FEATURE_NAMES

    def bad(message: str) -> ModelFileError:
        return ModelFileError(path, f"meta.json: {message}")

    features = meta["features"]
    if not all(isinstance(f, str) for f in features) or len(set(features)) != len(features):
        raise bad("'features' must be a list of distinct feature names")
    unknown = [f for f in features if f not in FEATURE_NAMES]
    if unknown:
        raise bad(f"unknown feature name(s) {', '.join(map(repr, unknown[:5]))}")
    smoothing = meta.get("smoothing")
    if (
        not isinstance(smoothing, int | float)
        or isinstance(smoothing, bool)
        or not math.isfinite(smoothing)
        or smoothing < 0
    ):
        raise bad(f"'smoothing' must be a number of at least 0, got {smoothing!r}")
    out: dict[str, Any] = {"features": list(features), "smoothing": float(smoothing)}
    for key, kind in (
        ("flow_only", bool),
        ("holdout", dict),
        ("notes", list),
        ("created", str),
        ("libraries", dict),
        ("data_fingerprint", str),
        ("data", dict),
    ):
        value = meta.get(key)  # None when missing: refused below like any other wrong value
        if not isinstance(value, kind):
            raise bad(f"{key!r} must be {kind.__name__}, got {value!r:.60}")
        out[key] = value
    if not all(isinstance(n, str) for n in out["notes"]):
        raise bad("'notes' must be a list of text lines")
    return out


def _read_data(folder: Path, meta: dict[str, Any], fields: dict[str, Any]) -> DataDescription | None:
    desc = read_training_data(folder, meta["files"], fields["data"], ModelFileError)
    if desc is not None and desc.fingerprint != fields["data_fingerprint"]:
        raise ModelFileError(folder / META_FILE, "meta.json: 'data' and 'data_fingerprint' disagree")
    return desc


def load_model(folder: str | Path) -> TrainedModel:
    """Load a model folder written by `save_model`; ModelFileError on anything missing, damaged or edited
    into something unusable (never a traceback, never a read outside the folder)."""
    folder = Path(folder)
    recover(folder, is_sealed)  # a complete folder of either kind is put back, never deleted
    meta = read_meta(folder)
    meta_path = folder / META_FILE
    try:
        spec = registry.get_spec(meta["model"])
    except KeyError as exc:
        raise ModelFileError(meta_path, str(exc.args[0])) from None
    try:
        params = dict(spec.params(meta["params"]))
    except ParamError as exc:
        raise ModelFileError(meta_path, f"meta.json: bad parameter: {exc}") from None
    fields = _meta_fields(meta, meta_path)
    data = _read_data(folder, meta, fields)
    try:
        model = spec.load(folder, params)
    except DataError as exc:
        raise ModelFileError(exc.path or folder, exc.message) from None
    except Exception as exc:  # any library error on a damaged file becomes one clear line
        detail = " ".join(str(exc).split())
        raise ModelFileError(
            folder, f"cannot load {meta['model']} model: {type(exc).__name__}: {detail}"
        ) from None
    from flowtui.core.flow.features import FEATURE_NAMES

    inner = getattr(model, "features_", None)
    if isinstance(inner, list):
        lacking = [f for f in inner if f in FEATURE_NAMES and f not in fields["features"]]
        if lacking:
            raise ModelFileError(
                meta_path, f"meta.json: 'features' lacks {', '.join(lacking[:5])}, which the model uses"
            )
    return TrainedModel(
        name=meta["model"],
        model=model,
        features=fields["features"],
        params=params,
        smoothing=fields["smoothing"],
        flow_only=fields["flow_only"],
        holdout=dict(fields["holdout"]),
        fingerprint=fields["data_fingerprint"],
        notes=[str(n) for n in fields["notes"]],
        created=fields["created"],
        libraries={str(k): str(v) for k, v in fields["libraries"].items()},
        data=data,
    )


# ---------------------------------------------------------------------------------------------------------
# Listing a models folder


@dataclass(frozen=True)
class SavedModel:
    """A model folder found by `list_models`: its name, where it is, which model it holds, and its meta.json."""

    name: str  # the folder's name (what the CLI's `--model` and the TUI's pickers offer)
    folder: Path
    model: str  # the registered model it holds (meta.json's "model"), e.g. "lightgbm"
    family: registry.Family
    meta: dict[str, Any] = field(repr=False, compare=False)

    @property
    def auc(self) -> float | None:
        """The holdout AUC recorded when it was trained (None when the folder has none)."""
        holdout = self.meta.get("holdout")
        auc = holdout.get("auc") if isinstance(holdout, dict) else None
        return float(auc) if isinstance(auc, int | float) and not isinstance(auc, bool) else None

    @property
    def can_recommend(self) -> bool:
        """Can it rank tracks for a user (the collaborative rbm and dbn, and hybrid)?"""
        return self.family in ("collaborative", "hybrid")


def list_models(models_dir: str | Path) -> list[SavedModel]:
    """The readable model folders in `models_dir`, by folder name; [] when the folder does not exist.

    A folder that is damaged, not a model folder, or holds a model this flowtui does not know is left out,
    as are the hidden folders `save_model` uses while it swaps a model in (`.NAME.*.tmp`, `.NAME.old-*`);
    a model whose folder an interrupted save left missing is put back first.
    Reading the families loads the registry (scikit-learn, LightGBM): call it off the UI thread.
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    for missing in interrupted(models_dir):
        recover(missing, is_sealed, wait=0.0)  # an interrupted save: put the model back
    found: list[SavedModel] = []
    for folder in sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            meta = read_meta(folder)
            spec = registry.get_spec(meta["model"])
        except (ModelFileError, KeyError, OSError):
            continue
        found.append(SavedModel(folder.name, folder, spec.name, spec.family, meta))
    return found

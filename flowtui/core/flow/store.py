"""Model folders: the model's own files (no pickle) plus `meta.json`, written atomically.

A saved model is a folder `DIR/NAME` holding what the model's `save` writes and a `meta.json` (format
version, model name, features, parameters, library versions, data fingerprint, holdout scores, notes,
creation time). `save_model` writes into a temporary sibling folder and swaps it in, so a crash or a cancel
mid-save leaves the previous model intact; `load_model` turns any damage into a one-line `ModelFileError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from flowtui.core import registry
from flowtui.core.data.schema import DataError
from flowtui.core.registry import FlowModel

FORMAT_VERSION = 1
META_FILE = "meta.json"
_LIBRARIES = ("flowtui", "numpy", "pandas", "scikit-learn", "lightgbm", "skops", "torch")


class ModelFileError(DataError):
    """A model folder that is missing, corrupted or from an incompatible version (the CLI exits 2)."""

    def __init__(self, path: str | Path, message: str) -> None:
        super().__init__(path, message)


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

    def meta(self) -> dict[str, Any]:
        """The `meta.json` document."""
        return {
            "format_version": FORMAT_VERSION,
            "model": self.name,
            "features": self.features,
            "params": self.params,
            "smoothing": self.smoothing,
            "flow_only": self.flow_only,
            "holdout": self.holdout,
            "data_fingerprint": self.fingerprint,
            "notes": self.notes,
            "created": self.created or datetime.now(UTC).isoformat(timespec="seconds"),
            "libraries": self.libraries or library_versions(),
        }


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a saved model depends on."""
    out: dict[str, str] = {}
    for lib in _LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[lib] = metadata.version(lib)
    return out


def fingerprint(frame: pd.DataFrame) -> str:
    """A short content hash of a data frame (row count and a SHA-1 of its row hashes)."""
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha1(hashes.tobytes()).hexdigest()[:16]
    return f"{len(frame)}:{digest}"


def _json_safe(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(trained: TrainedModel, folder: str | Path) -> Path:
    """Write `trained` into `folder` atomically (a previous model there survives any failure); returns it."""
    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    old: Path | None = None
    try:
        trained.model.save(tmp)
        meta = trained.meta()
        meta["files"] = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=_json_safe))
        if target.exists():
            # Two renames: the old folder steps aside, the new one steps in, then the old one goes.
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
        os.replace(tmp, target)
    except BaseException:
        if old is not None and old.exists() and not target.exists():
            os.replace(old, target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def read_meta(folder: str | Path) -> dict[str, Any]:
    """The checked `meta.json` of a model folder; ModelFileError when missing, bad or incompatible."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFileError(folder, "model folder not found (train one with `flowtui train`)")
    path = folder / META_FILE
    if not path.is_file():
        raise ModelFileError(path, "missing meta.json: not a flowtui model folder")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(path, f"unreadable meta.json ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(path, "meta.json is not a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            path, f"incompatible model format version {version!r} (this flowtui reads {FORMAT_VERSION})"
        )
    for key, kind in (("model", str), ("features", list), ("params", dict)):
        if not isinstance(meta.get(key), kind):
            raise ModelFileError(path, f"meta.json lacks a valid {key!r}")
    files = meta.get("files")
    if not isinstance(files, dict):
        raise ModelFileError(path, "meta.json lacks the list of model files")
    for name, digest in files.items():
        f = folder / str(name)
        if not f.is_file():
            raise ModelFileError(f, "model file missing")
        if _sha256(f) != digest:
            raise ModelFileError(
                f, "model file damaged (checksum differs from meta.json: truncated or edited?)"
            )
    return meta


def load_model(folder: str | Path) -> TrainedModel:
    """Load a model folder written by `save_model`; ModelFileError on anything missing or damaged."""
    folder = Path(folder)
    meta = read_meta(folder)
    try:
        spec = registry.get_spec(meta["model"])
    except KeyError as exc:
        raise ModelFileError(folder / META_FILE, str(exc.args[0])) from None
    try:
        model = spec.load(folder, dict(meta["params"]))
    except ModelFileError:
        raise
    except Exception as exc:  # any library error on a damaged file becomes one clear line
        detail = " ".join(str(exc).split())
        raise ModelFileError(
            folder, f"cannot load {meta['model']} model: {type(exc).__name__}: {detail}"
        ) from None
    return TrainedModel(
        name=meta["model"],
        model=model,
        features=[str(f) for f in meta["features"]],
        params=dict(meta["params"]),
        smoothing=float(meta.get("smoothing", 10.0)),
        flow_only=bool(meta.get("flow_only", False)),
        holdout=dict(meta.get("holdout") or {}),
        fingerprint=str(meta.get("data_fingerprint", "")),
        notes=[str(n) for n in meta.get("notes", [])],
        created=str(meta.get("created", "")),
        libraries=dict(meta.get("libraries") or {}),
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
    as are the hidden folders `save_model` uses while it swaps a model in (`.NAME.*.tmp`, `.NAME.old-*`).
    Reading the families loads the registry (scikit-learn, LightGBM): call it off the UI thread.
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    found: list[SavedModel] = []
    for folder in sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            meta = read_meta(folder)
            spec = registry.get_spec(meta["model"])
        except (ModelFileError, KeyError, OSError):
            continue
        found.append(SavedModel(folder.name, folder, spec.name, spec.family, meta))
    return found

"""Model folders: the model's own files (no pickle) plus `meta.json`, written atomically and safely.

A saved model is a folder `DIR/NAME` holding what the model's `save` writes, `data_sketch.json` (the ids of
its training data, see `data_match.py`) and a `meta.json` (format version, model name, features,
parameters, library versions, training data, holdout scores, notes, creation time, and the SHA-256 of every
other file in the folder).

Saving (`save_model`) never destroys what is not a model and never leaves a half model:
- `DIR/NAME` is replaced only when it is a flowtui model folder (a meta.json of ours and nothing but the
  files it lists) or an empty folder; anything else (a file, a link, a pipe, a folder of other files, a
  model folder with a file added) is refused with `ModelFileError` before anything is written.
- The new model is written to `DIR/.NAME.XXXXXXXX.tmp` (files fsynced, meta.json last, so a `.tmp` folder
  with a valid meta.json is complete) and swapped in by `safe_files.swap_in`: one atomic exchange on Linux,
  else two renames (old to `DIR/.NAME.old-PID`, new to `DIR/NAME`).
- Writers of one folder are serialised by an flock on `DIR/.NAME.lock`; a second writer gets
  `FolderBusyError` at once (the CLI checks and takes the locks of `train --out` before training).
- Crash leftovers (`.NAME.*.tmp`, `.NAME.old-*`) are cleaned by the next save or load that takes the lock;
  when `DIR/NAME` itself is missing (a crash between the two renames), the newest complete leftover (new
  before old) is renamed back into place.

Loading (`load_model`) turns any damage into a one-line `ModelFileError` (the CLI exits 2): every file in the
folder must be listed in meta.json with its checksum (names are plain names, or `sub/name` for a model's
subfolder: no `..`, no absolute paths, no links), and meta.json's fields and parameters are checked against
the model's schema before the model's loader runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from flowtui.core import registry
from flowtui.core.errors import DataError, ParamError
from flowtui.core.modelfiles.data_match import (
    SKETCH_FILE,
    DataDescription,
    DataMatch,
    DataMismatchError,
    check_data,
)
from flowtui.core.registry import FlowModel
from flowtui.core.safe_files import (
    FolderBusyError,
    UnsafePathError,
    check_output_dir,
    describe,
    file_sha256,
    folder_lock,
    fsync_dir,
    leftovers,
    lock_is_held,
    recover_folder,
    swap_in,
    temp_folder,
)

__all__ = [
    "FORMAT_VERSION",
    "META_FILE",
    "DataMatch",
    "DataMismatchError",
    "FolderBusyError",
    "ModelFileError",
    "SavedModel",
    "TrainedModel",
    "check_data",
    "check_model_target",
    "fingerprint",
    "library_versions",
    "list_models",
    "load_model",
    "read_meta",
    "save_model",
    "training_data",
]

FORMAT_VERSION = 1
META_FILE = "meta.json"
_LIBRARIES = ("flowtui", "numpy", "pandas", "scikit-learn", "lightgbm", "skops", "torch")
_MAX_META_BYTES = 16 << 20
_MEMBER_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_DIGEST = re.compile(r"[0-9a-f]{64}")

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


class ModelFileError(DataError):
    """A model folder that is missing, corrupted, from an incompatible version, or not ours to replace
    (the CLI exits 2)."""

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
    #: The training data (source file, rows, id sketches); filled by `save_model` from the frame that was
    #: fingerprinted when the trainer did not set it, and by `load_model` from the folder.
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


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a saved model depends on."""
    out: dict[str, str] = {}
    for lib in _LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[lib] = metadata.version(lib)
    return out


#: The frames `fingerprint` saw last, so that `save_model` can describe a model's training data when the
#: trainer only recorded the fingerprint (weak references: no frame is kept alive here).


def fingerprint(frame: pd.DataFrame) -> str:
    """A short content hash of a data frame (row count and a SHA-1 of its row hashes)."""
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha1(hashes.tobytes()).hexdigest()[:16]
    return f"{len(frame)}:{digest}"


def training_data(trained: TrainedModel) -> DataDescription | None:
    """The description of `trained`'s training data (None for a model whose trainer recorded none)."""
    return trained.data


def _json_safe(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# ---------------------------------------------------------------------------------------------------------
# What is inside a model folder


def _entries(folder: Path, prefix: str = "", depth: int = 0) -> list[str]:
    """Every file in `folder` as a `/`-separated relative name; ModelFileError on a link, a special file or
    nesting deeper than a model writes."""
    out: list[str] = []
    try:
        with os.scandir(folder) as it:
            found = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise ModelFileError(folder, f"cannot read folder: {exc.strerror or exc}") from None
    for e in found:
        rel = f"{prefix}{e.name}"
        if e.is_symlink():
            raise ModelFileError(folder / e.name, "is a symbolic link inside a model folder (refused)")
        if e.is_dir(follow_symlinks=False):
            if depth >= 3:
                raise ModelFileError(folder / e.name, "is nested too deep for a model folder")
            out.extend(_entries(folder / e.name, f"{rel}/", depth + 1))
        elif e.is_file(follow_symlinks=False):
            out.append(rel)
        else:
            raise ModelFileError(folder / e.name, f"is {describe(folder / e.name)} inside a model folder")
    return out


def _check_member(folder: Path, name: object) -> Path:
    """`folder / name` for a `files` entry of meta.json: plain names (or `sub/name`), never `..`, absolute
    or backslashed; ModelFileError otherwise."""
    parts = name.split("/") if isinstance(name, str) else []
    if not parts or len(parts) > 4 or not all(_MEMBER_PART.fullmatch(p) for p in parts) or name == META_FILE:
        raise ModelFileError(
            folder / META_FILE,
            f"meta.json lists a file name that is not a plain name inside the folder: {name!r}",
        )
    return folder.joinpath(*parts)


def _read_json(path: Path, what: str) -> Any:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ModelFileError(path, f"missing {what}: not a flowtui model folder") from None
    except OSError as exc:
        raise ModelFileError(path, f"unreadable {what} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(path, f"{what} is {describe(path)}, not a file")
    if st.st_size > _MAX_META_BYTES:
        raise ModelFileError(path, f"{what} is too large ({st.st_size:,} bytes)")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        detail = " ".join(str(exc).split())
        raise ModelFileError(path, f"unreadable {what} ({detail})") from None


def _foreign(folder: Path, why: str) -> ModelFileError:
    return ModelFileError(
        folder, f"{why}; flowtui replaces only its own model folders (move it away or choose another folder)"
    )


def check_model_target(folder: str | Path) -> None:
    """May `save_model` write `folder`? Only when nothing is there, it is an empty folder, or a flowtui model
    folder holding nothing but the files its meta.json lists (a damaged model may be replaced). Raises
    ModelFileError (or UnsafePathError for the parent folder) otherwise; changes nothing.
    """
    target = Path(folder)
    if not target.name or target.name in (".", ".."):
        raise ModelFileError(target, "is not a folder name")
    check_output_dir(target.parent)
    kind = describe(target)
    if kind is None:
        return
    if kind != "a folder":
        raise _foreign(target, f"is {kind}, not a model folder")
    try:
        names = _entries(target)
    except ModelFileError as exc:
        raise _foreign(target, f"holds {exc.path}, which {exc.message}") from None
    if not names:
        return
    if META_FILE not in names:
        raise _foreign(target, "is a folder without meta.json, not a flowtui model folder")
    try:
        meta = _read_json(target / META_FILE, "meta.json")
    except ModelFileError:
        raise _foreign(target, "holds a meta.json that flowtui did not write") from None
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), str) or not isinstance(files, dict):
        raise _foreign(target, "holds a meta.json that flowtui did not write")
    extra = [n for n in names if n != META_FILE and n not in files]
    if extra:
        shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
        raise _foreign(target, f"holds files flowtui did not write ({shown})")
    if not os.access(target, os.W_OK | os.X_OK):
        raise ModelFileError(target, "is read-only; flowtui cannot replace it")


# ---------------------------------------------------------------------------------------------------------
# Saving


def _is_complete(folder: Path) -> bool:
    try:
        read_meta(folder)
    except ModelFileError:
        return False
    return True


def _fsync_tree(folder: Path, names: list[str]) -> None:
    for name in names:
        fd = os.open(folder / name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for sub in sorted({str(Path(n).parent) for n in names}, key=len, reverse=True):
        fsync_dir(folder / sub)


def save_model(trained: TrainedModel, folder: str | Path) -> Path:
    """Write `trained` into `folder` atomically and return it (see the module docstring).

    Raises ModelFileError when `folder` is something other than a flowtui model folder or cannot be
    written (a full disk), FolderBusyError when another writer holds it, and whatever else the model's
    writer raises (the previous model survives).
    """
    target = Path(folder)
    check_model_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(target) as lock, lock.mutex:
        _step("locked")
        if lock.fresh:
            recover_folder(target, _is_complete)
        _step("cleaned")
        check_model_target(target)  # again, now that no other writer can change it
        tmp = temp_folder(target)
        old: Path | None = None
        try:
            _step("tmp_created")
            trained.model.save(tmp)
            _step("model_written")
            data = training_data(trained)
            if data is not None and not (tmp / SKETCH_FILE).exists():
                (tmp / SKETCH_FILE).write_text(json.dumps(data.sketch_doc()))
            meta = trained.meta()
            meta["data"] = data.summary() if data is not None else {}
            names = _entries(tmp)
            for name in names:
                _check_member(tmp, name)
            meta["files"] = {name: file_sha256(tmp / name) for name in names}
            _fsync_tree(tmp, names)
            with (tmp / META_FILE).open("w", encoding="utf-8") as fh:
                fh.write(json.dumps(meta, indent=2, default=_json_safe))
                fh.flush()
                os.fsync(fh.fileno())
            fsync_dir(tmp)
            _step("meta_written")
            old = swap_in(tmp, target, _step)
            fsync_dir(target.parent)
            _step("swapped")
        except BaseException as exc:
            for leftover in (tmp, old):
                if leftover is not None and leftover != target and os.path.lexists(leftover):
                    _remove_tree(leftover)
            if isinstance(exc, OSError):  # a full disk: name the model folder, not the temporary one
                reason = (exc.strerror or str(exc)).replace(str(tmp), str(target))
                raise ModelFileError(target, f"cannot save the model: {reason}") from None
            raise
        if old is not None:
            _remove_tree(old)
        _step("done")
    return target


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# Loading


def _recover(folder: Path, wait: float = 2.0) -> None:
    """Clean up after an interrupted save of `folder` (and put a complete model back when it is missing).

    Does nothing when there is nothing left over, or when this process is saving it. When another process
    holds the lock and `folder` is missing, waits up to `wait` seconds for its swap to finish."""
    if not leftovers(folder) or lock_is_held(folder):
        return
    deadline = time.monotonic() + wait
    while True:
        try:
            with folder_lock(folder) as lock:
                if lock.fresh:
                    recover_folder(folder, _is_complete)
            return
        except FolderBusyError:
            if os.path.lexists(folder) or time.monotonic() > deadline:
                return
            time.sleep(0.05)
        except (UnsafePathError, OSError):
            return  # a read-only models folder: read what is there


def read_meta(folder: str | Path) -> dict[str, Any]:
    """The checked `meta.json` of a model folder; ModelFileError when missing, bad or incompatible, when a
    listed file is missing or damaged, or when the folder holds a file meta.json does not list."""
    folder = Path(folder)
    try:
        kind = describe(folder)
    except UnsafePathError as exc:
        raise ModelFileError(folder, exc.message) from None
    if kind is None:
        raise ModelFileError(folder, "model folder not found (train one with `flowtui train`)")
    if kind != "a folder" and not (kind == "a symbolic link" and folder.is_dir()):
        raise ModelFileError(folder, f"is {kind}, not a model folder")
    path = folder / META_FILE
    meta = _read_json(path, "meta.json")
    if not isinstance(meta, dict):
        raise ModelFileError(path, "meta.json is not a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            path, f"incompatible model format version {version!r} (this flowtui reads {FORMAT_VERSION})"
        )
    for key, kind_ in (("model", str), ("features", list), ("params", dict)):
        if not isinstance(meta.get(key), kind_):
            raise ModelFileError(path, f"meta.json lacks a valid {key!r}")
    files = meta.get("files")
    if not isinstance(files, dict):
        raise ModelFileError(path, "meta.json lacks the list of model files")
    present = set(_entries(folder))  # refuses links and special files anywhere inside
    for name, digest in files.items():
        f = _check_member(folder, name)
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise ModelFileError(path, f"meta.json has no valid checksum for {name!r}")
        if name not in present:
            raise ModelFileError(f, "model file missing")
        if file_sha256(f) != digest:
            raise ModelFileError(
                f, "model file damaged (checksum differs from meta.json: truncated or edited?)"
            )
    extra = sorted(present - set(files) - {META_FILE})
    if extra:
        raise ModelFileError(
            folder / extra[0], "file not listed in meta.json: flowtui model folders hold only their own files"
        )
    return meta


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
    smoothing = meta.get("smoothing", 10.0)
    if (
        not isinstance(smoothing, int | float)
        or isinstance(smoothing, bool)
        or not math.isfinite(smoothing)
        or smoothing < 0
    ):
        raise bad(f"'smoothing' must be a number of at least 0, got {smoothing!r}")
    out: dict[str, Any] = {"features": list(features), "smoothing": float(smoothing)}
    for key, kind, default in (
        ("flow_only", bool, False),
        ("holdout", dict, {}),
        ("notes", list, []),
        ("created", str, ""),
        ("libraries", dict, {}),
        ("data_fingerprint", str, ""),
        ("data", dict, {}),
    ):
        value = meta.get(key, default)
        if value is None and key in ("holdout", "data"):
            value = default
        if not isinstance(value, kind):
            raise bad(f"{key!r} must be {kind.__name__}, got {value!r:.60}")
        out[key] = value
    if not all(isinstance(n, str) for n in out["notes"]):
        raise bad("'notes' must be a list of text lines")
    return out


def _read_data(folder: Path, meta: dict[str, Any], fields: dict[str, Any]) -> DataDescription | None:
    import binascii
    import zlib

    summary: dict[str, Any] = fields["data"]
    if not summary:
        return None
    if summary.get("sketch") != SKETCH_FILE or SKETCH_FILE not in meta["files"]:
        raise ModelFileError(folder / META_FILE, f"meta.json: 'data' does not name a listed {SKETCH_FILE}")
    doc = _read_json(folder / SKETCH_FILE, SKETCH_FILE)
    try:
        desc = DataDescription.from_docs(summary, doc)
    except (ValueError, binascii.Error, zlib.error) as exc:
        raise ModelFileError(folder / SKETCH_FILE, f"damaged data sketch ({exc})") from None
    if desc.fingerprint != fields["data_fingerprint"]:
        raise ModelFileError(folder / META_FILE, "meta.json: 'data' and 'data_fingerprint' disagree")
    return desc


def load_model(folder: str | Path) -> TrainedModel:
    """Load a model folder written by `save_model`; ModelFileError on anything missing, damaged or edited
    into something unusable (never a traceback, never a read outside the folder)."""
    folder = Path(folder)
    _recover(folder)
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


_LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?:[a-z0-9_]{8}\.tmp|old-\d+)")


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
    with contextlib.suppress(OSError):
        for leftover in sorted(
            {m["name"] for p in models_dir.iterdir() if (m := _LEFTOVER.fullmatch(p.name))}
        ):
            if not os.path.lexists(models_dir / leftover):
                _recover(models_dir / leftover, wait=0.0)  # an interrupted save: put the model back
    found: list[SavedModel] = []
    for folder in sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            meta = read_meta(folder)
            spec = registry.get_spec(meta["model"])
        except (ModelFileError, KeyError, OSError):
            continue
        found.append(SavedModel(folder.name, folder, spec.name, spec.family, meta))
    return found

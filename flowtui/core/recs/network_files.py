"""RBM and DBN files: weights and arrays as torch tensors (.pt), kind, parameters and versions as JSON.

`save_network` writes the pair atomically and records the .pt file's SHA-256 in the JSON, so a torn or
damaged pair is refused on load (`RBMFileError`); the weights are read with `torch.load(weights_only=True)`,
which executes no code from the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from flowtui.core.errors import DataError
from flowtui.core.recs.dbn import DBN
from flowtui.core.recs.rbm import RBM

FORMAT_VERSION = 1


class RBMFileError(DataError):
    """A model file that is corrupted, truncated or from an incompatible version."""


def save_network(
    net: RBM | DBN,
    path: str | Path,
    arrays: dict[str, np.ndarray] | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    """Write `path` (.pt: weights and `arrays` as tensors) and `path.json` (kind, params, versions, checksum).

    Both writes are atomic; the JSON records the .pt file's SHA-256 so a torn pair is detected on load."""
    import torch

    from flowtui.core.safe_files import atomic_path

    path = Path(path)
    tensors = {f"net.{k}": v for k, v in net.state_dict().items()}
    for k, a in (arrays or {}).items():
        tensors[f"array.{k}"] = torch.from_numpy(np.ascontiguousarray(a))
    with atomic_path(path) as tmp:
        torch.save(tensors, tmp)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    doc = {
        "format": "flowtui-rbm",
        "format_version": FORMAT_VERSION,
        "kind": net.name,
        "params": net.get_params(),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "sha256": digest,
        "meta": meta or {},
    }
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(doc, indent=2))


def load_network(
    path: str | Path, device: str = "auto"
) -> tuple[RBM | DBN, dict[str, np.ndarray], dict[str, Any]]:
    """Read a pair written by `save_network`: (network, arrays, meta). RBMFileError on any damage."""
    import torch

    path = Path(path)
    doc = _read_description(path)
    try:
        tensors = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RBMFileError(path, f"corrupted model file ({type(exc).__name__})") from None
    if not isinstance(tensors, dict):
        raise RBMFileError(path, "not a flowtui RBM weight file")
    params = dict(doc.get("params") or {})
    params["device"] = device
    if doc.get("kind") == "dbn":
        params.setdefault("deep_mix", 0.5)  # DBNs saved before deep_mix existed scored with a half mix
    params.setdefault("catalogue_context", False)  # networks saved before it existed have no catalogue
    state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
    arrays = {k[6:]: v.numpy() for k, v in tensors.items() if k.startswith("array.")}
    try:
        net: RBM | DBN = DBN(**params) if doc.get("kind") == "dbn" else RBM(**params)
        net.load_state_dict(state)
    except (KeyError, TypeError, ValueError) as exc:
        raise RBMFileError(path, f"incompatible model weights ({exc})") from None
    return net, arrays, dict(doc.get("meta") or {})


def _read_description(path: Path) -> dict[str, Any]:
    """The JSON description of the .pt file `path`, checked: format, version and the .pt file's checksum."""
    jpath = path.with_suffix(".json")
    try:
        doc = json.loads(jpath.read_text())
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise RBMFileError(exc.filename, "model file missing") from None
    except (OSError, ValueError) as exc:
        raise RBMFileError(jpath, f"unreadable model description ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != "flowtui-rbm":
        raise RBMFileError(jpath, "not a flowtui RBM model description")
    if doc.get("format_version") != FORMAT_VERSION:
        raise RBMFileError(
            jpath,
            "incompatible model format",
            expected=str(FORMAT_VERSION),
            found=str(doc.get("format_version")),
        )
    if hashlib.sha256(raw).hexdigest() != doc.get("sha256"):
        raise RBMFileError(path, "corrupted model file (checksum mismatch)")
    return doc

"""Checks of a saved recommender's arrays before they are used: a checksum proves integrity, not sense.

A folder whose files were edited and whose checksums were recomputed still holds arrays of the wrong shape,
ids that repeat, indices out of range or NaN weights; scoring with them would give wrong lists or empty ones
without a word. Each `_restore` calls these on what it reads; a failure is a ValueError naming the array,
which the store turns into one line (`RecommenderFileError`).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def array(arrays: dict[str, np.ndarray], name: str, *, ndim: int, kind: str) -> np.ndarray:
    """`arrays[name]`, required to have `ndim` dimensions and a dtype kind in `kind` ("f", "iu", "b")."""
    if name not in arrays:
        raise ValueError(f"state.npz has no {name!r} array")
    a = arrays[name]
    if a.ndim != ndim or a.dtype.kind not in kind:
        raise ValueError(
            f"state.npz {name!r} is a {a.ndim}-d {a.dtype} array; expected {ndim}-d of kind {kind!r}"
        )
    return a


def finite(name: str, a: np.ndarray) -> np.ndarray:
    """`a` when every value is finite (no NaN, no infinity)."""
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"state.npz {name!r} holds NaN or infinite values")
    return a


def shape(name: str, a: np.ndarray, expected: tuple[int, ...]) -> np.ndarray:
    """`a` when its shape is `expected`."""
    if a.shape != expected:
        raise ValueError(f"state.npz {name!r} has shape {a.shape}; the model needs {expected}")
    return a


def item_vector(arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    """`arrays[name]` as float32: one finite number per item of the saved vocabulary."""
    a = array(arrays, name, ndim=1, kind="fiu")
    return finite(name, shape(name, a, (len(arrays["item_ids"]),))).astype(np.float32)


def indices(name: str, a: np.ndarray, n: int) -> np.ndarray:
    """`a` when every index lies in 0..n-1."""
    if a.size and (int(a.min()) < 0 or int(a.max()) >= n):
        raise ValueError(f"state.npz {name!r} holds indices outside 0..{n - 1}")
    return a


def item_ids(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The saved item vocabulary: non-empty, integer, strictly increasing (hence distinct)."""
    ids = array(arrays, "item_ids", ndim=1, kind="iu")
    if not len(ids):
        raise ValueError("state.npz 'item_ids' is empty")
    if len(ids) > 1 and not (np.diff(ids.astype(np.int64)) > 0).all():
        raise ValueError("state.npz 'item_ids' are not distinct and sorted")
    return ids.astype(np.int64)


def state_doc(doc: Any, name: str) -> dict[str, Any]:
    """state.json checked: the model's name and fields of the right types (`implicit` a JSON boolean)."""
    if not isinstance(doc, dict) or doc.get("model") != name:
        raise ValueError(f"state.json does not describe a {name} model")
    types: dict[str, tuple[type, ...]] = {
        "implicit": (bool,),
        "n_users": (int,),
        "fit_seconds": (int, float),
        "notes": (list,),
    }
    for key, allowed in types.items():
        value = doc.get(key)
        if key in doc and (not isinstance(value, allowed) or (key != "implicit" and isinstance(value, bool))):
            raise ValueError(f"state.json {key!r} is {value!r}; expected {allowed[0].__name__}")
    if doc.get("n_users", 0) < 0 or not np.isfinite(doc.get("fit_seconds", 0.0)):
        raise ValueError("state.json holds a negative user count or a non-finite fit time")
    return doc

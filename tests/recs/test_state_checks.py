"""A saved recommender's arrays are checked on load: edited files with valid checksums are still refused.

These run at the model level (`Model.save` / `Model.load`), under the store's checksums: the store turns
each ValueError into one line (`RecommenderFileError`), which tests/recs/test_store.py covers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowtui.core import registry
from flowtui.core.recs.interactions import recommender_matrix
from tests.recs.conftest import FAST, build

Arrays = dict[str, np.ndarray]
MODELS = ("popularity", "item_mean", "ease", "item_knn", "als")


@pytest.fixture(scope="module")
def saved(blocks: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    matrix = recommender_matrix(blocks)
    out = {}
    for name in MODELS:
        folder = tmp_path_factory.mktemp(name)
        build(name).fit(matrix).save(folder)
        out[name] = folder
    return out


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _edit_arrays(folder: Path, edit: Callable[[Arrays], Arrays]) -> None:
    with np.load(folder / "state.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    with (folder / "state.npz").open("wb") as fh:
        np.savez(fh, allow_pickle=False, **edit(arrays))


def _set(key: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Arrays], Arrays]:
    return lambda a: {**a, key: fn(a[key])}


def _nan(a: np.ndarray) -> np.ndarray:
    out = a.astype(np.float32).copy()
    out.reshape(-1)[0] = np.nan
    return out


def _inf(a: np.ndarray) -> np.ndarray:
    out = a.astype(np.float32).copy()
    out.reshape(-1)[-1] = np.inf
    return out


COMMON: dict[str, Callable[[Arrays], Arrays]] = {
    "item ids shorter": _set("item_ids", lambda a: a[:-1]),
    "item ids repeated": _set("item_ids", lambda a: np.concatenate([a[:1], a[:-1]])),
    "item ids as floats": _set("item_ids", lambda a: a.astype(np.float64)),
    "item ids empty": _set("item_ids", lambda a: a[:0]),
}
PER_MODEL: dict[str, dict[str, Callable[[Arrays], Arrays]]] = {
    "popularity": {"NaN counts": _set("counts", _nan), "counts short": _set("counts", lambda a: a[:-1])},
    "item_mean": {"inf rate": _set("rate", _inf), "rate 2-d": _set("rate", lambda a: a[None, :])},
    "ease": {
        "NaN weights": _set("B", _nan),
        "kept out of range": _set("kept", lambda a: a + 10_000),
        "weights not square": _set("B", lambda a: a[:, :-1]),
    },
    "item_knn": {
        "neighbour index out of range": _set("sim_indices", lambda a: a + 10_000),
        "inf similarity": _set("sim_data", _inf),
        "indptr cut": _set("sim_indptr", lambda a: a[:-1]),
    },
    "als": {
        "factors wrong shape": _set("item_factors", lambda a: a[:, :-1]),
        "factors short": _set("item_factors", lambda a: a[:-1]),
        "NaN factors": _set("item_factors", _nan),
    },
}
CASES = [(m, how, fn) for m in MODELS for how, fn in {**COMMON, **PER_MODEL[m]}.items()]


@pytest.mark.parametrize(("name", "how", "edit"), CASES, ids=[f"{m}-{h}" for m, h, _ in CASES])
def test_edited_arrays_are_refused(
    saved: dict[str, Path], tmp_path: Path, name: str, how: str, edit: Callable[[Arrays], Arrays]
) -> None:
    folder = _copy(saved[name], tmp_path / name)
    _edit_arrays(folder, edit)
    with pytest.raises(ValueError, match=r"state\.npz"):
        registry.get_recommender(name).load(folder, dict(FAST.get(name, {})))


@pytest.mark.parametrize("name", MODELS)
def test_the_untouched_folder_loads(saved: dict[str, Path], name: str) -> None:
    model = registry.get_recommender(name).load(saved[name], dict(FAST.get(name, {})))
    assert len(model.item_ids_) == 120


@pytest.mark.parametrize(
    ("key", "value"),
    [("implicit", "false"), ("implicit", 1), ("n_users", "150"), ("n_users", -1), ("notes", "x")],
)
def test_state_json_fields_of_the_wrong_type_are_refused(
    saved: dict[str, Path], tmp_path: Path, key: str, value: object
) -> None:
    folder = _copy(saved["ease"], tmp_path / "ease")
    doc = json.loads((folder / "state.json").read_text())
    (folder / "state.json").write_text(json.dumps({**doc, key: value}))
    with pytest.raises(ValueError, match=r"state\.json"):
        registry.get_recommender("ease").load(folder, None)

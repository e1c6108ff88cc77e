"""Recommender folders edited by hand, with the checksums recomputed (a checksum proves integrity, not
sense): every lie in meta.json, every link or extra file and every state array out of shape is refused on
load with one line (issue 20, items 2 and 4)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flowtui.core.modelfiles import ModelFolderError, fingerprint
from flowtui.core.modelfiles.data_match import describe_data
from flowtui.core.recs.interactions import recommender_matrix
from flowtui.core.recs.recommender import RecommenderBase
from flowtui.core.recs.store import RecommenderFileError, load_recommender, save_recommender
from flowtui.core.workflows.recs import open_model
from tests.recs.conftest import block_frame, build


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return block_frame()


@pytest.fixture(scope="module")
def fitted(frame: pd.DataFrame) -> dict[str, RecommenderBase]:
    matrix = recommender_matrix(frame)
    return {name: build(name).fit(matrix) for name in ("ease", "item_knn", "als")}


def saved(fitted: dict[str, RecommenderBase], frame: pd.DataFrame, folder: Path, name: str = "ease") -> Path:
    data = describe_data(frame, fingerprint(frame), source="train.csv")
    return save_recommender(fitted[name], folder, fingerprint=data.fingerprint, data=data)


def rehash(folder: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Rewrite meta.json after `edit(meta)`, with every listed file's checksum recomputed."""
    meta = json.loads((folder / "meta.json").read_text())
    if edit is not None:
        edit(meta)
    for name in meta.get("files", {}):
        if (folder / name).is_file():
            meta["files"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "meta.json").write_text(json.dumps(meta))


def refused(folder: Path, *words: str) -> str:
    """The one-line refusal of `folder`, by the loader and by `recommend`'s opener."""
    for opener in (load_recommender, open_model):
        # (`recommend` reads a folder it cannot tell as a recommender's as a Flow model's)
        with pytest.raises(RecommenderFileError if opener is load_recommender else ModelFolderError) as info:
            opener(folder)
        message = str(info.value)
        assert "\n" not in message
        for word in words:
            assert word in message, message
    return message


def _drop_data(meta: dict[str, Any]) -> None:
    del meta["data"]


META_LIES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "n_items": (lambda m: m.update(n_items=m["n_items"] + 7), "n_items"),
    "n_items as a string": (lambda m: m.update(n_items=str(m["n_items"])), "n_items"),
    "n_users": (lambda m: m.update(n_users=m["n_users"] * 2), "n_users"),
    "implicit flipped": (lambda m: m.update(implicit=not m["implicit"]), "implicit"),
    "implicit as a string": (lambda m: m.update(implicit=str(m["implicit"]).lower()), "implicit"),
    "level of another catalogue": (lambda m: m.update(level="artist"), "level"),
    "level as a path": (lambda m: m.update(level="../../x"), "level"),
    "no data section": (_drop_data, "data"),
    "data items of other data": (lambda m: m["data"].update(items=m["data"]["items"] + 1), "data"),
    "data rows negative": (lambda m: m["data"].update(rows=-5), "data"),
}


@pytest.mark.parametrize("case", list(META_LIES))
def test_a_meta_json_that_lies_is_refused(
    fitted: dict[str, RecommenderBase], frame: pd.DataFrame, tmp_path: Path, case: str
) -> None:
    folder = saved(fitted, frame, tmp_path / "ease")
    edit, word = META_LIES[case]
    rehash(folder, edit)
    refused(folder, word)


def test_an_untouched_folder_loads(
    fitted: dict[str, RecommenderBase], frame: pd.DataFrame, tmp_path: Path
) -> None:
    from flowtui.core import registry

    matrix = recommender_matrix(frame)
    for name in registry.recommender_names():
        model = fitted[name] if name in fitted else build(name).fit(matrix)
        back = load_recommender(saved({name: model}, frame, tmp_path / name, name))
        assert len(back.item_ids_) == len(model.item_ids_) and back.implicit_ == model.implicit_


def test_a_model_saved_without_its_data_still_loads(
    fitted: dict[str, RecommenderBase], tmp_path: Path
) -> None:
    folder = save_recommender(fitted["ease"], tmp_path / "ease", fingerprint="1:x")
    assert load_recommender(folder).trained_on is None


def test_an_unlisted_extra_file_is_refused(
    fitted: dict[str, RecommenderBase], frame: pd.DataFrame, tmp_path: Path
) -> None:
    folder = saved(fitted, frame, tmp_path / "ease")
    (folder / "notes.txt").write_text("mine")
    rehash(folder)
    refused(folder, "not listed")


def test_a_symlinked_member_is_refused(
    fitted: dict[str, RecommenderBase], frame: pd.DataFrame, tmp_path: Path
) -> None:
    folder = saved(fitted, frame, tmp_path / "ease")
    shutil.copy(folder / "state.json", tmp_path / "state.json")
    (folder / "state.json").unlink()
    (folder / "state.json").symlink_to(tmp_path / "state.json")
    rehash(folder)
    refused(folder, "symbolic link")


def test_state_npz_linked_outside_the_folder_is_refused(
    fitted: dict[str, RecommenderBase], frame: pd.DataFrame, tmp_path: Path
) -> None:
    folder = saved(fitted, frame, tmp_path / "ease")
    outside = tmp_path / "elsewhere.npz"
    shutil.move(folder / "state.npz", outside)
    (folder / "state.npz").symlink_to(outside)
    rehash(folder)
    refused(folder, "symbolic link")
    assert outside.exists()


def test_deeply_nested_meta_json_is_one_line(
    fitted: dict[str, RecommenderBase], frame: pd.DataFrame, tmp_path: Path
) -> None:
    folder = saved(fitted, frame, tmp_path / "ease")
    meta = (folder / "meta.json").read_text()
    deep = "[" * 200_000 + "]" * 200_000
    (folder / "meta.json").write_text(meta.replace('"notes": [', f'"deep": {deep}, "notes": [', 1))
    refused(folder, "meta.json")


def _edit_state(folder: Path, **changes: np.ndarray) -> None:
    with np.load(folder / "state.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    with (folder / "state.npz").open("wb") as fh:
        np.savez(fh, allow_pickle=False, **arrays)


@pytest.mark.parametrize("name", ["ease", "item_knn", "als"])
def test_item_ids_shorter_than_the_matrix_are_refused(
    fitted: dict[str, RecommenderBase], frame: pd.DataFrame, tmp_path: Path, name: str
) -> None:
    folder = saved(fitted, frame, tmp_path / name, name)
    short = fitted[name].item_ids_[:-5]
    _edit_state(folder, item_ids=short)
    rehash(folder, lambda m: m.update(n_items=len(short)))
    refused(folder, name)


@pytest.mark.parametrize("shape", [(120, 3), (115, 8), (8, 120)])
def test_als_factors_of_the_wrong_shape_are_refused(
    fitted: dict[str, RecommenderBase], frame: pd.DataFrame, tmp_path: Path, shape: tuple[int, int]
) -> None:
    folder = saved(fitted, frame, tmp_path / "als", "als")
    _edit_state(folder, item_factors=np.ones(shape, np.float32))
    rehash(folder)
    refused(folder, "item_factors")


@pytest.fixture(scope="module")
def rbm() -> RecommenderBase:
    return build("rbm").fit(recommender_matrix(block_frame(implicit=True, seed=1), implicit=True))


@pytest.mark.parametrize("case", ["groups of other data", "unknown levels", "groups out of range"])
def test_rbm_catalogue_levels_of_other_data_are_refused(
    rbm: RecommenderBase, tmp_path: Path, case: str
) -> None:
    import torch

    folder = save_recommender(rbm, tmp_path / "rbm")
    state = torch.load(folder / "exposure.pt", weights_only=True)
    groups = state["net.catalogue_groups"]
    if case == "groups of other data":
        state["net.catalogue_groups"] = groups[:, :100].clone()
    elif case == "unknown levels":
        state["net.catalogue_levels"] = torch.tensor([0, 7])
    else:
        state["net.catalogue_groups"] = groups + 1000
    torch.save(state, folder / "exposure.pt")
    rehash(folder)
    refused(folder, "rbm")


@pytest.mark.parametrize("depth", [70, 900])
def test_meta_json_nested_below_the_recursion_limit_is_refused_too(
    fitted: dict[str, RecommenderBase], frame: pd.DataFrame, tmp_path: Path, depth: int
) -> None:
    """Parsed fine, but printed (`json.dumps`) or walked later it would raise RecursionError."""
    folder = saved(fitted, frame, tmp_path / "ease")
    rehash(folder, lambda m: m.update(libraries=json.loads("[" * depth + "]" * depth)))
    assert "nested deeper" in refused(folder, "meta.json")

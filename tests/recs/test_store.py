"""Recommender folders: atomic, refusing what flowtui did not write, damage reported in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowtui.core.modelfiles import fingerprint as data_fingerprint
from flowtui.core.recs.interactions import recommender_matrix
from flowtui.core.recs.recommender import RecommenderBase
from flowtui.core.recs.store import (
    RecommenderFileError,
    is_recommender_folder,
    load_recommender,
    read_recommender_meta,
    save_recommender,
)
from tests.recs.conftest import build


@pytest.fixture(scope="module")
def fitted(blocks: pd.DataFrame) -> RecommenderBase:
    return build("item_knn").fit(recommender_matrix(blocks))


def test_meta_json_describes_the_model(fitted: RecommenderBase, blocks: pd.DataFrame, tmp_path: Path) -> None:
    folder = save_recommender(fitted, tmp_path / "knn", fingerprint=data_fingerprint(blocks))
    meta = read_recommender_meta(folder)
    assert meta["format"] == "flowtui-recommender" and meta["format_version"] == 1
    assert meta["model"] == "item_knn" and meta["params"]["k"] == 20
    assert meta["n_items"] == 120 and meta["n_users"] == 150 and meta["implicit"] is False
    assert meta["data_fingerprint"] == data_fingerprint(blocks) and "numpy" in meta["libraries"]
    assert set(meta["files"]) == {p.name for p in folder.iterdir()} - {"meta.json"}
    assert is_recommender_folder(folder) and not is_recommender_folder(tmp_path)


def test_a_failed_save_keeps_the_previous_model(
    fitted: RecommenderBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = save_recommender(fitted, tmp_path / "knn")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def boom(self: RecommenderBase, target: Path) -> None:
        (Path(target) / "state.npz").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(type(fitted), "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_recommender(fitted, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["knn"]


def test_foreign_folders_and_files_are_never_replaced(fitted: RecommenderBase, tmp_path: Path) -> None:
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(RecommenderFileError, match="not a flowtui model folder"):
        save_recommender(fitted, mine)
    assert (mine / "cat.jpg").read_bytes() == b"meow"
    (tmp_path / "file").write_text("x")
    with pytest.raises(RecommenderFileError, match="is a file"):
        save_recommender(fitted, tmp_path / "file")
    folder = save_recommender(fitted, tmp_path / "knn")
    (folder / "extra.txt").write_text("added by hand")
    with pytest.raises(RecommenderFileError, match="did not write"):
        save_recommender(fitted, folder)


def test_damage_is_one_clear_error(fitted: RecommenderBase, tmp_path: Path) -> None:
    folder = save_recommender(fitted, tmp_path / "knn")
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text())
    for change, message in (
        ({"format_version": 99}, "incompatible recommender format version 99"),
        ({"model": "svd"}, "unknown recommender 'svd'"),
        ({"files": {**meta["files"], "../x": "0"}}, "bad file name"),
        ({"params": {"k": -3}}, "cannot load item_knn"),
    ):
        meta_path.write_text(json.dumps({**meta, **change}))
        with pytest.raises(RecommenderFileError, match=message):
            load_recommender(folder)
    meta_path.write_text(json.dumps(meta))
    np.testing.assert_array_equal(load_recommender(folder).fold_in([0]), fitted.fold_in([0]))
    meta_path.write_text("{not json")
    with pytest.raises(RecommenderFileError, match=r"unreadable meta\.json"):
        load_recommender(folder)


def test_a_saved_recommender_knows_its_data(
    fitted: RecommenderBase, blocks: pd.DataFrame, tmp_path: Path
) -> None:
    from flowtui.core.modelfiles.data_match import SKETCH_FILE, DataMismatchError, describe_data
    from flowtui.core.recs.recommend import check_model_data

    desc = describe_data(blocks, data_fingerprint(blocks), source="/data/blocks.csv")
    folder = save_recommender(fitted, tmp_path / "knn", data=desc)
    meta = read_recommender_meta(folder)
    assert meta["data"]["source"] == "/data/blocks.csv" and SKETCH_FILE in meta["files"]
    model = load_recommender(folder)
    assert model.trained_fingerprint == desc.fingerprint and model.trained_on is not None
    assert check_model_data(model, blocks).same
    later = blocks[blocks["user_id"] < 120]  # a part of the same data: works, with the shares
    match = check_model_data(model, later, source="later.csv")
    assert not match.same and match.user_known == 1.0 and "later.csv" in (match.warning or "")
    other = blocks.assign(media_id=blocks["media_id"] + 10_000, user_id=blocks["user_id"] + 10_000)
    with pytest.raises(DataMismatchError, match=r"other\.csv.*/data/blocks\.csv.*0% of its users"):
        check_model_data(model, other, source="other.csv")
    allowed = check_model_data(model, other, source="other.csv", allow_other=True)
    assert allowed.item_known == 0.0 and "used anyway" in (allowed.warning or "")
    bare = load_recommender(save_recommender(fitted, tmp_path / "bare"))  # no description: its vocabulary
    assert bare.trained_on is None
    with pytest.raises(DataMismatchError, match="0% of its media"):
        check_model_data(bare, other)
    (folder / SKETCH_FILE).write_text("{}")
    with pytest.raises(RecommenderFileError):
        load_recommender(folder)

"""Format versions: folders saved by older flowtui versions still load (through one migration per version
step), newer or bogus versions are refused in one line, and each kind tells its folders from the other's.

`v1/flow_constant` and `v1/recs_popularity` were saved by the code before format 2 (`flowtui train -m
constant` and `flowtui train-recs -m popularity` on `flowtui data synth --users 8`); they are copied before
loading, since loading may clean leftovers beside a folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flowtui.core.flow.store import (
    FORMAT_VERSION,
    META_FILE,
    ModelFileError,
    load_model,
    migrate_1_to_2,
    read_meta,
    save_model,
)
from flowtui.core.modelfiles import FolderKind, ModelFolderError
from flowtui.core.modelfiles.data_match import SKETCH_FILE
from flowtui.core.recs.store import (
    RecommenderFileError,
    is_recommender_folder,
    load_recommender,
    read_recommender_meta,
)

V1 = Path(__file__).parent / "v1"


def copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(V1 / name, tmp_path / "models" / name))


def edit_meta(folder: Path, **changes: object) -> dict[str, object]:
    meta: dict[str, object] = json.loads((folder / META_FILE).read_text())
    meta.update(changes)
    (folder / META_FILE).write_text(json.dumps(meta))
    return meta


def test_a_flow_model_of_format_1_loads(tmp_path: Path) -> None:
    folder = copy("flow_constant", tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert json.loads(before[META_FILE])["format_version"] == 1 and FORMAT_VERSION == 2
    trained = load_model(folder)
    assert trained.name == "constant" and trained.holdout["auc"] == 0.5
    assert trained.fingerprint == "2616:7836105e7fa02635" and len(trained.features) == 33
    assert trained.data is not None and trained.data.rows == 2616 and trained.data.users.n == 8
    meta = read_meta(folder)
    assert meta["format_version"] == 2 and meta["data"]["rows"] == 2616
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # reading rewrites nothing


def test_a_flow_model_of_format_1_saved_before_data_was_kept_loads(tmp_path: Path) -> None:
    folder = copy("flow_constant", tmp_path)
    meta = json.loads((folder / META_FILE).read_text())
    del meta["data"], meta["files"][SKETCH_FILE]
    (folder / SKETCH_FILE).unlink()
    (folder / META_FILE).write_text(json.dumps(meta))
    trained = load_model(folder)
    assert trained.data is None and trained.fingerprint == "2616:7836105e7fa02635"
    assert read_meta(folder)["data"] == {}


def test_a_loaded_format_1_model_is_saved_as_format_2(tmp_path: Path) -> None:
    trained = load_model(copy("flow_constant", tmp_path))
    again = save_model(trained, tmp_path / "again")
    meta = json.loads((again / META_FILE).read_text())
    assert meta["format_version"] == 2 and meta["data"]["fingerprint"] == trained.fingerprint
    back = load_model(again).data
    assert back is not None and trained.data is not None
    assert back.summary() == trained.data.summary() and back.sketch_doc() == trained.data.sketch_doc()


def test_migrate_1_to_2_adds_only_what_format_2_requires() -> None:
    old = {"format_version": 1, "model": "constant", "holdout": {"auc": 0.5}}
    assert migrate_1_to_2(old) == {**old, "data": {}}
    kept = {**old, "data": {"rows": 3}}
    assert migrate_1_to_2(kept) == kept
    assert "data" not in old  # the argument is left as it was


@pytest.mark.parametrize("version", [3, 0, "1", True, None, 1.0])
def test_other_format_versions_are_refused_in_one_line(tmp_path: Path, version: object) -> None:
    folder = copy("flow_constant", tmp_path)
    edit_meta(folder, format_version=version)
    with pytest.raises(ModelFileError, match=r"incompatible model format version .*reads 1 to 2\)") as info:
        load_model(folder)
    assert "\n" not in str(info.value) and str(folder) in str(info.value)


def test_format_2_requires_every_field(tmp_path: Path) -> None:
    folder = copy("flow_constant", tmp_path)
    meta = json.loads((folder / META_FILE).read_text())
    for key in ("smoothing", "flow_only", "holdout", "notes", "created", "libraries", "data"):
        (folder / META_FILE).write_text(
            json.dumps({k: v for k, v in meta.items() if k != key} | {"format_version": 2})
        )
        with pytest.raises(ModelFileError, match=f"'{key}' must be"):
            load_model(folder)


def test_a_recommender_of_format_1_loads(tmp_path: Path) -> None:
    folder = copy("recs_popularity", tmp_path)
    assert is_recommender_folder(folder)
    model = load_recommender(folder)
    assert model.name == "popularity" and len(model.item_ids_) == 156 and model.n_users_ == 8
    assert model.trained_fingerprint == "2616:7836105e7fa02635"
    assert model.trained_on is not None and model.trained_on.items.n == 156
    assert read_recommender_meta(folder)["format_version"] == 1


def test_a_recommender_saved_without_its_data_loads(tmp_path: Path) -> None:
    folder = copy("recs_popularity", tmp_path)
    meta = json.loads((folder / META_FILE).read_text())
    del meta["data"], meta["files"][SKETCH_FILE]
    (folder / SKETCH_FILE).unlink()
    (folder / META_FILE).write_text(json.dumps(meta))
    assert load_recommender(folder).trained_on is None


def test_each_kind_refuses_the_other(tmp_path: Path) -> None:
    flow, recs = copy("flow_constant", tmp_path), copy("recs_popularity", tmp_path)
    with pytest.raises(RecommenderFileError, match="not a recommender folder"):
        read_recommender_meta(flow)
    with pytest.raises(ModelFileError, match="lacks a valid 'features'"):
        read_meta(recs)
    assert not is_recommender_folder(flow)
    assert isinstance(RecommenderFileError("x", "y"), ModelFolderError)
    assert not isinstance(RecommenderFileError("x", "y"), ModelFileError)


def test_a_recommender_folder_holds_only_its_own_files(tmp_path: Path) -> None:
    folder = copy("recs_popularity", tmp_path)
    (folder / "notes.txt").write_text("added by hand")
    with pytest.raises(RecommenderFileError, match=r"not listed in meta\.json"):
        load_recommender(folder)


def test_a_kind_steps_through_every_version() -> None:
    def step(meta: dict[str, object]) -> dict[str, object]:
        return meta

    assert FolderKind(ModelFolderError, "x", 3, "t", {1: step, 2: step}).readable == "1 to 3"
    assert FolderKind(ModelFolderError, "x", 1, "t").readable == "1"
    with pytest.raises(ValueError, match="from version 1 to 3"):
        FolderKind(ModelFolderError, "x", 3, "t", {1: step})

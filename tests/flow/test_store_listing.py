"""Listing a models folder: what `list_models` offers, in which order, and what it leaves out."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flowtui.core.flow.store import FORMAT_VERSION, META_FILE, SavedModel, list_models


def write_folder(root: Path, name: str, model: str, auc: object = None, **extra: object) -> Path:
    """A model folder by hand: one weights file and a meta.json that `read_meta` accepts."""
    folder = root / name
    folder.mkdir(parents=True)
    weights = folder / "weights.json"
    weights.write_text("[1, 2, 3]")
    meta: dict[str, object] = {
        "format_version": FORMAT_VERSION,
        "model": model,
        "features": ["f1"],
        "params": {},
        "files": {weights.name: hashlib.sha256(weights.read_bytes()).hexdigest()},
        **extra,
    }
    if auc is not None:
        meta["holdout"] = {"auc": auc, "n": 40}
    (folder / META_FILE).write_text(json.dumps(meta))
    return folder


def test_lists_readable_folders_by_name_with_their_model_and_family(tmp_path: Path) -> None:
    write_folder(tmp_path, "rbm", "rbm", auc=0.66)
    write_folder(tmp_path, "lightgbm", "lightgbm", auc=0.70)
    write_folder(tmp_path, "my_hybrid", "hybrid")  # a folder name other than the model's
    found = list_models(tmp_path)
    assert [m.name for m in found] == ["lightgbm", "my_hybrid", "rbm"]
    by_name = {m.name: m for m in found}
    hybrid = by_name["my_hybrid"]
    assert isinstance(hybrid, SavedModel)
    assert hybrid.folder == tmp_path / "my_hybrid"
    assert (hybrid.model, hybrid.family) == ("hybrid", "hybrid")
    assert hybrid.meta["features"] == ["f1"]
    assert (by_name["rbm"].model, by_name["rbm"].family) == ("rbm", "collaborative")
    assert (by_name["lightgbm"].model, by_name["lightgbm"].family) == ("lightgbm", "classifier")


def test_auc_and_can_recommend(tmp_path: Path) -> None:
    write_folder(tmp_path, "rbm", "rbm", auc=0.66)
    write_folder(tmp_path, "logreg", "logreg", auc=1)
    write_folder(tmp_path, "dbn", "dbn")
    write_folder(tmp_path, "hybrid", "hybrid", holdout="not a dict")
    write_folder(tmp_path, "knn", "knn", auc="0.9")  # not a number: unknown rather than a crash
    found = {m.name: m for m in list_models(tmp_path)}
    assert found["rbm"].auc == 0.66 and found["logreg"].auc == 1.0
    assert found["dbn"].auc is None and found["hybrid"].auc is None and found["knn"].auc is None
    assert {n for n, m in found.items() if m.can_recommend} == {"rbm", "dbn", "hybrid"}


def test_leaves_out_what_cannot_be_loaded(tmp_path: Path) -> None:
    write_folder(tmp_path, "good", "logreg", auc=0.6)
    write_folder(tmp_path, "unknown", "no_such_model")  # a model this flowtui does not know
    damaged = write_folder(tmp_path, "damaged", "logreg")
    (damaged / "weights.json").write_text("[9]")  # checksum differs from meta.json
    old = write_folder(tmp_path, "old", "logreg")
    meta = json.loads((old / META_FILE).read_text())
    (old / META_FILE).write_text(json.dumps({**meta, "format_version": FORMAT_VERSION + 1}))
    (tmp_path / "empty").mkdir()  # no meta.json
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / META_FILE).write_text("{not json")
    write_folder(tmp_path, ".good.old-123", "logreg")  # save_model's folder while it swaps
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    assert [m.name for m in list_models(tmp_path)] == ["good"]


def test_missing_or_empty_folder_lists_nothing(tmp_path: Path) -> None:
    assert list_models(tmp_path / "absent") == []
    assert list_models(str(tmp_path)) == []
    (tmp_path / "file").write_text("")
    assert list_models(tmp_path / "file") == []

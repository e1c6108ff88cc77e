"""Model folders: round trip, atomic overwrite, and clear errors on damaged or foreign folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowtui.core.errors import DataError
from flowtui.core.flow.features import target_matrix
from flowtui.core.flow.store import (
    FORMAT_VERSION,
    META_FILE,
    ModelFileError,
    TrainedModel,
    load_model,
    save_model,
)
from flowtui.core.run import run
from flowtui.core.run_config import RunConfig
from tests.flow.test_classifiers import make_frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(n_users=30, rows_per_user=20, effect=0.4)


@pytest.fixture(scope="module")
def trained(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, TrainedModel]:
    config = RunConfig(
        models=("constant", "logreg", "lightgbm"),
        preset="quick",
        models_dir=tmp_path_factory.mktemp("models"),
    )
    return run(frame, config).trained


def _proba(t: TrainedModel, frame: pd.DataFrame) -> np.ndarray:
    X, rows = target_matrix(frame, frame.groupby("user_id").tail(1))
    return t.model.predict_proba(X[t.features], rows)


@pytest.mark.parametrize("name", ["constant", "logreg", "lightgbm"])
def test_round_trip(name: str, trained, frame: pd.DataFrame, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    t = trained[name]
    folder = save_model(t, tmp_path / name)
    meta = json.loads((folder / META_FILE).read_text())
    for key in ("format_version", "model", "features", "params", "libraries", "data_fingerprint", "holdout"):
        assert key in meta
    assert meta["model"] == name and meta["format_version"] == FORMAT_VERSION
    back = load_model(folder)
    assert back.name == name and back.features == t.features and back.holdout == t.holdout
    np.testing.assert_allclose(_proba(back, frame), _proba(t, frame), atol=1e-9)


@pytest.mark.parametrize("name", ["constant", "logreg", "lightgbm"])
def test_truncated_model_file(name: str, trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = save_model(trained[name], tmp_path / name)
    victim = max((p for p in folder.iterdir() if p.name != META_FILE), key=lambda p: p.stat().st_size)
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="damaged"):
        load_model(folder)


def _saved(trained, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    return save_model(trained["logreg"], tmp_path / "logreg")


def test_bad_meta_json(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _saved(trained, tmp_path)
    (folder / META_FILE).write_text("{not json")
    with pytest.raises(ModelFileError, match=r"unreadable meta\.json"):
        load_model(folder)


def test_wrong_format_version(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _saved(trained, tmp_path)
    meta = json.loads((folder / META_FILE).read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (folder / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="incompatible model format version"):
        load_model(folder)


def test_unknown_model_name(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _saved(trained, tmp_path)
    meta = json.loads((folder / META_FILE).read_text())
    meta["model"] = "no_such_model"
    (folder / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="unknown model"):
        load_model(folder)


def test_missing_folder_and_files(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "nothing")
    folder = _saved(trained, tmp_path)
    (folder / "model.skops").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        load_model(folder)
    (folder / META_FILE).unlink()
    with pytest.raises(ModelFileError, match=r"missing meta\.json"):
        load_model(folder)
    assert issubclass(ModelFileError, DataError)


def test_interrupted_save_keeps_the_old_model(
    trained, frame: pd.DataFrame, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    folder = save_model(trained["constant"], tmp_path / "m")
    before = _proba(load_model(folder), frame)
    victim = trained["lightgbm"]

    def crash(target: Path) -> None:
        (Path(target) / "model.txt").write_text("half a model")
        raise KeyboardInterrupt  # a Ctrl-C in the middle of writing

    monkeypatch.setattr(victim.model, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_model(victim, folder)
    back = load_model(folder)
    assert back.name == "constant"
    np.testing.assert_allclose(_proba(back, frame), before)
    # no temporary folder left behind; the (empty) lock file stays, as deleting it would race
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.lock", "m"]


def test_overwrite_replaces_the_model(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = save_model(trained["constant"], tmp_path / "m")
    save_model(trained["lightgbm"], folder)
    assert load_model(folder).name == "lightgbm"
    assert not (folder / "model.json").read_text().count('"constant"')
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.lock", "m"]

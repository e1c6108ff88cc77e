"""`train --out`, `predict --out`, `score`: outputs never destroy what is not theirs, clean exits 2 otherwise."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flowtui.cli import app
from flowtui.core import safe_files
from tests.core.test_run import make_test
from tests.flow.test_classifiers import make_frame

runner = CliRunner()


def invoke(*args: object):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    """The exit-2 error: exactly one line, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("outputs")
    frame = make_frame(n_users=30, rows_per_user=20, effect=0.4)
    out = {"root": root, "train": root / "train.csv", "test": root / "test.csv", "models": root / "models"}
    frame.to_csv(out["train"], index=False)
    make_test(frame).to_csv(out["test"], index=False)
    r = invoke(
        "train", "--data", out["train"], "-m", "lightgbm", "-m", "constant", "--preset", "quick",
        "--out", out["models"], "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    json.loads(r.stdout)  # nothing but JSON on stdout (no LightGBM log lines)
    later = make_frame(n_users=40, rows_per_user=20, seed=5, effect=0.4)  # shares users and media
    out["later"], out["later_test"] = root / "later.csv", root / "later_test.csv"
    later.to_csv(out["later"], index=False)
    make_test(later).to_csv(out["later_test"], index=False)
    other = later.assign(user_id=later["user_id"] + 10**6, media_id=later["media_id"] + 10**6)
    out["other"], out["other_test"] = root / "other.csv", root / "other_test.csv"
    other.to_csv(out["other"], index=False)
    make_test(other).to_csv(out["other_test"], index=False)
    return out


def model_copy(files: dict[str, Path], tmp_path: Path, name: str = "lightgbm") -> Path:
    dest = tmp_path / "models" / name
    shutil.copytree(files["models"] / name, dest)
    return dest


def predict(files: dict[str, Path], model: Path, out: Path, *extra: object, data: str = "train"):  # type: ignore[no-untyped-def]
    test = {"train": "test", "later": "later_test", "other": "other_test"}[data]
    return invoke("predict", "-m", model, "--data", files[data], "--test", files[test], "--out", out, *extra)


# ---------------------------------------------------------------------------------------------------------
# train --out


def test_train_refuses_foreign_targets_before_training(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "models"
    (out / "lightgbm").mkdir(parents=True)
    (out / "lightgbm" / "important.txt").write_text("precious\n")
    (out / "constant").write_text("my notes\n")
    for model, word in (("lightgbm", "without meta.json"), ("constant", "is a file")):
        r = invoke("train", "--data", files["root"] / "absent.csv", "-m", model, "--out", out)
        line = one_error_line(r)  # refused before the (missing) data is even read
        assert word in line and f"{out / model}" in line
    assert (out / "lightgbm" / "important.txt").read_text() == "precious\n"
    assert (out / "constant").read_text() == "my notes\n"
    assert sorted(os.listdir(out)) == ["constant", "lightgbm"]  # no .NAME.old-PID, no lock files


def test_train_refuses_links_pipes_and_files_as_folders(files: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "constant").symlink_to(files["models"] / "constant")
    os.mkfifo(tmp_path / "pipe")
    cases = [
        (tmp_path / "file", "is a file, not a folder"),
        (tmp_path / "dir", "symbolic link"),
        (tmp_path / "pipe", "named pipe"),
        (Path("/dev/null"), "character device"),
    ]
    for out, word in cases:
        line = one_error_line(invoke("train", "--data", files["train"], "-m", "constant", "--out", out))
        assert word in line, line
    assert (tmp_path / "dir" / "constant").is_symlink()


def test_train_replaces_its_own_model_and_refuses_a_busy_one(files: dict[str, Path], tmp_path: Path) -> None:
    import fcntl

    folder = model_copy(files, tmp_path, "constant")
    r = invoke("train", "--data", files["train"], "-m", "constant", "--out", folder.parent, "--json")
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(folder.parent)) == [".constant.lock", "constant"]
    fd = os.open(safe_files.lock_file(folder), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another train writing it
        line = one_error_line(
            invoke("train", "--data", files["train"], "-m", "constant", "--out", folder.parent)
        )
        assert "being written by another flowtui process" in line
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------------------
# predict --out


def test_predict_refuses_special_outputs_at_once(files: dict[str, Path], tmp_path: Path) -> None:
    real = tmp_path / "real.csv"
    real.write_text("keep\n")
    (tmp_path / "link.csv").symlink_to(real)
    (tmp_path / "loop.csv").symlink_to(tmp_path / "loop.csv")
    os.mkfifo(tmp_path / "fifo.csv")
    (tmp_path / "dir.csv").mkdir()
    model = files["models"] / "lightgbm"
    cases = [
        (tmp_path / "link.csv", "symbolic link"),
        (tmp_path / "loop.csv", "symbolic link loop"),
        (tmp_path / "fifo.csv", "named pipe"),  # and no hang waiting for a reader
        (tmp_path / "dir.csv", "is a folder"),
        (tmp_path / "absent" / "sub.csv", "does not exist"),
        (Path("/dev/full"), "character device"),
    ]
    for out, word in cases:
        if str(out).startswith("/dev") and not out.exists():
            continue
        line = one_error_line(predict(files, model, out))
        assert word in line and str(out) in line, line
        assert "not found" not in line or word == "does not exist"
    assert real.read_text() == "keep\n" and (tmp_path / "link.csv").is_symlink()
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo.csv").st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_predict_replaces_a_file_keeping_its_mode(files: dict[str, Path], tmp_path: Path) -> None:
    sub = tmp_path / "sub.csv"
    sub.write_text("old\n")
    os.chmod(sub, 0o640)
    r = predict(files, files["models"] / "lightgbm", sub, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rows"] == 30 and "data_warning" not in json.loads(r.stdout)
    assert stat.S_IMODE(sub.stat().st_mode) == 0o640 and len(pd.read_csv(sub)) == 30


# ---------------------------------------------------------------------------------------------------------
# predict: the model meets its data


def test_predict_on_compatible_data_warns_with_the_shares(files: dict[str, Path], tmp_path: Path) -> None:
    r = predict(files, files["models"] / "lightgbm", tmp_path / "s.csv", "--json", data="later")
    assert r.exit_code == 0, r.output
    warning = json.loads(r.stdout)["data_warning"]
    assert "later.csv" in warning and "train.csv" in warning and "75% of its users" in warning
    r = predict(files, files["models"] / "lightgbm", tmp_path / "s.csv", data="later")
    assert r.exit_code == 0 and "warning:" in r.output and "known to the model" in r.output


def test_predict_refuses_other_data_unless_allowed(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    line = one_error_line(predict(files, files["models"] / "lightgbm", out, data="other"))
    assert "other.csv" in line and "train.csv" in line and "fingerprint" in line
    assert "--allow-other-data" in line and not out.exists()
    r = predict(files, files["models"] / "lightgbm", out, "--json", data="other")
    assert r.exit_code == 2 and "allow-other-data" in json.loads(r.stdout)["error"]["message"]
    r = predict(files, files["models"] / "lightgbm", out, "--allow-other-data", "--json", data="other")
    assert r.exit_code == 0, r.output
    assert "0% of its users" in json.loads(r.stdout)["data_warning"] and out.is_file()


# ---------------------------------------------------------------------------------------------------------
# predict: damaged or edited models are one line, exit 2


@pytest.mark.parametrize(
    ("field", "value", "word"),
    [
        ("smoothing", "abc", "smoothing"),
        ("features", ["no_such_feature"], "unknown feature"),
        ("params", {"learning_rate": "fast"}, "learning_rate"),
        ("files", {"../../etc/passwd": "0" * 64}, "plain name"),
    ],
)
def test_predict_with_an_edited_meta_is_one_line(  # type: ignore[no-untyped-def]
    files: dict[str, Path], tmp_path: Path, field: str, value, word: str
) -> None:
    folder = model_copy(files, tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    if field == "files":
        meta["files"].update(value)
    else:
        meta[field] = value
    (folder / "meta.json").write_text(json.dumps(meta))
    line = one_error_line(predict(files, folder, tmp_path / "s.csv"))
    assert word in line and str(folder) in line, line
    r = predict(files, folder, tmp_path / "s.csv", "--json")
    assert r.exit_code == 2 and word in json.loads(r.stdout)["error"]["message"]  # stdout: JSON only


def test_predict_with_a_damaged_lightgbm_file_is_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    import hashlib

    folder = model_copy(files, tmp_path)
    text = (folder / "model.txt").read_text()
    (folder / "model.txt").write_text(text.replace("num_leaves=", "num_leaves=9", 1))  # LightGBM would abort
    meta = json.loads((folder / "meta.json").read_text())
    meta["files"]["model.txt"] = hashlib.sha256((folder / "model.txt").read_bytes()).hexdigest()
    (folder / "meta.json").write_text(json.dumps(meta))
    r = predict(files, folder, tmp_path / "s.csv", "--json")
    assert r.exit_code == 2 and "[LightGBM]" not in r.stdout
    assert "damaged LightGBM model" in json.loads(r.stdout)["error"]["message"]


# ---------------------------------------------------------------------------------------------------------
# score: inputs are named for what they are


def test_score_names_special_inputs(files: dict[str, Path], tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.csv")
    (tmp_path / "loop.csv").symlink_to(tmp_path / "loop.csv")
    good = tmp_path / "sub.csv"
    good.write_text("sample_id,is_listened\n0,0.5\n")
    for path, word in (
        (tmp_path / "fifo.csv", "named pipe"),
        (tmp_path / "loop.csv", "loop"),
        (tmp_path, "folder"),
    ):
        line = one_error_line(invoke("score", path, "--answers", good))
        assert word in line and "not found" not in line, line
        line = one_error_line(invoke("score", good, "--answers", path))
        assert word in line, line
    line = one_error_line(invoke("score", tmp_path / "absent.csv", "--answers", good))
    assert "not found" in line


def test_predict_names_a_model_path_that_is_no_folder(files: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    os.mkfifo(tmp_path / "fifo")
    cases = [
        (tmp_path / "loop", "symbolic link loop"),
        (tmp_path / "fifo", "named pipe"),
        (tmp_path / "no", "not found"),
    ]
    for model, word in cases:
        line = one_error_line(predict(files, model, tmp_path / "s.csv"))
        assert word in line and str(model) in line, line

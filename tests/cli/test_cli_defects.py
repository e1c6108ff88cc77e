"""Issue 20's CLI defects: odd data warned about by every command that reads it (item 6), `--out`
through a symbolic link refused (item 5), a second training into one folder refused at once (item 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowtui.cli import app
from tests.flow.test_classifiers import make_frame

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def invoke(*args: object):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("defects")
    frame = make_frame(n_users=30, rows_per_user=20, effect=0.4)
    odd = frame.copy()
    odd.loc[odd.index[:3], "ts_listen"] = 4_200_000_000  # the year 2103
    odd.loc[odd.index[5:9], "media_duration"] = 0
    odd["mood"] = "calm"
    out = {"root": root, "train": root / "train.csv", "odd": root / "odd.csv"}
    frame.to_csv(out["train"], index=False)
    odd.to_csv(out["odd"], index=False)
    return out


def warning_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("warning:")]


# -- item 6: odd data is warned about as `data validate` does -------------------------------------------


def test_data_validate_names_the_odd_rows(files: dict[str, Path]) -> None:
    r = invoke("data", "validate", files["odd"], "--no-cache")
    assert r.exit_code == 0, r.output
    text = " ".join(warning_lines(r.stdout))
    assert "mood" in text and "media_duration" in text and "ts_listen" in text


@pytest.mark.parametrize("command", ["evaluate", "train"])
@pytest.mark.parametrize("as_json", [False, True])
def test_evaluate_and_train_print_the_same_warnings(
    files: dict[str, Path], tmp_path: Path, command: str, as_json: bool
) -> None:
    expected = warning_lines(invoke("data", "validate", files["odd"], "--no-cache").stdout)
    args: list[object] = [command, "--data", files["odd"], "-m", "constant", "--preset", "quick"]
    args += ["--out", tmp_path / "models"] if command == "train" else []
    r = invoke(*args, *(["--json"] if as_json else []))
    assert r.exit_code == 0, r.output
    assert warning_lines(r.stderr) == expected and expected
    if as_json:
        json.loads(r.stdout)  # stdout stays one JSON document
    assert not warning_lines(r.stdout)


def test_a_clean_file_gives_no_warning(files: dict[str, Path]) -> None:
    r = invoke("evaluate", "--data", files["train"], "-m", "constant", "--preset", "quick", "--json")
    assert r.exit_code == 0, r.output
    assert not warning_lines(r.stderr)


# -- item 5: --out through a symbolic link ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["train", "-m", "constant", "--preset", "quick"],
        ["train-recs", "-m", "popularity"],
    ],
    ids=["train", "train-recs"],
)
def test_out_as_a_symbolic_link_is_refused(files: dict[str, Path], tmp_path: Path, args: list[str]) -> None:
    real = tmp_path / "real"
    first = invoke(*args, "--data", files["train"], "--out", real)
    assert first.exit_code == 0, first.output
    before = {p.relative_to(real): p.read_bytes() for p in real.rglob("*") if p.is_file()}
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    r = invoke(*args, "--data", files["train"], "--out", link)
    assert r.exit_code == 2, r.output
    assert "symbolic link" in r.stderr and str(real) in r.stderr and "Traceback" not in r.output
    assert {p.relative_to(real): p.read_bytes() for p in real.rglob("*") if p.is_file()} == before
    r = invoke(*args, "--data", files["train"], "--out", link, "--json")
    assert r.exit_code == 2 and "symbolic link" in json.loads(r.stdout)["error"]["message"]


# -- item 8: a second training into one folder is refused at once ----------------------------------------

_HOLD = """
import sys, time
from pathlib import Path
from flowtui.core import safe_files
with safe_files.folder_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Path]:
    """OUT, whose OUT/popularity and OUT/constant another process is writing (it holds their locks)."""
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _HOLD, str(out / name)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for name in ("popularity", "constant")
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "held"
        yield out
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_train_into_a_folder_being_written_is_refused_at_once(
    files: dict[str, Path], held: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flowtui.cli.models as models

    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained although the folder is being written")

    monkeypatch.setattr(models, "run", no_run)
    r = invoke("train", "--data", files["train"], "-m", "constant", "--preset", "quick", "--out", held)
    assert r.exit_code == 2, r.output
    assert "being written by another flowtui process" in r.stderr


def test_train_recs_into_a_folder_being_written_is_refused_at_once(
    files: dict[str, Path], held: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flowtui.core.recs.store as store

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained although the folder is being written")

    monkeypatch.setattr(store, "train_recommender", no_training)
    r = invoke("train-recs", "--data", files["train"], "-m", "popularity", "--out", held)
    assert r.exit_code == 2, r.output
    assert "being written by another flowtui process" in r.stderr

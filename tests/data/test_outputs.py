"""Writers of data files replace only what flowtui wrote: never the input, never a user's own file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowtui.cli import app

runner = CliRunner()
LOG = "user\tartist\tplays\nu1\ta\t5\nu2\tb\t1\nu1\tb\t9\n"


def _import(log: Path, out: Path, *extra: str) -> object:
    return runner.invoke(
        app,
        [
            *("data", "import", str(log), "--user", "user", "--item", "artist", "--weight", "plays"),
            *("--threshold", "3", "--sep", "\\t", "--out", str(out), *extra),
        ],
    )


def _one_line_exit_2(r: object) -> str:
    assert r.exit_code == 2, r.output  # type: ignore[attr-defined]
    text = r.output.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in text
    return text


def test_import_refuses_its_own_log_as_output(tmp_path: Path) -> None:
    log = tmp_path / "plays.tsv"
    log.write_text(LOG)
    text = _one_line_exit_2(_import(log, log))
    assert "is the log being imported" in text
    assert log.read_text() == LOG and sorted(p.name for p in tmp_path.iterdir()) == ["plays.tsv"]


def test_import_refuses_its_log_through_another_path(tmp_path: Path) -> None:
    log = tmp_path / "plays.tsv"
    log.write_text(LOG)
    (tmp_path / "sub").mkdir()
    text = _one_line_exit_2(_import(log, tmp_path / "sub" / ".." / "plays.tsv"))
    assert "is the log being imported" in text and log.read_text() == LOG


def test_import_refuses_a_users_other_file(tmp_path: Path) -> None:
    log = tmp_path / "plays.tsv"
    log.write_text(LOG)
    mine = tmp_path / "notes.csv"
    mine.write_text("my own notes\n")
    text = _one_line_exit_2(_import(log, mine, "--json"))
    assert "exists and was not written by `flowtui data import`" in json.loads(text)["error"]["message"]
    assert mine.read_text() == "my own notes\n" and not (tmp_path / "notes.csv.ids.json").exists()


def test_import_replaces_its_own_earlier_output_but_not_once_edited(tmp_path: Path) -> None:
    log = tmp_path / "plays.tsv"
    log.write_text(LOG)
    out = tmp_path / "train.csv"
    assert _import(log, out).exit_code == 0  # type: ignore[attr-defined]
    assert _import(log, out).exit_code == 0  # type: ignore[attr-defined]  # its own output: replaced
    out.write_text(out.read_text() + "\n")  # the user edits it: no longer what flowtui wrote
    text = _one_line_exit_2(_import(log, out))
    assert "or changed since" in text


def test_synth_refuses_a_users_train_file(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "train.csv").write_text("the user's own real log\n")
    text = _one_line_exit_2(runner.invoke(app, ["data", "synth", "--users", "2", "--out", str(out)]))
    assert "was not written by `flowtui data synth`" in text and "train.csv" in text
    assert (out / "train.csv").read_text() == "the user's own real log\n"
    assert sorted(p.name for p in out.iterdir()) == ["train.csv"]


def test_synth_replaces_its_own_files_and_records_them(tmp_path: Path) -> None:
    out = tmp_path / "data"
    args = ["data", "synth", "--users", "3", "--out", str(out)]
    assert runner.invoke(app, [*args, "--seed", "1"]).exit_code == 0
    doc = json.loads((out / "synth.json").read_text())
    assert doc["seed"] == 1 and sorted(doc["files"]) == ["test.csv", "test_answers.csv", "train.csv"]
    first = (out / "train.csv").read_bytes()
    assert runner.invoke(app, [*args, "--seed", "2"]).exit_code == 0
    assert (out / "train.csv").read_bytes() != first and json.loads((out / "synth.json").read_text())[
        "seed"
    ] == 2


@pytest.mark.parametrize("name", ["test.csv", "test_answers.csv"])
def test_synth_refuses_once_a_file_it_wrote_was_edited(tmp_path: Path, name: str) -> None:
    out = tmp_path / "data"
    assert runner.invoke(app, ["data", "synth", "--users", "3", "--out", str(out)]).exit_code == 0
    (out / name).write_text((out / name).read_text() + "0,0\n")
    text = _one_line_exit_2(runner.invoke(app, ["data", "synth", "--users", "3", "--out", str(out)]))
    assert name in text and "changed since" in text


def test_synth_refuses_a_model_folder(tmp_path: Path) -> None:
    out = tmp_path / "models" / "lightgbm"
    out.mkdir(parents=True)
    (out / "meta.json").write_text("{}")
    text = _one_line_exit_2(runner.invoke(app, ["data", "synth", "--users", "2", "--out", str(out)]))
    assert "saved model's folder" in text and sorted(p.name for p in out.iterdir()) == ["meta.json"]


def test_the_bundled_sample_is_what_synth_recorded() -> None:
    """`make sample` can regenerate data/sample: its files are listed in its synth.json as they are."""
    from flowtui.core.data.outputs import check_synth_target

    sample = Path(__file__).resolve().parents[2] / "data" / "sample"
    check_synth_target(sample, ("train.csv", "test.csv", "test_answers.csv"))


@pytest.mark.parametrize("out", [".", "", "sub/..", "sub/."])
def test_import_out_that_names_no_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    log = tmp_path / "plays.tsv"
    log.write_text(LOG)
    text = _one_line_exit_2(_import(log, Path(out) if out else Path("")))
    assert "names no file" in text or "is a folder" in text


@pytest.mark.parametrize("users", ["1000001", "100000000000"])
def test_synth_with_a_huge_user_count_is_refused_before_any_work(tmp_path: Path, users: str) -> None:
    r = runner.invoke(app, ["data", "synth", "--users", users, "--out", str(tmp_path / "d")])
    text = _one_line_exit_2(r)
    assert "users must be from 1 to 1,000,000" in text and not (tmp_path / "d").exists()

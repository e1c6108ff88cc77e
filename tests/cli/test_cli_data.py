"""`flowtui data validate | info | import` through typer's CliRunner: exit codes, messages, --json keys."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flowtui.cli import app
from flowtui.core.data.summary import SUMMARY_KEYS
from tests.data.test_validation import make_test_frame, train_frame, write

runner = CliRunner()


def test_validate_valid_file_with_warnings(tmp_path: Path) -> None:
    df = train_frame()
    df.loc[2, "media_duration"] = 0
    r = runner.invoke(app, ["data", "validate", str(write(tmp_path, df))])
    assert r.exit_code == 0, r.output
    assert (
        "media_duration of 0 [media_duration]: 1 row" in r.output and "a valid train file, 6 rows" in r.output
    )


def test_validate_invalid_file_exits_2_with_one_line_and_examples(tmp_path: Path) -> None:
    df = train_frame().astype(object)
    df.loc[3, "user_id"] = "bob"
    p = write(tmp_path, df)
    r = runner.invoke(app, ["data", "validate", str(p)])
    assert r.exit_code == 2
    assert f"{p}:5: value is not an integer" in r.output and "e.g. line 5: 'bob'" in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00garbage", b"a,b\n1,2\n"])
def test_validate_garbage_never_tracebacks(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    r = runner.invoke(app, ["data", "validate", str(p)])
    assert r.exit_code == 2 and "bad.csv" in r.output and "Traceback" not in r.output
    assert isinstance(r.exception, SystemExit)


def test_validate_missing_file(tmp_path: Path) -> None:
    r = runner.invoke(app, ["data", "validate", str(tmp_path / "none.csv")])
    assert r.exit_code == 2 and "file not found" in r.output


def test_info_json_has_exactly_the_keys(tmp_path: Path) -> None:
    r = runner.invoke(app, ["data", "info", str(write(tmp_path, train_frame())), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert tuple(out) == SUMMARY_KEYS and out["rows"] == 6 and out["users"] == 2 and out["warnings"] == {}
    assert out["listen_rate"] == pytest.approx(0.5)


def test_info_test_file_text(tmp_path: Path) -> None:
    r = runner.invoke(app, ["data", "info", str(write(tmp_path, make_test_frame(), "test.csv"))])
    assert r.exit_code == 0, r.output
    assert "(test file)" in r.output and "no labels" in r.output and "2016-11-01" in r.output


def test_info_defaults_to_the_bundled_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, train_frame(4), "train.csv")
    monkeypatch.setenv("FLOWTUI_SAMPLE_DIR", str(tmp_path))
    r = runner.invoke(app, ["data", "info", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rows"] == 4


def test_info_invalid_exits_2(tmp_path: Path) -> None:
    r = runner.invoke(app, ["data", "info", "--json", str(tmp_path / "x.csv")])
    assert r.exit_code == 2 and "file not found" in r.output


def test_import_writes_a_loadable_train_file(tmp_path: Path) -> None:
    log = tmp_path / "plays.tsv"
    log.write_text("user\tartist\tplays\nu1\ta\t5\nu2\tb\t1\nu1\tb\t9\n")
    out = tmp_path / "out" / "train.csv"
    r = runner.invoke(
        app,
        [
            *("data", "import", str(log), "--user", "user", "--item", "artist", "--weight", "plays"),
            *("--threshold", "3", "--sep", "\\t", "--out", str(out)),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "wrote 3 rows" in r.output
    assert pd.read_csv(out)["is_listened"].tolist() == [1, 0, 1]
    r2 = runner.invoke(app, ["data", "validate", str(out)])
    assert r2.exit_code == 0 and "0 warnings" in r2.output


def test_import_bad_column_exits_2(tmp_path: Path) -> None:
    log = tmp_path / "plays.csv"
    log.write_text("user,artist,plays\nu1,a,5\n")
    out = tmp_path / "train.csv"
    r = runner.invoke(
        app,
        [
            "data",
            "import",
            str(log),
            "--user",
            "who",
            "--item",
            "artist",
            "--label",
            "plays",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 2 and "missing columns" in r.output and "who" in r.output
    assert not out.exists()


def test_validate_test_file_against_train(tmp_path: Path) -> None:
    train = write(tmp_path, train_frame(), "train.csv")
    test = make_test_frame(3)
    test.loc[2, "user_id"] = 42
    r = runner.invoke(
        app, ["data", "validate", str(write(tmp_path, test, "test.csv")), "--train", str(train)]
    )
    assert r.exit_code == 0, r.output
    assert "test rows whose user has no train history [user_id]: 1 row" in r.output and "e.g. 42" in r.output
    r2 = runner.invoke(app, ["data", "validate", str(train), "--train", str(train)])
    assert r2.exit_code == 2 and "applies to a test file" in r2.output


@pytest.mark.parametrize("what", ["file", "symlink loop", "device"])
def test_synth_out_that_is_not_a_folder_is_named(tmp_path: Path, what: str) -> None:
    if what == "file":
        out = write(tmp_path, train_frame(), "x.csv")
    elif what == "symlink loop":
        out = tmp_path / "a"
        out.symlink_to(tmp_path / "b")
        (tmp_path / "b").symlink_to(out)
    else:
        out = Path("/dev/null")
    r = runner.invoke(app, ["data", "synth", "--users", "2", "--out", str(out)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert f"--out {out}: is a" in r.output and "not a folder" in r.output


def test_synth_refuses_a_symlinked_output_file_and_keeps_its_target(tmp_path: Path) -> None:
    target = tmp_path / "precious.csv"
    target.write_text("keep me\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.csv").symlink_to(target)
    r = runner.invoke(app, ["data", "synth", "--users", "2", "--out", str(out)])
    assert r.exit_code == 2 and "symbolic link" in r.output and ".tmp" not in r.output
    assert target.read_text() == "keep me\n" and sorted(p.name for p in out.iterdir()) == ["train.csv"]


def test_import_prints_warnings_and_names_the_id_map(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("u,i,y,t\na,x,1,5\nb,x,0,1478000000\n")
    out = tmp_path / "train.csv"
    r = runner.invoke(
        app,
        [
            "data",
            "import",
            str(log),
            "--user",
            "u",
            "--item",
            "i",
            "--label",
            "y",
            "--time",
            "t",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "ts_listen before 2009" in r.output and f"{out}.ids.json" in r.output

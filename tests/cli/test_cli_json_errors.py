"""Every command given --json reports a failure as one JSON object on stdout and exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowtui.cli import app

runner = CliRunner()
ERROR_KEYS = {"message", "file", "line", "column", "expected", "found", "count", "details"}


def _bad_cases(tmp: Path) -> list[list[str]]:
    missing = str(tmp / "missing.csv")
    return [
        ["data", "validate", missing],
        ["data", "info", missing],
        ["data", "import", missing, "--user", "u", "--item", "i", "--out", str(tmp / "o.csv")],
        ["data", "synth", "--users", "0", "--out", str(tmp / "s")],
        ["evaluate", "--rounds", "x"],
        ["evaluate", "--set", "rbm.n_iter=-1", "-m", "rbm"],
        ["evaluate", "--set", "lightgbm.num_leaves=0", "-m", "lightgbm"],
        ["evaluate", "--model", "no_such_model"],
        ["evaluate", "--no-such-option"],
        ["train", "--out", str(tmp / "m")],
        ["predict", "--model", str(tmp / "nothing"), "--out", str(tmp / "sub.csv")],
        ["score", missing, "--answers", missing],
        ["recommend", "--model", str(tmp / "nothing"), "--user", "1"],
        ["evaluate-recs", "--k", "0"],
        ["evaluate-recs", "-m", "rbm", "--set", "rbm.catalogue_context=maybe"],
        ["params", "no_such_model"],
    ]


@pytest.mark.parametrize("case", range(16))
def test_json_errors_are_one_object_on_stdout(case: int, tmp_path: Path) -> None:
    args = [*_bad_cases(tmp_path)[case], "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (args, result.output)
    doc = json.loads(result.stdout)
    assert set(doc) == {"error"} and set(doc["error"]) == ERROR_KEYS
    assert doc["error"]["message"]


def test_a_refused_file_fills_the_json_fields(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,media_id\n1,2\n")
    doc = json.loads(runner.invoke(app, ["data", "validate", str(bad), "--json"]).stdout)
    assert doc["error"]["file"] == str(bad) and doc["error"]["expected"]


def test_without_json_errors_stay_one_line_on_stderr(tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--set", "rbm.n_iter=-1", "-m", "rbm"])
    assert result.exit_code == 2 and result.stdout == ""
    assert "rbm.n_iter must be an integer from 1 to 100000, got '-1'" in result.stderr


def test_a_bad_catalogue_switch_is_one_line() -> None:
    result = runner.invoke(app, ["evaluate-recs", "-m", "rbm", "--set", "rbm.catalogue_context=maybe"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().count("\n") == 0
    assert "rbm.catalogue_context must be true or false, got 'maybe'" in result.stderr

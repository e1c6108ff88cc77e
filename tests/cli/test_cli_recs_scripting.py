"""The recommender commands as a scripter meets them (issue 20 items 18-19): a sample of users, the app's
default preset said aloud, a line per finished model when piped, and the data a model was trained on named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowtui.cli import app
from flowtui.core.recs.evaluation import planted_frame

runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scripting") / "train.csv"
    planted_frame(n_users=120, seed=2).to_csv(path, index=False)
    return path


def test_evaluate_recs_on_a_sample_of_users(data: Path) -> None:
    r = runner.invoke(
        app,
        ["evaluate-recs", "--data", str(data), "-m", "popularity", "--seeds", "1", "--users", "40", "--json"],
    )
    assert r.exit_code == 0, r.output
    setup = json.loads(r.stdout)["setup"]
    assert (
        setup["sample"]["users"] == 40
        and setup["n_users"] <= 40
        and setup["data"]["rows"] > setup["sample"]["rows"]
    )
    again = runner.invoke(
        app,
        ["evaluate-recs", "--data", str(data), "-m", "popularity", "--seeds", "1", "--users", "40", "--json"],
    )
    assert (
        json.loads(again.stdout)["setup"]["sample"] == setup["sample"]
    )  # the same seed draws the same users


@pytest.mark.parametrize("users", ["0", "-3"])
def test_a_bad_sample_size_is_one_line(data: Path, users: str) -> None:
    r = runner.invoke(app, ["evaluate-recs", "--data", str(data), "-m", "popularity", "--users", users])
    assert r.exit_code == 2 and r.output.strip().splitlines() == [
        f"error: --users {users}: expected an integer >= 1"
    ]


def test_evaluate_recs_uses_the_apps_quick_preset_and_says_so(data: Path) -> None:
    r = runner.invoke(app, ["evaluate-recs", "--data", str(data), "-m", "ease", "--seeds", "1"])
    assert r.exit_code == 0, r.output
    assert "preset quick" in r.stderr
    js = runner.invoke(app, ["evaluate-recs", "--data", str(data), "-m", "ease", "--seeds", "1", "--json"])
    assert json.loads(js.stdout)["setup"]["preset"] == "quick" and js.stderr == ""


def test_piped_runs_print_a_line_per_finished_model(data: Path, tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        ["train-recs", "--data", str(data), "-m", "popularity", "-m", "ease", "--out", str(tmp_path / "m")],
    )
    assert r.exit_code == 0, r.output
    done = [line for line in r.stderr.splitlines() if ": done in " in line]
    assert [line.split(":")[0] for line in done] == ["popularity", "ease"]
    e = runner.invoke(app, ["evaluate-recs", "--data", str(data), "-m", "popularity", "--seeds", "2"])
    assert (
        sum(line.startswith("popularity: done in ") for line in e.stderr.splitlines()) == 2
    )  # one per split
    t = runner.invoke(app, ["train", "--data", str(data), "-m", "constant", "--out", str(tmp_path / "f")])
    assert t.exit_code == 0 and any(line.startswith("constant: done in ") for line in t.stderr.splitlines())


def test_recommend_without_data_names_the_data_the_model_was_trained_on(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    assert (
        runner.invoke(
            app, ["train-recs", "--data", str(data), "-m", "popularity", "--out", str(out)]
        ).exit_code
        == 0
    )
    r = runner.invoke(app, ["recommend", "--model", str(out / "popularity"), "--user", "3"])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    assert f"was trained on {data}" in r.output and f"pass --data {data}" in r.output
    ok = runner.invoke(
        app, ["recommend", "--model", str(out / "popularity"), "--user", "3", "--data", str(data)]
    )
    assert ok.exit_code == 0, ok.output

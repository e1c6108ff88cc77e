"""`flowtui recommend` and `flowtui evaluate-recs`: exit codes, JSON keys, the CSV of every user."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flowtui.cli import app
from flowtui.core.recs.evaluation import planted_frame

runner = CliRunner()
REC_KEYS = {"media_id", "score", "artist_id", "genre_id", "reason"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(train csv, saved rbm folder), trained through `flowtui train`."""
    root = tmp_path_factory.mktemp("recs")
    data = root / "train.csv"
    planted_frame(n_users=150, seed=1).to_csv(data, index=False)
    res = runner.invoke(
        app,
        ["train", "--model", "rbm", "--data", str(data), "--out", str(root / "models"), "--preset", "quick",
         "--set", "rbm.batch_size=16", "--set", "rbm.n_iter=10", "--set", "rbm.device=\"cpu\"", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return data, root / "models" / "rbm"


def test_recommend_user_json(trained: tuple[Path, Path]) -> None:
    data, model = trained
    res = runner.invoke(
        app, ["recommend", "--model", str(model), "--data", str(data), "--user", "3", "--n", "4", "--json"]
    )
    assert res.exit_code == 0, res.output
    recs = json.loads(res.stdout)
    assert len(recs) == 4 and all(set(r) == REC_KEYS for r in recs)
    heard = set(pd.read_csv(data).query("user_id == 3")["media_id"])
    assert not {r["media_id"] for r in recs} & heard
    res = runner.invoke(
        app,
        ["recommend", "--model", str(model), "--data", str(data), "--user", "3", "--genre", "2", "--json"],
    )
    assert res.exit_code == 0 and {r["genre_id"] for r in json.loads(res.stdout)} == {2}
    table = runner.invoke(app, ["recommend", "--model", str(model), "--data", str(data), "--user", "3"])
    assert table.exit_code == 0 and "reason" in table.stdout


def test_recommend_all_writes_csv(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, model = trained
    out = tmp_path / "recs.csv"
    res = runner.invoke(
        app, ["recommend", "--model", str(model), "--data", str(data), "--all", "--n", "3", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    recs = pd.read_csv(out)
    assert list(recs.columns) == ["user_id", "rank", "media_id", "score"]
    assert recs.groupby("user_id").size().max() == 3
    assert recs["user_id"].nunique() == 150


def test_recommend_new_user(trained: tuple[Path, Path]) -> None:
    data, model = trained
    res = runner.invoke(
        app,
        [
            "recommend",
            "--model",
            str(model),
            "--data",
            str(data),
            "--like-artist",
            "500",
            "--n",
            "5",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    recs = json.loads(res.stdout)
    assert len(recs) == 5 and all(set(r) == REC_KEYS for r in recs)
    res = runner.invoke(
        app,
        ["recommend", "--model", str(model), "--data", str(data), "--age", "20", "--gender", "1", "--json"],
    )
    assert res.exit_code == 0 and json.loads(res.stdout)[0]["reason"].startswith("popular with")


@pytest.mark.parametrize(
    "args",
    [
        [],  # no mode
        ["--user", "3", "--all"],  # two modes
        ["--user", "99999"],  # unknown user
        ["--like-artist", "424242"],  # unknown artist
        ["--user", "3", "--out", "x.csv"],  # --out without --all
    ],
)
def test_recommend_bad_input_exits_2(trained: tuple[Path, Path], args: list[str]) -> None:
    data, model = trained
    res = runner.invoke(app, ["recommend", "--model", str(model), "--data", str(data), *args])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output


def test_recommend_bad_model_folder_exits_2(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, model = trained
    res = runner.invoke(
        app, ["recommend", "--model", str(tmp_path / "nothing"), "--data", str(data), "--user", "3"]
    )
    assert res.exit_code == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in model.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "rbm.pt").write_bytes(b"not a torch file")
    res = runner.invoke(app, ["recommend", "--model", str(broken), "--data", str(data), "--user", "3"])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_evaluate_recs_json(trained: tuple[Path, Path]) -> None:
    data, _ = trained
    res = runner.invoke(
        app, ["evaluate-recs", "--data", str(data), "--model", "item_mean", "--k", "5", "--json"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert {"model", "mae", "auc", "precision_at_k", "recall_at_k", "ndcg_at_k", "k"} <= set(doc)
    assert doc["model"] == "item_mean" and doc["k"] == 5
    res = runner.invoke(
        app,
        ["evaluate-recs", "--data", str(data), "--model", "rbm", "--model", "popularity", "--preset", "quick",
         "--set", "batch_size=16", "--set", "device=cpu", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert [d["model"] for d in json.loads(res.stdout)] == ["rbm", "popularity"]


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "svd"],
        ["--holdout", "oldest"],
        ["--fraction", "2"],
        ["--set", "bogus=1"],
        ["--set", "novalue"],
    ],
)
def test_evaluate_recs_bad_input_exits_2(trained: tuple[Path, Path], args: list[str]) -> None:
    data, _ = trained
    res = runner.invoke(app, ["evaluate-recs", "--data", str(data), *args])
    assert res.exit_code == 2, res.output

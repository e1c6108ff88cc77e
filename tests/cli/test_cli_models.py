"""`flowtui evaluate | train | predict | score`: outputs and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flowtui.cli import app
from flowtui.core.flow.evaluate import RECORD_KEYS
from tests.core.test_run import make_test
from tests.flow.test_classifiers import make_frame

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    frame = make_frame(n_users=30, rows_per_user=20, effect=0.4)
    test = make_test(frame)
    rng = np.random.default_rng(3)
    p_true = rng.uniform(0.2, 0.9, len(test))
    answers = pd.DataFrame(
        {
            "sample_id": test["sample_id"],
            "is_listened": (rng.uniform(size=len(test)) < p_true).astype(int),
            "p_true": p_true,
        }
    )
    out = {
        "train": root / "train.csv",
        "test": root / "test.csv",
        "answers": root / "answers.csv",
        "root": root,
    }
    frame.to_csv(out["train"], index=False)
    test.to_csv(out["test"], index=False)
    answers.to_csv(out["answers"], index=False)
    return out


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])


def test_evaluate_json_records(files: dict[str, Path]) -> None:
    r = invoke("evaluate", "--data", files["train"], "--model", "logreg", "--preset", "quick", "--json")
    assert r.exit_code == 0, r.output
    records = json.loads(r.stdout)
    assert {rec["model"] for rec in records} == {"constant", "user_flow_rate", "logreg"}
    assert all(tuple(rec) == RECORD_KEYS for rec in records)


def test_evaluate_target_contexts_hold_out_fewer_rows(files: dict[str, Path]) -> None:
    from flowtui.core.run import run
    from flowtui.core.run_config import RunConfig

    frame = pd.read_csv(files["train"])
    context = int(frame.loc[frame["listen_type"] == 1, "context_type"].mode()[0])
    everything = run(frame, RunConfig(models=("constant",))).leaderboard
    one_context = run(frame, RunConfig(models=("constant",), target_contexts=(context,))).leaderboard
    assert everything is not None and one_context is not None
    assert 0 < one_context.n_targets < everything.n_targets
    r = invoke(
        "evaluate", "--data", files["train"], "-m", "logreg", "--preset", "quick", "--target-context", context
    )
    assert r.exit_code == 0, r.output


def test_evaluate_table_and_set(files: dict[str, Path]) -> None:
    r = invoke(
        "evaluate", "--data", files["train"], "-m", "decision_tree", "--set", "decision_tree.max_depth=2"
    )
    assert r.exit_code == 0, r.output
    assert "decision_tree" in r.stdout and "user_flow_rate" in r.stdout and "AUC" in r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "no_such_model"],
        ["--model", "logreg", "--set", "logreg.bogus=1"],
        ["--model", "logreg", "--set", "nonsense"],
        ["--preset", "medium"],
        ["--model", "logreg", "--target-context", "999"],
    ],
)
def test_evaluate_bad_options_exit_2(files: dict[str, Path], args: list[str]) -> None:
    r = invoke("evaluate", "--data", files["train"], *args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output


def test_missing_or_bad_data_exit_2(files: dict[str, Path]) -> None:
    r = invoke("evaluate", "--data", files["root"] / "absent.csv")
    assert r.exit_code == 2 and "not found" in r.output
    bad = files["root"] / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    r = invoke("evaluate", "--data", bad)
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_train_predict_score(files: dict[str, Path]) -> None:
    models = files["root"] / "models"
    r = invoke(
        "train", "--data", files["train"], "-m", "lightgbm", "-m", "user_flow_rate", "--preset", "quick",
        "--out", models, "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    trained = json.loads(r.stdout)
    assert [t["model"] for t in trained] == ["lightgbm", "user_flow_rate"]
    assert (models / "lightgbm" / "meta.json").is_file() and trained[0]["auc"] is not None

    sub = files["root"] / "sub.csv"
    r = invoke(
        "predict",
        "--model",
        models / "lightgbm",
        "--data",
        files["train"],
        "--test",
        files["test"],
        "--out",
        sub,
    )
    assert r.exit_code == 0, r.output
    written = pd.read_csv(sub)
    test = pd.read_csv(files["test"])
    assert list(written.columns) == ["sample_id", "is_listened"]
    np.testing.assert_array_equal(written["sample_id"], test["sample_id"])
    assert written["is_listened"].between(0, 1).all()

    r = invoke("score", sub, "--answers", files["answers"], "--json")
    assert r.exit_code == 0, r.output
    score = json.loads(r.stdout)
    assert set(score) == {"auc", "n", "oracle_auc"} and score["n"] == len(test)
    assert 0.0 <= score["auc"] <= 1.0

    # a damaged model folder is a clean exit 2
    (models / "lightgbm" / "model.txt").write_text("tree\n")
    r = invoke(
        "predict",
        "--model",
        models / "lightgbm",
        "--data",
        files["train"],
        "--test",
        files["test"],
        "--out",
        sub,
    )
    assert r.exit_code == 2 and "damaged" in r.output and "Traceback" not in r.output
    pd.testing.assert_frame_equal(pd.read_csv(sub), written)  # the old submission is untouched


def test_train_needs_a_model(files: dict[str, Path]) -> None:
    r = invoke("train", "--data", files["train"], "--out", files["root"] / "m")
    assert r.exit_code == 2


def test_score_errors(files: dict[str, Path]) -> None:
    answers = pd.read_csv(files["answers"])
    sub = files["root"] / "s.csv"
    answers[["sample_id", "p_true"]].rename(columns={"p_true": "is_listened"}).iloc[1:].to_csv(
        sub, index=False
    )
    r = invoke("score", sub, "--answers", files["answers"])
    assert r.exit_code == 2 and "do not match" in r.output
    sub.write_text("sample_id,is_listened\n0,high\n")
    r = invoke("score", sub, "--answers", files["answers"])
    assert r.exit_code == 2 and "not a number" in r.output and "'high'" in r.output
    r = invoke("score", files["root"] / "nope.csv", "--answers", files["answers"])
    assert r.exit_code == 2 and "not found" in r.output
    r = invoke("score", files["answers"], "--answers", files["answers"], "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["auc"] == pytest.approx(1.0)


def test_real_test_submission_matches_the_official_ids(dsg17_dir: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    r = invoke("train", "--data", dsg17_dir / "train_sample.csv", "-m", "user_flow_rate", "--out", models)
    assert r.exit_code == 0, r.output
    sub = tmp_path / "sub.csv"
    r = invoke(
        "predict", "--model", models / "user_flow_rate", "--data", dsg17_dir / "train_sample.csv",
        "--test", dsg17_dir / "test.csv", "--out", sub,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    written = pd.read_csv(sub)
    official = pd.read_csv(dsg17_dir / "sample_submission.csv")
    assert list(written.columns) == list(official.columns)
    np.testing.assert_array_equal(written["sample_id"], official["sample_id"])
    assert written["is_listened"].between(0, 1).all() and written["is_listened"].nunique() > 1

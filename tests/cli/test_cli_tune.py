"""`flowtui tune-recs` (the table, the JSON file, bad budgets and search spaces refused in one line, no
foreign file replaced) and `flowtui train-recs --params FILE` (the round trip)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowtui.cli import app
from flowtui.core.recs.evaluation import planted_frame
from flowtui.core.recs.store import read_recommender_meta
from flowtui.core.workflows.tune_file import FORMAT

runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tune") / "train.csv"
    planted_frame(n_users=150, seed=1).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def tuned(data: Path) -> tuple[Path, dict[str, object]]:
    """(the file tune-recs wrote, what --json printed)."""
    out = data.parent / "tuned.json"
    res = runner.invoke(
        app, ["tune-recs", "--data", str(data), "-m", "ease", "-m", "item_knn", "--trials", "6",
              "--out", str(out), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout)


def test_tune_recs_writes_the_best_parameters_and_the_history(tuned: tuple[Path, dict[str, object]]) -> None:
    out, printed = tuned
    record = json.loads(out.read_text())
    assert record["format"] == FORMAT and record["data"]["source"].endswith("train.csv")
    assert record["params"] == printed["params"] and set(record["params"]) == {"ease", "item_knn"}
    models = {m["model"]: m for m in record["models"]}
    assert [m["trials"] for m in record["models"]] == [3, 3]
    for m in models.values():
        assert len(m["history"]) == 3 and m["tuned_ndcg"] >= m["default_ndcg"]
        assert m["history"][0]["params"] == {}


def test_tune_recs_prints_a_table_beside_the_data(data: Path) -> None:
    res = runner.invoke(app, ["tune-recs", "--data", str(data), "-m", "item_knn", "--trials", "2"])
    assert res.exit_code == 0, res.output
    for text in ("default NDCG@10", "tuned NDCG@10", "best parameters", "item_knn", "train-recs --params"):
        assert text in res.stdout
    written = data.with_name("train.tuned.json")
    assert json.loads(written.read_text())["format"] == FORMAT
    again = runner.invoke(app, ["tune-recs", "--data", str(data), "-m", "item_knn", "--trials", "1"])
    assert again.exit_code == 0, again.output  # its own file is replaced


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trials", "0"], "--trials 0: expected an integer >= 1"),
        (["-m", "item_knn", "--trials", "1"], "--trials 1: expected at least one trial per model (2)"),
        (["--budget", "abc"], "--budget 'abc': expected a duration > 0 such as 90s, 10m or 1h"),
        (["--budget", "0s"], "--budget '0s': expected a duration"),
        (["--budget", "10m", "--trials", "3"], "give --trials or --budget, not both"),
        (["--space", "ease.l2=0:10:log"], "ease.l2 must be a number > 0"),
        (["--space", "ease.l2=9:1"], "ease.l2: a search range needs numbers LOW < HIGH"),
        (["--space", "ease.l2=1:9:ln"], "expected LOW:HIGH, LOW:HIGH:log or A,B,C"),
        (["--space", "ease.nope=1:2"], "ease: unknown parameter 'nope'"),
        (["--set", "ease.l2=5", "--space", "ease.l2=1:9"], "both set and searched"),
    ],
)
def test_bad_budgets_and_spaces_are_refused_in_one_line(
    data: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "t.json"
    res = runner.invoke(app, ["tune-recs", "--data", str(data), "-m", "ease", "--out", str(out), *args])
    assert res.exit_code == 2, res.output
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_a_file_flowtui_did_not_write_is_not_replaced(data: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine.json"
    mine.write_text('{"my": "notes"}')
    res = runner.invoke(
        app, ["tune-recs", "--data", str(data), "-m", "ease", "--trials", "1", "--out", str(mine)]
    )
    assert res.exit_code == 2 and "was not written by flowtui tune-recs" in res.stderr
    assert mine.read_text() == '{"my": "notes"}'


def test_train_recs_params_round_trip(
    data: Path, tuned: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    out, printed = tuned
    best = printed["params"]
    assert isinstance(best, dict)
    base = ["train-recs", "--data", str(data), "-m", "ease", "-m", "item_knn", "--params", str(out)]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "m"), "--json"])
    assert res.exit_code == 0, res.output
    for name in ("ease", "item_knn"):
        params = read_recommender_meta(tmp_path / "m" / name)["params"]
        assert {k: params[k] for k in best[name]} == best[name]
    res = runner.invoke(app, [*base, "--set", "item_knn.k=7", "--out", str(tmp_path / "n"), "--json"])
    assert res.exit_code == 0, res.output
    assert read_recommender_meta(tmp_path / "n" / "item_knn")["params"]["k"] == 7  # --set wins


def test_train_recs_refuses_a_bad_params_file(
    data: Path, tuned: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    record = json.loads(tuned[0].read_text())
    record["params"]["ease"] = {"l2": -1}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(record))
    other = tmp_path / "other.json"
    other.write_text("[1, 2]")
    for path, message in ((bad, "ease.l2 must be a number > 0"), (other, "is not a tuned-parameters file"),
                          (tmp_path / "none.json", "not found")):  # fmt: skip
        res = runner.invoke(
            app,
            [
                "train-recs",
                "--data",
                str(data),
                "-m",
                "ease",
                "--params",
                str(path),
                "--out",
                str(tmp_path / "m"),
            ],
        )
        assert res.exit_code == 2 and message in res.stderr, res.output
        assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_show_space_lists_the_declared_spaces_without_data() -> None:
    res = runner.invoke(
        app,
        ["tune-recs", "-m", "ease", "-m", "item_knn", "--space", "item_knn.k=5,50", "--show-space", "--json"],
    )
    assert res.exit_code == 0, res.output
    rows = {(r["model"], r["key"]): r for r in json.loads(res.stdout)}
    assert rows[("ease", "l2")]["search"] == "1 to 20000, log scale" and rows[("ease", "l2")]["log"] is True
    assert rows[("item_knn", "k")]["choices"] == [5, 50]

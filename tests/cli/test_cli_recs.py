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
        app,
        ["evaluate-recs", "--data", str(data), "--model", "item_mean", "--k", "5", "--seeds", "2", "--json"],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["setup"]["k"] == 5 and doc["setup"]["seeds"] == [0, 1] and doc["skipped"] == {}
    (row,) = doc["leaderboard"]
    assert row["model"] == "item_mean" and len(row["per_seed"]) == 2
    assert {"precision_at_k", "recall_at_k", "ndcg_at_k", "auc", "mae", "coverage", "fit_seconds"} <= set(row)
    assert {"ndcg_at_k_std", "auc_std"} <= set(row)
    res = runner.invoke(
        app,
        ["evaluate-recs", "--data", str(data), "--model", "rbm", "--model", "popularity", "--preset", "quick",
         "--set", "batch_size=16", "--set", "device=cpu", "--set", "rbm.n_iter=2", "--seeds", "1", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert {d["model"] for d in json.loads(res.stdout)["leaderboard"]} == {"rbm", "popularity"}


def test_evaluate_recs_table(trained: tuple[Path, Path]) -> None:
    data, _ = trained
    res = runner.invoke(
        app, ["evaluate-recs", "--data", str(data), "-m", "popularity", "-m", "ease", "--seeds", "2"]
    )
    assert res.exit_code == 0, res.output
    assert "NDCG@10" in res.stdout and "ease" in res.stdout and "±" in res.stdout
    assert max(len(line) for line in res.stdout.splitlines()) <= 80, res.stdout  # an 80-column terminal
    rows = {line.split()[0]: line.split() for line in res.stdout.splitlines() if line.strip()}
    assert "best" in rows[next(m for m in ("ease", "popularity") if "best" in rows[m])]
    assert str(data.absolute()) in res.stdout.replace("\n", "")


def test_leaderboard_json_has_paired_differences_and_names_its_data(trained: tuple[Path, Path]) -> None:
    data, _ = trained
    res = runner.invoke(
        app,
        ["evaluate-recs", "--data", str(data), "-m", "popularity", "-m", "ease", "--seeds", "3", "--json"],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["setup"]["data"]["source"] == str(data.absolute())
    assert doc["setup"]["data"]["fingerprint"].startswith(f"{len(pd.read_csv(data))}:")
    best, other = doc["leaderboard"]
    assert best["ndcg_at_k_vs_best"] == 0.0
    diffs = [
        a["ndcg_at_k"] - b["ndcg_at_k"] for a, b in zip(other["per_seed"], best["per_seed"], strict=True)
    ]
    assert other["ndcg_at_k_vs_best"] == pytest.approx(sum(diffs) / 3)
    assert other["ndcg_at_k_vs_best_std"] == pytest.approx(pd.Series(diffs).std(ddof=1))


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "svd"],
        ["--holdout", "oldest"],
        ["--fraction", "2"],
        ["--set", "bogus=1"],
        ["--set", "novalue"],
        ["--set", "ease.l2=-1"],
        ["--set", "svd.k=3"],
        ["-m", "popularity", "--set", "ease.l2=3"],
        ["--seeds", "0"],
        ["--k", "0"],
        ["--feedback", "ratings"],
        ["--preset", "slow"],
        ["--data", "/nonexistent/train.csv"],
    ],
)
def test_evaluate_recs_bad_input_exits_2_with_one_line(trained: tuple[Path, Path], args: list[str]) -> None:
    data, _ = trained
    res = runner.invoke(app, ["evaluate-recs", "--data", str(data), "-m", "popularity", *args])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    res = runner.invoke(app, ["evaluate-recs", "--data", str(data), "-m", "popularity", *args, "--json"])
    assert res.exit_code == 2 and json.loads(res.stdout)["error"]["message"], res.output


def test_train_recs_then_recommend_with_any_recommender(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, _ = trained
    out = tmp_path / "models"
    res = runner.invoke(
        app,
        ["train-recs", "-m", "ease", "-m", "popularity", "--data", str(data), "--out", str(out),
         "--set", "ease.l2=50", "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    saved = {d["model"]: d for d in json.loads(res.stdout)}
    assert set(saved) == {"ease", "popularity"}
    meta = json.loads((out / "ease" / "meta.json").read_text())
    assert meta["format"] == "flowtui-recommender" and meta["format_version"] == 1
    assert meta["model"] == "ease" and meta["params"]["l2"] == 50.0
    assert meta["n_items"] == saved["ease"]["n_items"] > 0 and meta["n_users"] == 150
    rows = len(pd.read_csv(data))
    assert meta["data_fingerprint"].startswith(f"{rows}:") and not meta["implicit"]
    for name in ("ease", "popularity"):
        res = runner.invoke(
            app,
            [
                "recommend",
                "--model",
                str(out / name),
                "--data",
                str(data),
                "--user",
                "3",
                "--n",
                "4",
                "--json",
            ],
        )
        assert res.exit_code == 0, res.output
        recs = json.loads(res.stdout)
        assert len(recs) == 4 and all(set(r) == REC_KEYS for r in recs)
    res = runner.invoke(
        app,
        ["recommend", "--model", str(out / "ease"), "--data", str(data), "--user", "3", "--artist", "505",
         "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert {r["artist_id"] for r in json.loads(res.stdout)} == {505}
    res = runner.invoke(
        app,
        ["recommend", "--model", str(out / "ease"), "--data", str(data), "--like-artist", "500", "--n", "3",
         "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    first = json.loads(res.stdout)[0]
    assert first["artist_id"] == 500 and first["reason"] == "by artist 500 (you chose it)"
    again = runner.invoke(app, ["train-recs", "-m", "popularity", "--data", str(data), "--out", str(out)])
    assert again.exit_code == 0, again.output  # a model folder is replaced


@pytest.mark.parametrize(
    "args",
    [
        ["-m", "svd"],
        ["-m", "ease", "--set", "l2=zero"],
        ["-m", "ease", "--set", "k=3"],
        ["-m", "item_mean", "--feedback", "plays"],
        ["-m", "popularity", "--feedback", "maybe"],
    ],
)
def test_train_recs_bad_input_exits_2_with_one_line(
    trained: tuple[Path, Path], tmp_path: Path, args: list[str]
) -> None:
    data, _ = trained
    res = runner.invoke(app, ["train-recs", "--data", str(data), "--out", str(tmp_path / "m"), *args])
    assert res.exit_code == 2, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output


def test_train_recs_never_replaces_a_folder_it_did_not_write(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    data, _ = trained
    foreign = tmp_path / "models" / "popularity"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    res = runner.invoke(
        app, ["train-recs", "-m", "popularity", "--data", str(data), "--out", str(foreign.parent)]
    )
    assert res.exit_code == 2 and "not a flowtui model folder" in res.output
    assert (foreign / "notes.txt").read_text() == "mine"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = runner.invoke(app, ["train-recs", "-m", "popularity", "--data", str(data), "--out", str(blocker)])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_recommend_refuses_a_damaged_recommender_folder(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, _ = trained
    out = tmp_path / "models"
    assert (
        runner.invoke(
            app, ["train-recs", "-m", "popularity", "--data", str(data), "--out", str(out)]
        ).exit_code
        == 0
    )
    (out / "popularity" / "state.npz").write_bytes(b"torn")
    res = runner.invoke(
        app, ["recommend", "--model", str(out / "popularity"), "--data", str(data), "--user", "3"]
    )
    assert res.exit_code == 2 and "damaged" in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output


def test_recommenders_lists_models_and_parameters() -> None:
    res = runner.invoke(app, ["recommenders", "--json"])
    assert res.exit_code == 0
    names = [d["model"] for d in json.loads(res.stdout)]
    assert {"rbm", "dbn", "ease", "als", "item_knn", "popularity"} <= set(names)
    res = runner.invoke(app, ["recommenders", "als", "--json"])
    assert res.exit_code == 0
    keys = {d["key"] for d in json.loads(res.stdout)}
    assert {"factors", "regularization", "alpha", "iterations", "skip_weight"} <= keys
    res = runner.invoke(app, ["recommenders", "svd"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1


# -- trust: the model meets its data, ids the user can read, safe outputs --------------------------------


def one_line(res: object) -> str:
    out = res.output.strip()  # type: ignore[attr-defined]
    assert res.exit_code == 2, out  # type: ignore[attr-defined]
    assert "Traceback" not in out and len(out.splitlines()) == 1, out
    return out


@pytest.fixture(scope="module")
def saved_ease(trained: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    data, _ = trained
    out = tmp_path_factory.mktemp("ease")
    res = runner.invoke(app, ["train-recs", "-m", "ease", "--data", str(data), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    return out / "ease"


@pytest.mark.parametrize(
    "args",
    [
        ["--user", "99999999999999999999"],  # beyond int64: no OverflowError
        ["--user", "-99999999999999999999"],
        ["--user", "abc"],
        ["--user", "0x16"],
        ["--like-artist", "1e400"],
        ["--like-genre", "99999999999999999999"],
        ["--user", "3", "--artist", "99999999999999999999"],
        ["--user", "3", "--genre", "two"],
    ],
)
def test_recommend_bad_ids_give_one_line_and_a_json_object(
    saved_ease: Path, trained: tuple[Path, Path], args: list[str]
) -> None:
    data, _ = trained
    base = ["recommend", "--model", str(saved_ease), "--data", str(data), *args]
    line = one_line(runner.invoke(app, base))
    assert f"{args[-2]} {args[-1]}" in line
    res = runner.invoke(app, [*base, "--json"])
    assert res.exit_code == 2
    assert args[-1] in json.loads(res.stdout)["error"]["message"]


def test_recommend_refuses_other_data_unless_allowed(
    saved_ease: Path, trained: tuple[Path, Path], tmp_path: Path
) -> None:
    data, _ = trained
    other = tmp_path / "other.csv"
    frame = planted_frame(n_users=150, seed=7)
    frame["media_id"] += 50_000  # none of its media is known to the model
    frame.to_csv(other, index=False)
    args = ["recommend", "--model", str(saved_ease), "--data", str(other), "--user", "3"]
    line = one_line(runner.invoke(app, args))
    assert str(other) in line and str(data) in line and "--allow-other-data" in line
    assert "0% of its media" in line
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 2 and str(other) in json.loads(res.stdout)["error"]["message"]
    res = runner.invoke(app, [*args, "--allow-other-data", "--json"])
    assert res.exit_code == 0, res.output
    assert "used anyway" in res.stderr and len(json.loads(res.stdout)) == 10
    # a flow model folder (`flowtui train --model rbm`) is checked the same way
    _, rbm = trained
    line = one_line(
        runner.invoke(app, ["recommend", "--model", str(rbm), "--data", str(other), "--user", "3"])
    )
    assert str(other) in line
    # its own data: no warning
    res = runner.invoke(app, ["recommend", "--model", str(saved_ease), "--data", str(data), "--user", "3"])
    assert res.exit_code == 0 and "warning" not in res.stderr


def test_recommend_all_out_never_writes_through_links_pipes_or_read_only_folders(
    saved_ease: Path, trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from flowtui.core import safe_files

    data, _ = trained
    real = tmp_path / "real.csv"
    real.write_text("keep\n")
    (tmp_path / "link.csv").symlink_to(real)
    os.mkfifo(tmp_path / "fifo.csv")
    (tmp_path / "dir.csv").mkdir()
    base = ["recommend", "--model", str(saved_ease), "--data", str(data), "--all", "--out"]
    for name, word in (("link.csv", "symbolic link"), ("fifo.csv", "named pipe"), ("dir.csv", "folder")):
        line = one_line(runner.invoke(app, [*base, str(tmp_path / name)]))
        assert word in line and name in line, line
    if Path("/dev/full").exists():
        assert "device" in one_line(runner.invoke(app, [*base, "/dev/full"]))
    assert real.read_text() == "keep\n" and (tmp_path / "link.csv").is_symlink()
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setattr(safe_files, "_writable", lambda p: Path(p) != ro)  # root ignores chmod 0o555
    line = one_line(runner.invoke(app, [*base, str(ro / "recs.csv")]))
    assert "read-only" in line and str(ro) in line
    res = runner.invoke(app, [*base, str(ro / "recs.csv"), "--json"])
    assert res.exit_code == 2 and "read-only" in json.loads(res.stdout)["error"]["message"]
    assert not list(ro.iterdir()) and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_imported_log_ids_round_trip(tmp_path: Path) -> None:
    """Import a log with string ids, train, recommend: every id shown or written is one of the log's."""
    frame = planted_frame(n_users=120, seed=3)
    log = pd.DataFrame(
        {
            "who": "user-" + frame["user_id"].astype(str) + "@x",
            "song": "song:" + (frame["media_id"] * 7).astype(str),
            "band": "band " + frame["artist_id"].astype(str),
            "style": "style-" + frame["genre_id"].astype(str),
            "heard": frame["is_listened"],
            "at": frame["ts_listen"],
        }
    )
    log.to_csv(tmp_path / "log.csv", index=False)
    data = tmp_path / "train.csv"
    res = runner.invoke(
        app,
        ["data", "import", str(tmp_path / "log.csv"), "--user", "who", "--item", "song", "--artist", "band",
         "--genre", "style", "--label", "heard", "--time", "at", "--out", str(data)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    models = tmp_path / "models"
    res = runner.invoke(
        app, ["train-recs", "-m", "ease", "-m", "popularity", "--data", str(data), "--out", str(models)]
    )
    assert res.exit_code == 0, res.output
    users, songs = set(log["who"]), set(log["song"])
    bands, styles = set(log["band"]), set(log["style"])
    who = log["who"].iloc[0]
    for name in ("ease", "popularity"):
        res = runner.invoke(
            app, ["recommend", "--model", str(models / name), "--data", str(data), "--user", who, "--json"]
        )
        assert res.exit_code == 0, res.output
        recs = json.loads(res.stdout)
        assert len(recs) == 10
        assert {r["media_id"] for r in recs} <= songs and {r["artist_id"] for r in recs} <= bands
        assert {r["genre_id"] for r in recs} <= styles
        assert not {r["media_id"] for r in recs} & set(log.loc[log["who"] == who, "song"])
        for r in recs:  # reasons name the log's ids
            named = r["reason"].split(" you ")[0].removeprefix("artist ").removeprefix("genre ")
            named = named.removeprefix("listeners of media ")
            assert named in bands | styles | songs or r["reason"].startswith(("ranked", "popular")), r
    out = tmp_path / "all.csv"
    res = runner.invoke(
        app, ["recommend", "--model", str(models / "ease"), "--data", str(data), "--all", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    written = pd.read_csv(out, dtype=str)
    assert set(written["user_id"]) == users and set(written["media_id"]) <= songs
    band = log["band"].iloc[0]
    res = runner.invoke(
        app,
        ["recommend", "--model", str(models / "ease"), "--data", str(data), "--like-artist", band, "--n", "3",
         "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    first = json.loads(res.stdout)[0]
    assert first["artist_id"] == band and first["reason"] == f"by artist {band} (you chose it)"
    res = runner.invoke(
        app,
        [
            "recommend",
            "--model",
            str(models / "ease"),
            "--data",
            str(data),
            "--user",
            who,
            "--artist",
            band,
            "--json",
        ],
    )
    assert res.exit_code == 0 and {r["artist_id"] for r in json.loads(res.stdout)} <= {band}
    for args in (
        ["--user", "3"],
        ["--user", "user-99999@x"],
        ["--like-artist", "nobody"],
        ["--user", who, "--genre", "jazz"],
    ):
        line = one_line(
            runner.invoke(app, ["recommend", "--model", str(models / "ease"), "--data", str(data), *args])
        )
        assert "imported log" in line or "not in" in line, line

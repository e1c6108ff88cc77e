"""The recommender workflow: train and save (folders checked, data recorded, failures, cancel, tuner seam),
the leaderboard and its file, recommend for a user, everyone and a new user, and the one `--set` parser."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pytest

from flowtui.core import events as ev
from flowtui.core.errors import DataError, ParamError
from flowtui.core.modelfiles.data_match import DataMismatchError
from flowtui.core.recs.store import load_recommender, read_recommender_meta
from flowtui.core.workflows import recs as workflow
from tests.recs.conftest import block_frame

FAST = ("popularity", "item_knn")


@pytest.fixture(scope="module")
def blocks() -> pd.DataFrame:
    return block_frame()


@pytest.fixture(scope="module")
def data_file(blocks: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wf") / "train.csv"
    blocks.to_csv(path, index=False)
    return path


def test_train_and_save_records_the_data_and_reports_each_model(blocks: pd.DataFrame, tmp_path: Path) -> None:
    events: list[ev.Event] = []
    told: list[tuple[str, object]] = []
    request = workflow.TrainRequest(
        FAST, tmp_path / "m", {"item_knn": {"k": "5"}}, "quick", source="/data/train.csv"
    )
    result = workflow.train_and_save(
        blocks, request, on_event=events.append, on_model=lambda n, o: told.append((n, o))
    )
    assert [t.model for t in result.saved] == list(FAST) and not result.failed
    assert [n for n, _ in told] == list(FAST)
    meta = read_recommender_meta(tmp_path / "m" / "item_knn")
    assert meta["params"]["k"] == 5 and meta["data"]["source"] == "/data/train.csv"
    assert meta["data_fingerprint"].startswith(f"{len(blocks)}:")
    assert [e.model for e in events if isinstance(e, ev.Saved)] == list(FAST)
    assert result.saved[0].to_dict()["path"] == str(tmp_path / "m" / "popularity")


def test_train_refuses_foreign_folders_before_any_fit_or_goes_on_past_them(
    blocks: pd.DataFrame, tmp_path: Path
) -> None:
    foreign = tmp_path / "m" / "popularity"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    request = workflow.TrainRequest(FAST, tmp_path / "m", preset="quick")
    with pytest.raises(DataError, match="not a flowtui model folder"):
        workflow.train_and_save(blocks, request)
    assert not (tmp_path / "m" / "item_knn").exists()
    going = workflow.train_and_save(blocks, workflow.TrainRequest(FAST, tmp_path / "m", keep_going=True))
    assert list(going.failed) == ["popularity"] and [t.model for t in going.saved] == ["item_knn"]
    assert (foreign / "notes.txt").read_text() == "mine"


def test_train_stops_at_the_first_failure_and_checks_parameters_first(
    blocks: pd.DataFrame, tmp_path: Path
) -> None:
    with pytest.raises(ParamError, match="unknown recommender svd"):
        workflow.TrainRequest(("svd",), tmp_path).validate()
    with pytest.raises(ParamError, match="which this run does not train"):
        workflow.TrainRequest(("ease",), tmp_path, {"als": {}}).validate()
    plays = workflow.TrainRequest(("item_mean", "popularity"), tmp_path / "m", implicit=True)
    result = workflow.train_and_save(blocks, plays)
    assert list(result.failed) == ["item_mean"] and not result.saved
    assert not (tmp_path / "m" / "popularity").exists()


def test_a_cancel_leaves_what_was_saved_and_nothing_half_written(
    blocks: pd.DataFrame, tmp_path: Path
) -> None:
    cancel = threading.Event()

    def stop_after_first(name: str, outcome: object) -> None:
        cancel.set()

    request = workflow.TrainRequest(FAST, tmp_path / "m")
    with pytest.raises(ev.Cancelled):
        workflow.train_and_save(blocks, request, cancel=cancel, on_model=stop_after_first)
    assert load_recommender(tmp_path / "m" / "popularity").name == "popularity"
    left = {p.name for p in (tmp_path / "m").iterdir() if not p.name.endswith(".lock")}
    assert left == {"popularity"}  # no item_knn folder, no temporary one


def test_a_tuner_gives_the_parameters_trained_with(blocks: pd.DataFrame, tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    def tuner(
        frame: pd.DataFrame,
        names: Sequence[str],
        given: Mapping[str, Mapping[str, object]],
        *,
        preset: str,
        on_event: ev.EventCallback | None,
        cancel: threading.Event | None,
    ) -> Mapping[str, Mapping[str, object]]:
        seen.update(names=list(names), given=dict(given), preset=preset)
        return {"item_knn": {"k": 7}}

    request = workflow.TrainRequest(("item_knn",), tmp_path / "m", {"item_knn": {"k": 3}}, "quick")
    workflow.train_and_save(blocks, request, tuner=tuner)
    assert seen == {"names": ["item_knn"], "given": {"item_knn": {"k": 3}}, "preset": "quick"}
    assert read_recommender_meta(tmp_path / "m" / "item_knn")["params"]["k"] == 7

    def bad(*args: object, **kw: object) -> Mapping[str, Mapping[str, object]]:
        return {"item_knn": {"k": -1}}

    with pytest.raises(ParamError, match=r"item_knn\.k must be"):
        workflow.train_and_save(blocks, request, tuner=bad)


def test_the_leaderboard_names_its_data_and_is_kept_for_the_same_data(
    blocks: pd.DataFrame, tmp_path: Path
) -> None:
    board = workflow.evaluate(blocks, FAST, seeds=2, preset="quick", source="train.csv", stamp=True)
    data = board.setup["data"]
    assert data["source"] == "train.csv" and data["rows"] == len(blocks) and "computed" in board.setup
    path = workflow.save_leaderboard(board, tmp_path / "recs")
    assert path == tmp_path / "recs" / workflow.BOARD_FILE and json.loads(path.read_text())["leaderboard"]
    again = workflow.load_leaderboard(tmp_path / "recs", data["fingerprint"])
    assert again is not None and [r["model"] for r in again.rows] == [r["model"] for r in board.rows]
    assert workflow.load_leaderboard(tmp_path / "recs", "other") is None
    assert workflow.load_leaderboard(tmp_path / "nothing", data["fingerprint"]) is None
    path.write_text("{damaged")
    assert workflow.load_leaderboard(tmp_path / "recs", data["fingerprint"]) is None


def test_recommend_for_a_user_everyone_and_a_new_user(
    blocks: pd.DataFrame, data_file: Path, tmp_path: Path
) -> None:
    workflow.train_and_save(blocks, workflow.TrainRequest(("item_knn",), tmp_path))
    folder = tmp_path / "item_knn"
    one = workflow.recommend(folder, data_file, workflow.RecommendQuery(n=4, user=3))
    assert len(one.table) == 4 and one.model == "item_knn" and one.match.same
    everyone = workflow.recommend(folder, data_file, workflow.RecommendQuery(n=2, all_users=True))
    assert set(everyone.table["user_id"]) == set(blocks["user_id"])
    new = workflow.recommend(folder, data_file, workflow.RecommendQuery(n=3, liked_artists=(500,)))
    assert (new.table["artist_id"] == 500).all()
    with pytest.raises(workflow.UnknownUserError):
        workflow.recommend(folder, data_file, workflow.RecommendQuery(user=10**9))
    with pytest.raises(DataError, match="not found"):
        workflow.recommend(tmp_path / "missing", data_file, workflow.RecommendQuery(user=3))


def test_recommend_refuses_other_data_unless_allowed(blocks: pd.DataFrame, tmp_path: Path) -> None:
    workflow.train_and_save(blocks, workflow.TrainRequest(("popularity",), tmp_path))
    other = tmp_path / "other.csv"
    block_frame(seed=5).assign(user_id=lambda f: f["user_id"] + 10_000).to_csv(other, index=False)
    query = workflow.RecommendQuery(n=2, all_users=True)
    with pytest.raises(DataMismatchError):
        workflow.recommend(tmp_path / "popularity", other, query)
    allowed = workflow.recommend(tmp_path / "popularity", other, query, allow_other=True)
    assert allowed.match.warning and not allowed.match.same


def test_internal_ids_without_an_id_map() -> None:
    assert workflow.internal_id("user", " 12 ", None) == 12
    assert workflow.internal_id("artist", "-3", None) == -3
    for text, message in [("x1", "expected an integer user id"), (str(2**63), "64-bit integers")]:
        with pytest.raises(ValueError, match=message):
            workflow.internal_id("user", text, None)


def test_one_set_parser_for_recommenders() -> None:
    names = ["ease", "item_knn", "popularity"]
    assert workflow.check_overrides(["ease.l2=5", "num_threads=1"], names, "full") == {
        "ease": {"l2": "5", "num_threads": "1"},
        "item_knn": {"num_threads": "1"},
    }  # KEY=VALUE: every chosen model that has KEY (popularity has no threads)
    for items, message in [
        (["novalue"], "expected MODEL.KEY=VALUE"),
        (["svd.k=3"], "unknown model 'svd'"),
        (["bogus=1"], "no chosen model has a parameter 'bogus'"),
        (["als.factors=3"], "model 'als' is not among the chosen models"),
        (["ease.l2=-1"], "ease.l2 must be"),
    ]:
        with pytest.raises(ParamError, match=message):
            workflow.check_overrides(items, names, "full")
    with pytest.raises(ParamError, match="unknown recommender svd; known: "):
        workflow.check_names(["ease", "svd"])

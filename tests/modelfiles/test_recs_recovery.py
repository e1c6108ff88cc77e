"""The save fallback of recommender folders (no atomic exchange): a save killed between any two steps
leaves a loadable model, old or new, at the next load and at the next save; a reader that starts inside
another process's rename window waits for it (issue 20, item 7)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from flowtui.core import safe_files
from flowtui.core.flow.store import list_models, load_model
from flowtui.core.modelfiles.data_match import describe_data
from flowtui.core.recs import store
from flowtui.core.recs.interactions import recommender_matrix
from flowtui.core.recs.recommender import RecommenderBase
from flowtui.core.recs.store import load_recommender, save_recommender
from flowtui.core.workflows.recs import open_model
from tests.modelfiles import faults
from tests.recs.conftest import block_frame, build

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="fault injection forks")
STEPS = ("locked", "cleaned", "tmp_created", "meta_written", "old_moved", "swapped", "done")


@pytest.fixture(scope="module")
def fitted() -> RecommenderBase:
    return build("popularity").fit(recommender_matrix(block_frame()))


@pytest.fixture(autouse=True)
def no_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safe_files, "EXCHANGE_ENABLED", False)


def save(model: RecommenderBase, folder: Path, label: str) -> Path:
    model.notes = [label]
    frame = block_frame()
    return save_recommender(model, folder, data=describe_data(frame, "1:x", source="train.csv"))


def label(folder: Path, opener: Callable[[Path], RecommenderBase] = load_recommender) -> str:
    return opener(folder).notes[0]


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir())


def crash_in_child(work: Callable[[], object], at: str | None, delay: float | None = None) -> None:
    faults.crash_in_child(store, work, at, delay)


def _new_won(step: str) -> bool:
    return STEPS.index(step) >= STEPS.index("old_moved")


@needs_fork
@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("opener", [load_recommender, open_model], ids=["load", "recommend"])
def test_a_kill_at_any_step_leaves_old_or_new_at_the_next_load(
    fitted: RecommenderBase, tmp_path: Path, step: str, opener: Callable[[Path], RecommenderBase]
) -> None:
    folder = save(fitted, tmp_path / "ease", "old")
    crash_in_child(lambda: save(fitted, folder, "new"), step)
    assert label(folder, opener) == ("new" if _new_won(step) else "old")
    assert siblings(folder) == [".ease.lock", "ease"]


@needs_fork
@pytest.mark.parametrize("step", STEPS)
def test_a_kill_at_any_step_leaves_old_or_new_at_the_next_save(
    fitted: RecommenderBase, tmp_path: Path, step: str
) -> None:
    folder = save(fitted, tmp_path / "ease", "old")
    crash_in_child(lambda: save(fitted, folder, "new"), step)
    save(fitted, folder, "next")
    assert label(folder) == "next" and siblings(folder) == [".ease.lock", "ease"]


@needs_fork
def test_a_recommender_between_renames_survives_a_flow_reader(
    fitted: RecommenderBase, tmp_path: Path
) -> None:
    """Flow's loader and listing put back a recommender's complete folder too (they deleted both)."""
    folder = save(fitted, tmp_path / "ease", "old")
    crash_in_child(lambda: save(fitted, folder, "new"), "old_moved")
    assert not folder.exists()
    assert list_models(tmp_path) == []  # not a Flow model, but put back, not deleted
    assert label(folder) == "new"
    crash_in_child(lambda: save(fitted, folder, "newer"), "old_moved")
    with pytest.raises(Exception, match="recommender"):
        load_model(folder)
    assert label(folder) == "newer"


@needs_fork
def test_a_reader_inside_the_rename_window_waits_for_it(
    fitted: RecommenderBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = save(fitted, tmp_path / "ease", "old")
    ready = tmp_path / "window-open"

    def slow(name: str) -> None:
        if name == "old_moved":
            ready.touch()
            time.sleep(0.8)

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            store._fault_hook = slow
            save(fitted, folder, "new")
        finally:
            os._exit(0)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ready.exists() and not folder.exists()
        assert label(folder, open_model) == "new"
    finally:
        os.waitpid(pid, 0)


@needs_fork
def test_saves_killed_at_random_moments(fitted: RecommenderBase, tmp_path: Path) -> None:
    folder = save(fitted, tmp_path / "ease", "v0")

    def many() -> None:
        for i in range(1, 1000):
            save(fitted, folder, f"v{i}")

    for delay in (0.01, 0.03, 0.05, 0.08, 0.11, 0.15):
        crash_in_child(many, None, delay)
        assert label(folder, open_model).startswith("v")
        assert set(siblings(folder)) <= {".ease.lock", "ease"}

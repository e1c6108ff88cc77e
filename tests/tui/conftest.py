"""Fixtures of the app's tests. Every test gets its own empty config folder, so no test reads or writes a
person's real settings (the app also keeps its memory off under pytest without FLOWTUI_CONFIG_DIR)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def config_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh `$FLOWTUI_CONFIG_DIR` for the test (the settings file is `config_dir / "settings.json"`)."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("FLOWTUI_CONFIG_DIR", str(folder))
    return folder


def write_synthetic(folder: Path, n_users: int, seed: int) -> tuple[Path, Path]:
    """A synthetic train/test pair in `folder`."""
    from flowtui.core.data.synth import synthesize_frames

    folder.mkdir(parents=True, exist_ok=True)
    train, test, _answers = synthesize_frames(n_users=n_users, seed=seed)
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    return folder / "train.csv", folder / "test.csv"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny synthetic train/test pair (40 users) written once."""
    return write_synthetic(tmp_path_factory.mktemp("tiny"), 40, 1)


@pytest.fixture(scope="session")
def other_tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Another tiny pair (30 users, other seed): "other data" for the app."""
    return write_synthetic(tmp_path_factory.mktemp("other"), 30, 2)

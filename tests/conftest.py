"""Shared fixtures: an isolated cache folder, the real DSG17 fixtures when present."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DSG17 = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsg17"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never write parquet caches into the user's home during tests."""
    monkeypatch.setenv("FLOWTUI_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "flowtui-cache"))


@pytest.fixture
def dsg17_dir() -> Path:
    """The real DSG17 files in ../shared/data/dsg17; the test is skipped when they are absent."""
    if not SHARED_DSG17.is_dir():
        pytest.skip("../shared/data/dsg17 is not present")
    return SHARED_DSG17

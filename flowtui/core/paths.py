"""Where flowtui finds its bundled sample and keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


def sample_dir() -> Path:
    """The bundled synthetic sample (`data/sample/`), or `$FLOWTUI_SAMPLE_DIR` when set."""
    env = os.environ.get("FLOWTUI_SAMPLE_DIR")
    return Path(env) if env else _REPO_ROOT / "data" / "sample"


def sample_train() -> Path:
    """The bundled sample's train.csv, used by every command when no path is given."""
    return sample_dir() / "train.csv"


def sample_test() -> Path:
    """The bundled sample's test.csv."""
    return sample_dir() / "test.csv"


def cache_dir() -> Path:
    """Folder of the load cache (validated Arrow copies, see `core.data.cache`): `$FLOWTUI_CACHE_DIR`, else
    `$XDG_CACHE_HOME/flowtui` or `~/.cache/flowtui`."""
    env = os.environ.get("FLOWTUI_CACHE_DIR")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "flowtui"
    return base

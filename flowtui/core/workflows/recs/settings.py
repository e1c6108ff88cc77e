"""What every recommender job checks first: the train file, the chosen recommenders, their `--set`
overrides (one parser for every model kind: `params.parse_overrides`) and the kind of feedback."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from flowtui.core import events as ev
from flowtui.core import paths, registry
from flowtui.core.errors import ParamError
from flowtui.core.params import parse_overrides

if TYPE_CHECKING:
    from flowtui.core.data.idmap import IdMap
    from flowtui.core.data.io import Dataset

#: The kinds of feedback a recommender learns: None lets the data decide (plays when no row is skipped).
FEEDBACK: dict[str, bool | None] = {"auto": None, "labels": False, "plays": True}


def load_train(path: Path | None, on_event: ev.EventCallback | None = None) -> pd.DataFrame:
    """The train file at `path` (default: the bundled sample), validated; DataError when refused."""
    return load_train_dataset(path, on_event).frame


def load_train_dataset(path: Path | None, on_event: ev.EventCallback | None = None) -> Dataset:
    """`load_train` with what validation found: the frame and the warnings about odd values."""
    from flowtui.core.data import io

    return io.load_dataset(path or paths.sample_train(), kind="train", on_event=on_event)


def id_map(data: Path | None) -> IdMap | None:
    """The id map kept beside the train file `data` (default: the bundled sample) by `flowtui data
    import`, or None when its ids are its own; DataError when the map is refused."""
    from flowtui.core.data.idmap import IdMap

    return IdMap.for_dataset(data or paths.sample_train())


def check_names(models: Sequence[str] | None) -> list[str]:
    """The chosen recommenders (default: every registered one), duplicates dropped; ParamError naming the
    known ones when one is not registered."""
    known = registry.recommender_names()
    names = list(dict.fromkeys(models or known))
    bad = [m for m in names if m not in known]
    if bad:
        raise ParamError(f"unknown recommender {', '.join(bad)}; known: {', '.join(known)}")
    return names


def _has_key(name: str, key: str) -> bool:
    return registry.get_recommender(name).schema.get(key) is not None


def check_overrides(items: Sequence[str], names: Sequence[str], preset: str) -> dict[str, dict[str, str]]:
    """`--set` items (`params.parse_overrides`: MODEL.KEY=VALUE, or KEY=VALUE for every chosen model that
    has KEY) as {model: {key: text}}, each model's values checked under `preset` (ParamError)."""
    known = registry.recommender_names()
    out = parse_overrides(items, list(names), known, has_key=_has_key)
    for name, over in out.items():
        registry.get_recommender(name).params(over, preset)
    return out

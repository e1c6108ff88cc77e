"""What several screens share: the saved-model pickers, id parsing, a recommender cache, and turning a
failed worker into a notification.

Screens import this module (and `messages`, `state`, `widgets`), never each other and never the app module.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.widgets import Select
from textual.worker import Worker, WorkerState

from flowtui.core.data.schema import DataError

if TYPE_CHECKING:
    import pandas as pd
    from textual.app import App

    from flowtui.core.recs.recommend import Recommender

#: Columns of a recommendation table: (label, width).
REC_COLUMNS = [("#", 2), ("media", 8), ("artist", 7), ("genre", 5), ("score", 5), ("reason", 40)]
#: Recommendations shown per user.
TOP_N = 10


def scan_models(models_dir: Path) -> tuple[list[str], list[str]]:
    """Saved model folders in `models_dir`: (those that can recommend, all of them by holdout AUC, best first).

    Loads the registry (scikit-learn, LightGBM): call it in a worker.
    """
    from flowtui.core.flow import store

    saved = store.list_models(models_dir)  # by folder name, so equal AUCs stay in name order
    recommenders = [m.name for m in saved if m.can_recommend]
    return recommenders, [m.name for m in sorted(saved, key=lambda m: -(m.auc or 0.0))]


def parse_ids(text: str) -> list[int]:
    """`"3, 17 42"` -> [3, 17, 42]; ValueError names the bad part."""
    out = []
    for part in text.replace(",", " ").split():
        if not part.lstrip("-").isdigit():
            raise ValueError(f"{part!r} is not an integer id")
        out.append(int(part))
    return out


def set_choices(select: Select[str], names: list[str]) -> None:
    """Offer `names` in `select`, keeping the current choice when it is still there."""
    current = select.value
    select.set_options([(n, n) for n in names])
    if names:
        select.value = current if isinstance(current, str) and current in names else names[0]


class RecommenderCache:
    """One Recommender per (model folder, data) pair, built in a worker thread and reused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, int, int] | None = None
        self._rec: Recommender | None = None

    def get(self, folder: Path, frame: pd.DataFrame) -> Recommender:
        """The recommender of the model in `folder` over `frame` (built on first use; call it in a worker)."""
        from flowtui.core.flow import store
        from flowtui.core.recs import recommend

        key = (str(folder), (folder / "meta.json").stat().st_mtime_ns, id(frame))
        with self._lock:
            if self._rec is None or self._key != key:
                self._rec = recommend.Recommender(store.load_model(folder), frame)
                self._key = key
            return self._rec


def report_worker_failure(app: App[Any], event: Worker.StateChanged) -> None:
    """Show a failed worker as an error notification (the one place that does; other states are ignored)."""
    if event.state != WorkerState.ERROR:
        return
    error = event.worker.error
    message = error.one_line() if isinstance(error, DataError) else f"{type(error).__name__}: {error}"
    app.notify(message, title=f"{event.worker.group or 'task'} failed", severity="error", timeout=10)

"""The saved recommenders' panel of the Recommenders screen: the recommender folders of the models folder,
each with the data it was trained on ("these data" or the other file), and `u` to recommend with one on
screens 5 and 6. A base class of `RecsScreen`, which composes the `#recs-saved` table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.widgets import DataTable

from flowtui.core.errors import DataError
from flowtui.tui import helpers
from flowtui.tui.messages import SavedRecsRead
from flowtui.tui.screens.base import FlowScreen

if TYPE_CHECKING:
    import pandas as pd

#: Columns of the saved recommenders' table: (label, width).
SAVED_COLUMNS = [("folder", 16), ("data", 17), ("model", 10), ("items", 6), ("fit s", 5)]


class SavedRecsPanel(FlowScreen):
    """The `#recs-saved` table of a screen: read in a worker, refreshed when the models folder or the
    loaded data changes."""

    def __init__(self) -> None:
        super().__init__()
        self._saved: list[tuple[str, dict[str, Any] | None, str]] = []
        self._fingerprint = ""
        self._saved_key: object = None

    def refresh_saved(self, force: bool = False) -> None:
        """Re-read the saved recommender folders when the models folder or the loaded data changed."""
        state = self.state
        frame = state.train.frame if state.train is not None else None
        key = (str(state.models_dir), id(frame))
        if key != self._saved_key or force:
            self._saved_key = key
            self._read_saved(state.models_dir, frame)

    @work(thread=True, exclusive=True, exit_on_error=False, group="recs-saved")
    def _read_saved(self, models_dir: Path, frame: pd.DataFrame | None) -> None:
        from flowtui.core.recs.store import read_recommender_meta

        found: list[tuple[str, dict[str, Any] | None, str]] = []
        for name in helpers.recommender_folders(models_dir):
            try:
                found.append((name, read_recommender_meta(models_dir / name), ""))
            except DataError as err:
                found.append((name, None, err.one_line()))
        self.post_result(SavedRecsRead(helpers.fingerprint(frame) if frame is not None else "", found))

    def on_saved_recs_read(self, message: SavedRecsRead) -> None:
        self._saved, self._fingerprint = message.folders, message.fingerprint
        table = self.query_one("#recs-saved", DataTable)
        cursor = table.cursor_row
        table.clear()
        for name, meta, error in self._saved:
            if meta is None:
                table.add_row(name, f"✗ {error}", "?", "", "", key=name)
                continue
            table.add_row(
                name + (" ◀" if name == self.state.rec_model else ""),
                self._data_of(meta),
                str(meta.get("model", "?")),
                f"{meta.get('n_items', 0):,}",
                f"{float(meta.get('fit_seconds', 0.0)):.1f}",
                key=name,
            )
        if self._saved:
            table.move_cursor(row=min(max(cursor, 0), len(self._saved) - 1))

    def _data_of(self, meta: dict[str, Any]) -> str:
        """'these data' or 'other: FILE' for a saved recommender's meta.json."""
        if self._fingerprint and meta.get("data_fingerprint") == self._fingerprint:
            return "these data"
        data = meta.get("data")
        source = data.get("source") if isinstance(data, dict) else None
        if not isinstance(source, str):
            return f"other: {meta.get('data_fingerprint')}"
        path = Path(source)  # the parent too: data files are often all called train.csv
        return f"other: {path.parent.name}/{path.name}" if path.parent.name else f"other: {path.name}"

    def action_use(self) -> None:
        """Recommend with the highlighted saved recommender on screens 5 and 6."""
        table = self.query_one("#recs-saved", DataTable)
        if not self._saved or not 0 <= table.cursor_row < len(self._saved):
            self.notify("no saved recommender yet: t trains the ticked ones", severity="warning")
            return
        name, meta, error = self._saved[table.cursor_row]
        if meta is None:
            self.notify(f"{name} cannot be used: {error}", severity="error")
            return
        self.state.rec_model = name
        other = (
            "" if self._data_of(meta) == "these data" else " (trained on other data: screens 5-6 will ask)"
        )
        self.notify(f"recommendations now come from {name}{other}", timeout=4)
        self.refresh_saved(force=True)
        self.refresh_status()

    def action_reload(self) -> None:
        """Re-read the saved recommenders."""
        self.refresh_saved(force=True)

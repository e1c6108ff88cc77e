"""The recommender leaderboard kept beside the models it ranks: `leaderboard.json` in the recommenders'
folder (the app's MODELS/recs), with its data's fingerprint, so a later session on the same data shows it
again. Written atomically; a missing, damaged or other data's file reads as None."""

from __future__ import annotations

import json
from pathlib import Path

from flowtui.core import safe_files
from flowtui.core.recs.evaluation import Leaderboard

__all__ = ["BOARD_FILE", "load_leaderboard", "save_leaderboard"]

#: The leaderboard's file name inside the recommenders' folder.
BOARD_FILE = "leaderboard.json"


def save_leaderboard(board: Leaderboard, folder: str | Path) -> Path:
    """Write `board` to FOLDER/leaderboard.json atomically (the folder is created); returns the file.
    OSError or `safe_files.UnsafePathError` when it cannot be written."""
    path = Path(folder) / BOARD_FILE
    with safe_files.atomic_write(path, make_parents=True) as fh:
        fh.write(json.dumps(board.to_dict(), indent=1, default=float))
    return path


def load_leaderboard(folder: str | Path, fingerprint: str) -> Leaderboard | None:
    """The leaderboard kept in `folder` when it was computed on the data of `fingerprint`; None when none
    is kept, the file is damaged, or it belongs to other data."""
    try:
        doc = json.loads((Path(folder) / BOARD_FILE).read_text(encoding="utf-8"))
        setup, rows, skipped = doc["setup"], doc["leaderboard"], doc.get("skipped", {})
        kept_on = setup["data"]["fingerprint"]
        ok = all(isinstance(r, dict) and isinstance(r.get("model"), str) for r in rows)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # none kept, or damaged: nothing to show
    if not ok or not isinstance(skipped, dict) or kept_on != fingerprint:
        return None
    return Leaderboard(setup, list(rows), skipped)

"""Screen 4's row labels: a cancelled model reads "(cancelled)", whether or not its holdout had run."""

from __future__ import annotations

from flowtui.tui.screens.results import COLUMNS, BoardRow


def _row(**kw: object) -> BoardRow:
    return BoardRow("rbm", "run", dict.fromkeys(COLUMNS), **kw)  # type: ignore[arg-type]


def test_cancelled_before_its_holdout_is_not_a_failure() -> None:
    # the tmux trial saw "rbm ✗" at 80x24 for a model cancelled before its holdout scored
    assert _row(error="cancelled", cancelled=True).label == "rbm (cancelled)"
    assert _row(cancelled=True).label == "rbm (cancelled)"


def test_other_labels_are_unchanged() -> None:
    assert _row(error="boom").label == "rbm ✗"
    assert _row().label == "rbm"
    assert BoardRow("constant", "run", dict.fromkeys(COLUMNS), baseline=True).label == "constant *"
    assert BoardRow("lightgbm", "saved", dict.fromkeys(COLUMNS)).label == "lightgbm (saved)"

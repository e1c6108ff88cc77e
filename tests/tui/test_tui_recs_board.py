"""Screen 7's leaderboard cells and progress words (issue 20 item 19)."""

from __future__ import annotations

import pytest

from flowtui.tui.screens.recs.board import cell, num
from flowtui.tui.screens.recs.screen import _step_name


@pytest.mark.parametrize(
    ("x", "text"), [(-0.0001, ".000"), (-0.0, ".000"), (0.1322, ".132"), (-0.25, "-.250")]
)
def test_a_number_that_rounds_to_zero_has_no_sign(x: float, text: str) -> None:
    assert num(x, 3) == text


def test_a_spread_that_rounds_to_zero_says_how_small_it_is() -> None:
    assert cell({"a": 0.5, "a_std": 0.0001}, "a", 3, True) == ".500±<.001"
    assert cell({"a": 0.5, "a_std": 0.012}, "a", 3, True) == ".500±.012"
    assert cell({"a": -0.00001, "a_std": 0.0}, "a", 3, True) == ".000±<.001"
    assert cell({"a": None}, "a", 3, True) == "-"


def test_a_closed_form_has_fit_steps_not_epochs() -> None:
    assert _step_name("ease") == "fit step"
    assert _step_name("rbm") == _step_name("als") == "epoch"
    assert _step_name("no such model") == "epoch"

"""Per-user lookups behind the app's user browser."""

import math

import pandas as pd

from flowtui.core.flow import users


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2],
            "ts_listen": [10, 30, 20, 5],
            "listen_type": [1, 0, 1, 0],
            "is_listened": [1, 0, 0, 1],
            "user_age": [25, 26, 25, 30],
            "user_gender": [0, 0, 0, 1],
            "media_id": [7, 8, 9, 7],
        }
    )


def test_user_table_most_active_first() -> None:
    table = users.user_table(_frame())
    assert table["user_id"].tolist() == [1, 2]
    assert table["listens"].tolist() == [3, 1]
    assert math.isclose(table["listen_rate"].iloc[0], 1 / 3)


def test_profile_uses_latest_row_and_flow_rate() -> None:
    p = users.user_profile(_frame(), 1)
    assert p["age"] == 26 and p["gender"] == 0
    assert p["listens"] == 3 and p["flow_listens"] == 2
    assert math.isclose(p["flow_listen_rate"], 0.5)


def test_unknown_user_profile_is_empty_not_an_error() -> None:
    p = users.user_profile(_frame(), 99)
    assert p["listens"] == 0 and math.isnan(p["listen_rate"])


def test_history_newest_first() -> None:
    assert users.user_history(_frame(), 1, n=2)["ts_listen"].tolist() == [30, 20]

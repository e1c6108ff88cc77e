"""Per-user views of a loaded train frame: the user list, a profile, recent history, the test-row prediction.

Read-only lookups (vectorised pandas) that the app's user browser shows; kept in core so any front end can.
Here in flow, not in data, since the test-row prediction reads a saved Flow model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def user_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per user: user_id, listens (rows), listen_rate; most active first."""
    g = frame.groupby("user_id", sort=False)["is_listened"]
    out = pd.DataFrame({"listens": g.size(), "listen_rate": g.mean()}).reset_index()
    return out.sort_values(["listens", "user_id"], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )


def user_profile(frame: pd.DataFrame, user_id: int) -> dict[str, Any]:
    """Age, gender, number of listens, listen rate overall and on Flow of one user."""
    rows = frame[frame["user_id"] == user_id]
    if rows.empty:
        return {
            "listens": 0,
            "flow_listens": 0,
            "listen_rate": float("nan"),
            "flow_listen_rate": float("nan"),
        }
    flow = rows[rows["listen_type"] == 1]
    last = rows.iloc[rows["ts_listen"].to_numpy().argmax()]
    return {
        "age": int(last["user_age"]),
        "gender": int(last["user_gender"]),
        "listens": len(rows),
        "flow_listens": len(flow),
        "listen_rate": float(rows["is_listened"].mean()),
        "flow_listen_rate": float(flow["is_listened"].mean()) if len(flow) else float("nan"),
    }


def user_history(frame: pd.DataFrame, user_id: int, n: int = 8) -> pd.DataFrame:
    """The user's `n` most recent rows, newest first."""
    rows = frame[frame["user_id"] == user_id]
    return rows.sort_values("ts_listen", ascending=False, kind="stable").head(n)


def test_probability(folder: Path, train: pd.DataFrame, test: pd.DataFrame, user_id: int) -> float | None:
    """The saved model's predicted listen probability for the user's test row (None when they have none)."""
    from flowtui.core.flow import evaluate, store  # loaded when first asked: the app starts lighter

    row = test[test["user_id"] == user_id]
    if row.empty:
        return None
    trained = store.load_model(folder)
    pred = evaluate.predict(trained, train, row)
    return float(pred["is_listened"].iloc[0])

"""summarize() and distributions() on tiny frames whose figures are known by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowtui.core.data.io import from_frame, load_dataset
from flowtui.core.data.summary import SUMMARY_KEYS, distributions, summarize
from tests.data.test_validation import make_test_frame, train_frame


def test_summarize_train_figures() -> None:
    df = train_frame(6)  # users 0/1, listen_type 0,1,0,1,0,1, is_listened 1,0,1,0,1,0
    df.loc[0, "media_id"] = df.loc[1, "media_id"]
    df.loc[5, "is_listened"] = 1
    s = summarize(from_frame(df))
    assert tuple(s) == SUMMARY_KEYS
    assert s["rows"] == 6 and s["users"] == 2 and s["items"] == 5 and s["artists"] == 6 and s["genres"] == 3
    assert s["listen_rate"] == pytest.approx(4 / 6)
    assert s["flow_share"] == pytest.approx(0.5)
    assert s["flow_listen_rate"] == pytest.approx(1 / 3)
    assert s["ts_min"] == 1_478_000_000 and s["ts_max"] == 1_478_000_500
    assert s["warnings"] == {}
    json.dumps(s)  # plain Python numbers only


def test_summarize_test_file_has_no_rates() -> None:
    s = summarize(from_frame(make_test_frame(3)))
    assert (
        s["listen_rate"] is None and s["flow_listen_rate"] is None and s["flow_share"] == pytest.approx(1 / 3)
    )


def test_summarize_counts_warnings(tmp_path: Path) -> None:
    df = train_frame()
    df.loc[[1, 2], "media_duration"] = 0
    p = tmp_path / "t.csv"
    df.to_csv(p, index=False)
    assert summarize(load_dataset(p, use_cache=False))["warnings"] == {"zero_duration": 2}


def test_distributions() -> None:
    df = train_frame(6)
    df["ts_listen"] = [0 * 3600, 0 * 3600 + 5, 5 * 3600, 5 * 3600, 5 * 3600, 23 * 3600]
    df["ts_listen"] += 1_478_044_800  # 2016-11-02 00:00 UTC
    df["is_listened"] = [1, 0, 1, 1, 0, 1]
    df["platform_family"] = [0, 0, 0, 1, 1, 2]
    df["context_type"] = [3, 3, 3, 7, 7, 9]
    df["user_id"] = [0, 0, 0, 0, 1, 2]
    d = distributions(from_frame(df), top_contexts=2)
    assert len(d["rows_by_hour"]) == 24 and d["rows_by_hour"][5] == 3 and d["rows_by_hour"][1] == 0
    assert d["listen_rate_by_hour"][0] == pytest.approx(0.5) and d["listen_rate_by_hour"][5] == pytest.approx(
        2 / 3
    )
    assert d["listen_rate_by_platform_family"].to_dict() == pytest.approx({0: 2 / 3, 1: 0.5, 2: 1.0})
    assert list(d["rows_by_context"].index) == [3, 7] and d["listen_rate_by_context"][7] == pytest.approx(0.5)
    assert d["rows_per_user"].to_dict() == {"1": 2, "2-3": 0, "4-7": 1}

"""The artist and genre tables the app's pickers show (core/data/catalog.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from flowtui.core.data.catalog import artist_table, genre_table


@pytest.fixture
def frame() -> pd.DataFrame:
    # artist 7: 3 rows (genres 1, 1, 2), users 0 and 1; artist 5: 2 rows (genre 2), user 2; artist 9: 1 row
    return pd.DataFrame(
        {
            "artist_id": [7, 7, 7, 5, 5, 9],
            "genre_id": [1, 1, 2, 2, 2, 3],
            "user_id": [0, 1, 1, 2, 2, 0],
            "is_listened": [1, 0, 1, 1, 1, 0],
        }
    )


def test_artist_table_counts_and_top_genre(frame: pd.DataFrame) -> None:
    table = artist_table(frame)
    assert list(table.columns) == ["artist_id", "rows", "users", "listen_rate", "top_genre"]
    assert table["artist_id"].tolist() == [7, 5, 9]  # most played first
    assert table["rows"].tolist() == [3, 2, 1]
    assert table["users"].tolist() == [2, 1, 1]
    assert table["top_genre"].tolist() == [1, 2, 3]
    assert table["listen_rate"].round(3).tolist() == [0.667, 1.0, 0.0]


def test_genre_table_counts_and_top_artist(frame: pd.DataFrame) -> None:
    table = genre_table(frame)
    assert list(table.columns) == ["genre_id", "rows", "users", "artists", "listen_rate", "top_artist"]
    by_genre = table.set_index("genre_id")
    assert table["genre_id"].tolist() == [2, 1, 3]  # 3 rows, then 2 and 1
    assert by_genre.loc[2, "artists"] == 2 and by_genre.loc[2, "top_artist"] == 5
    assert by_genre.loc[1, "users"] == 2 and by_genre.loc[1, "top_artist"] == 7


def test_ties_and_equal_sizes_are_ordered_by_id() -> None:
    tied = pd.DataFrame({"artist_id": [4, 4, 3, 3], "genre_id": [9, 8, 1, 1], "user_id": [0, 0, 1, 1]})
    table = artist_table(tied)
    assert table["artist_id"].tolist() == [3, 4]  # equal row counts: smaller id first
    assert table.set_index("artist_id").loc[4, "top_genre"] == 8  # a tie goes to the smaller genre
    assert "listen_rate" not in table.columns  # a test frame has no label


def test_empty_frame_and_missing_columns() -> None:
    empty = pd.DataFrame({c: pd.Series([], dtype="int64") for c in ("artist_id", "genre_id", "user_id")})
    assert artist_table(empty).empty and genre_table(empty).empty
    with pytest.raises(ValueError, match="artist_id"):
        artist_table(pd.DataFrame({"genre_id": [1], "user_id": [0]}))


def test_on_the_bundled_sample() -> None:
    from flowtui.core import paths
    from flowtui.core.data.io import load_dataset

    if not paths.sample_train().is_file():
        pytest.skip("no bundled sample")
    frame = load_dataset(paths.sample_train(), kind="train").frame
    artists = artist_table(frame)
    assert artists["rows"].sum() == len(frame) and artists["artist_id"].is_unique
    genres = genre_table(frame)
    assert genres["rows"].sum() == len(frame)
    assert artists["rows"].is_monotonic_decreasing and genres["rows"].is_monotonic_decreasing

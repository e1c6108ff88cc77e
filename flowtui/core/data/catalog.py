"""What a loaded train frame holds, artist by artist and genre by genre: the lists a person picks from.

DSG17 has ids only (no artist or genre names), so a picker shows each id with its size and its main
genre or artist; these tables hold those figures. Vectorised pandas (group-bys), no front-end import.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["artist_table", "genre_table"]

LABEL = "is_listened"


def _check(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the data lacks the column(s) {', '.join(missing)}")


def _most_frequent(frame: pd.DataFrame, key: str, value: str) -> pd.Series:
    """Per `key`, its most frequent `value` (ties go to the smallest value)."""
    pairs = frame.groupby([key, value], sort=True).size().rename("n").reset_index()
    pairs = pairs.sort_values([key, "n", value], ascending=[True, False, True], kind="stable")
    first = pairs.drop_duplicates(key)
    return pd.Series(first[value].to_numpy(), index=pd.Index(first[key].to_numpy(), name=key), name=value)


def _table(frame: pd.DataFrame, key: str, count: str, top: str, top_name: str) -> pd.DataFrame:
    """Rows, users, distinct `count` values, listen rate and most frequent `top` per `key`."""
    groups = frame.groupby(key, sort=True)
    out = pd.DataFrame({"rows": groups.size(), "users": groups["user_id"].nunique()})
    if count:
        out[count.removesuffix("_id") + "s"] = groups[count].nunique()
    if LABEL in frame.columns:
        out["listen_rate"] = groups[LABEL].mean().astype("float64")
    out[top_name] = _most_frequent(frame, key, top)
    out.index.name = key
    out = out.reset_index()
    for column in ("rows", "users", top_name, key):
        out[column] = out[column].astype("int64")
    order = out.sort_values(["rows", key], ascending=[False, True], kind="stable")
    return order.reset_index(drop=True)


def artist_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per artist, most played first: artist_id, rows, users, listen_rate (on a train frame),
    top_genre (the genre of most of its rows)."""
    _check(frame, ("artist_id", "genre_id", "user_id"))
    return _table(frame, "artist_id", "", "genre_id", "top_genre")


def genre_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per genre, most played first: genre_id, rows, users, artists, listen_rate (on a train
    frame), top_artist (the artist of most of its rows)."""
    _check(frame, ("artist_id", "genre_id", "user_id"))
    return _table(frame, "genre_id", "artist_id", "artist_id", "top_artist")

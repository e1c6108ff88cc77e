"""Screen 5's export: every user's top recommendations with the screen's genre and artist filters applied,
each track with its artist and genre."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from flowtui.core.recs.recommend import Recommender

#: Candidates ranked per user before the filters pick the top n (as the screen does for one user).
POOL_PER_ROW = 50
COLUMNS = ["user_id", "rank", "media_id", "artist_id", "genre_id", "score"]


def describe_filters(genres: list[int], artists: list[int]) -> str:
    """ "genres 3, 7 · artists 12" (empty without filters)."""
    parts = [
        f"{what} {', '.join(map(str, ids))}"
        for what, ids in (("genres", genres), ("artists", artists))
        if ids
    ]
    return " · ".join(parts)


def export_table(rec: Recommender, n: int, genres: list[int], artists: list[int]) -> pd.DataFrame:
    """DataFrame[user_id, rank, media_id, artist_id, genre_id, score]: each user's top `n` unheard tracks
    among those of `genres` and `artists` (internal ids; empty: no filter). With a filter, the top
    `n * POOL_PER_ROW` are ranked first: a user with fewer matching tracks among them gets fewer rows.
    Call it in a worker."""
    import pandas as pd

    filtered = bool(genres or artists)
    pool = min(len(rec.item_ids), n * POOL_PER_ROW) if filtered else n
    table = rec.all_users(pool)
    meta = pd.DataFrame(
        {
            "media_id": rec.shown("item", rec.item_ids),
            "artist_id": rec.shown("artist", rec.item_artist),
            "genre_id": rec.shown("genre", rec.item_genre),
            "_artist": rec.item_artist,
            "_genre": rec.item_genre,
        }
    )
    table = table.merge(meta, on="media_id", how="left", sort=False)
    if genres:
        table = table[table["_genre"].isin(genres)]
    if artists:
        table = table[table["_artist"].isin(artists)]
    table = table.sort_values(["user_id", "rank"], kind="stable")
    table["rank"] = table.groupby("user_id", sort=False).cumcount() + 1
    return table[table["rank"] <= n][COLUMNS].reset_index(drop=True)

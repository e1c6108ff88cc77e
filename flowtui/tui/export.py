"""Screen 5's export: every user's top recommendations with the screen's genre and artist filters applied,
each track with its artist and genre."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from flowtui.core.recs.recommend import Recommender

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
    among those of `genres` and `artists` (internal ids; empty: no filter), filtered before ranking, as the
    screen does for one user. Call it in a worker."""
    import pandas as pd

    table = rec.all_users(n, genres=genres or None, artists=artists or None)
    meta = pd.DataFrame(
        {
            "media_id": rec.shown("item", rec.item_ids),
            "artist_id": rec.shown("artist", rec.item_artist),
            "genre_id": rec.shown("genre", rec.item_genre),
        }
    )
    table = table.merge(meta, on="media_id", how="left", sort=False)
    return table[COLUMNS].reset_index(drop=True)

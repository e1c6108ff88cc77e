"""Recommendation lists over ANY registered recommender: filters before ranking, cold start, reasons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowtui.core import registry
from flowtui.core.errors import DataError
from flowtui.core.recs.interactions import recommender_matrix
from flowtui.core.recs.recommend import REC_COLUMNS, Recommender, as_recommender
from flowtui.core.recs.store import RecommenderFileError, save_recommender
from flowtui.core.workflows.recs import open_model
from tests.recs.conftest import block_frame, build

NAMES = registry.recommender_names()


@pytest.fixture(scope="module", params=NAMES)
def rec(request: pytest.FixtureRequest, blocks: pd.DataFrame) -> Recommender:
    return Recommender(build(request.param).fit(recommender_matrix(blocks)), blocks)


def heard(frame: pd.DataFrame, user: int) -> set[int]:
    return set(frame.loc[frame["user_id"] == user, "media_id"].tolist())


def test_for_user_lists_unheard_tracks_with_reasons(rec: Recommender, blocks: pd.DataFrame) -> None:
    for user in (0, 1, 2):
        top = rec.for_user(user, 6)
        assert list(top.columns) == REC_COLUMNS and len(top) == 6
        assert not set(top["media_id"]) & heard(blocks, user)
        assert top["score"].is_monotonic_decreasing
        assert top["reason"].str.len().min() > 0
        allowed = rec.for_user(user, 4, genres=[3], artists=[520, 521, 522, 523])
        assert set(allowed["genre_id"]) <= {3} and set(allowed["artist_id"]) <= {520, 521, 522, 523}
    with pytest.raises(ValueError, match="unknown user"):
        rec.for_user(99_999)


def test_cold_start_shows_the_chosen_artists_tracks_first(rec: Recommender) -> None:
    artist = 502  # media 1010..1014, block 0 (genre 1)
    top = rec.for_new_user(liked_artists=[artist], n=8)
    assert len(top) == 8
    first = top.iloc[:5]
    assert (first["artist_id"] == artist).all() and first["score"].is_monotonic_decreasing
    assert (first["reason"] == f"by artist {artist} (you chose it)").all()
    rest = top.iloc[5:]
    assert (rest["artist_id"] != artist).all()
    plain = {f"listeners of artist {artist} also play it", rec.model.plain_reason}
    for reason in rest["reason"]:
        assert reason in plain or reason == f"ranked high by {rec.model.name} for your choices"
    if rec.model.name not in ("popularity", "item_mean"):  # personal models: the artist's own block
        assert (rest["genre_id"] == 1).mean() >= 2 / 3
    by_genre = rec.for_new_user(liked_genres=[2], n=5)
    assert (by_genre["genre_id"] == 2).all() and (by_genre["reason"] == "in genre 2 (you chose it)").all()
    filtered = rec.for_new_user(liked_artists=[artist], n=5, genres=[3])  # filter before ranking
    assert len(filtered) == 5 and (filtered["genre_id"] == 3).all()
    with pytest.raises(ValueError, match="artist 999999"):
        rec.for_new_user(liked_artists=[999_999])


def long_tail_frame(n_media: int = 1400, n_users: int = 300, seed: int = 0) -> pd.DataFrame:
    """Media m is played by 1 + (n_media - m) / 30 users: the last artist's tracks are the least played."""
    rng = np.random.default_rng(seed)
    rows = [
        (u, m) for m in range(n_media) for u in rng.choice(n_users, 1 + (n_media - m) // 30, replace=False)
    ]
    u, m = np.array(rows).T
    return block_frame(n_users=2).iloc[:0].reindex(range(len(u))).assign(
        user_id=u, media_id=m + 1000, artist_id=m // 7 + 500, genre_id=1 + m % 3, album_id=m // 7,
        ts_listen=1_480_000_000 + np.arange(len(u)), is_listened=1, user_age=20, user_gender=0,
        listen_type=1, context_type=0, release_date=20150101, platform_name=0, platform_family=0,
        media_duration=220,
    )  # fmt: skip


def test_artist_filter_finds_tracks_outside_the_top_500() -> None:
    frame = long_tail_frame()
    model = build("popularity").fit(recommender_matrix(frame))
    rec = Recommender(model, frame)
    last = int(frame["artist_id"].max())  # its 7 tracks are the least played of 1,400
    tracks = set(frame.loc[frame["artist_id"] == last, "media_id"])
    user = next(u for u in range(300) if not heard(frame, u) & tracks)
    assert last not in set(rec.for_user(user, 500)["artist_id"])  # a filter applied after a top 500 misses it
    found = rec.for_user(user, 3, artists=[last])
    assert len(found) == 3 and (found["artist_id"] == last).all()
    assert found["score"].is_monotonic_decreasing


def test_open_model_reads_recommender_and_flow_folders(blocks: pd.DataFrame, tmp_path: Path) -> None:
    model = build("ease").fit(recommender_matrix(blocks))
    folder = save_recommender(model, tmp_path / "ease")
    again = open_model(folder)
    assert again.name == "ease"
    np.testing.assert_array_equal(
        Recommender(again, blocks).for_user(0, 5)["media_id"],
        Recommender(model, blocks).for_user(0, 5)["media_id"],
    )
    flow = registry.get_spec("rbm").build({"n_iter": 2, "exposure_n_iter": 2, "device": "cpu"}, "quick")
    flow.fit(None, blocks["is_listened"].to_numpy(), blocks)  # type: ignore[arg-type]
    adapted = as_recommender(flow)
    assert adapted.name == "rbm" and np.array_equal(adapted.item_ids_, flow.item_ids_)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="recommendations need"):
        as_recommender(object())
    with pytest.raises(DataError, match="not found"):
        open_model(tmp_path / "missing")
    (folder / "state.npz").write_bytes(b"damaged")
    with pytest.raises(RecommenderFileError, match="damaged"):
        open_model(folder)

"""Recommendation lists for people: top-N tracks, artists, genres, playlists and cold start, for ANY
recommender (the `RecommenderBase` interface), with reasons.

A `Recommender` joins a fitted recommender with a train frame: the users' histories (the rows it scores)
and the media -> artist, genre metadata (the filters and the reasons). Filters (genres, artists, a cap per
artist) are applied BEFORE ranking: every matching track is a candidate. Reasons name only what the user
did or chose, or say plainly why ("listeners of media 12 you listened to also play it", "by artist 8485
(you chose it)", "ranked high by ease for you").

`as_recommender` turns a fitted Flow model holding an rbm, dbn or hybrid into a recommender (folders are
opened by `workflow.open_model`); `check_model_data(model, frame)` (data_check.py) tells whether it meets
the data it was trained on. With `ids` (the `IdMap` kept beside an imported log), every id a list shows
or writes (user, media, artist, genre, and those named in reasons) is the log's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from flowtui.core.errors import DataError
from flowtui.core.recs.data_check import check_model_data
from flowtui.core.recs.interactions import _lookup, recommender_matrix
from flowtui.core.recs.recommender import RecommenderBase, top_n

if TYPE_CHECKING:
    from flowtui.core.data.idmap import IdMap

REC_COLUMNS = ["media_id", "score", "artist_id", "genre_id", "reason"]
ALL_COLUMNS = ["user_id", "rank", "media_id", "score"]
#: A liked artist (genre) is folded in as its most played tracks, this many.
TRACKS_PER_ARTIST = 5
TRACKS_PER_GENRE = 10
#: A cold-start segment is users within this many years of the stated age (and of the stated gender).
AGE_WINDOW = 2
MIN_SEGMENT_ROWS = 50


def as_recommender(model: object) -> RecommenderBase:
    """`model` as a recommender: itself, or the rbm/dbn inside a Flow model (a TrainedModel, a hybrid)."""
    from flowtui.core.recs.rbm_networks import CollaborativeModel
    from flowtui.core.recs.rbm_recommender import network_recommender

    for _ in range(4):
        if isinstance(model, RecommenderBase):
            return model
        if isinstance(model, CollaborativeModel):
            return network_recommender(model)
        inner = getattr(model, "rbm_", None) or getattr(model, "model", None)
        if inner is None:
            break
        model = inner
    raise ValueError(
        "recommendations need a recommender (train one with `flowtui train-recs`) or an rbm, dbn or "
        "hybrid model (`flowtui train --model rbm`)"
    )


class Recommender:
    """Top-N lists of a fitted recommender (or a Flow model holding an rbm/dbn) over a train frame."""

    def __init__(
        self,
        model: object,
        data: object,
        *,
        batch_size: int = 1024,
        precompute: int = 0,
        ids: IdMap | None = None,
    ) -> None:
        """`model`: a fitted recommender, or a TrainedModel / rbm / dbn / hybrid Flow model; `data`: a train
        frame (or a Dataset with `.frame`). `precompute` > 0 ranks every user's top `precompute` unheard
        items at once (batched), so a plain `for_user(u, n <= precompute)` is a lookup; filters score live.
        `ids`: the imported log's id map: the lists then show the log's own ids (strings) in every id
        column and reason; the arguments (user, artist, genre ids) stay the data's internal ids."""
        self.model = as_recommender(model)
        self.ids = ids
        self._labels: dict[tuple[str, int], str] = {}
        #: An imported log without a genre column gives every track genre 0: no reason can name it.
        self._genre_known = ids is None or ids.columns.get("genre") is not None
        frame = cast(pd.DataFrame, getattr(data, "frame", data))
        self.frame = frame
        self.batch_size = batch_size
        self.item_ids: np.ndarray = self.model.item_ids_
        self.matrix = recommender_matrix(frame, implicit=self.model.implicit_, items=self.item_ids)
        self._item_metadata(frame)
        self._by_item = self.matrix.played(1.0).T.tocsr()  # items x users: co-plays for the reasons
        self._cache: tuple[np.ndarray, np.ndarray] | None = None
        if precompute > 0:
            self._cache = self.model.recommend(self.matrix, None, precompute, batch_size=batch_size)

    def _item_metadata(self, frame: pd.DataFrame) -> None:
        """Artist, genre and number of plays of each vocabulary item (-1 when the data has no row of it)."""
        n_items = len(self.item_ids)
        last = frame.drop_duplicates("media_id", keep="last")
        pos = _lookup(self.item_ids, last["media_id"].to_numpy(np.int64))
        ok = pos >= 0
        self.item_artist = np.full(n_items, -1, np.int64)
        self.item_genre = np.full(n_items, -1, np.int64)
        for arr, col in ((self.item_artist, "artist_id"), (self.item_genre, "genre_id")):
            if col in last.columns:
                arr[pos[ok]] = last[col].to_numpy(np.int64)[ok]
        code = _lookup(self.item_ids, frame["media_id"].to_numpy(np.int64))
        self.item_plays = np.bincount(code[code >= 0], minlength=n_items).astype(np.float64)

    # -- helpers ---------------------------------------------------------------------------------
    def _row(self, user_id: int) -> int:
        r = int(self.matrix.user_index(int(user_id))[0])
        if r < 0:
            raise ValueError(
                f"unknown user {user_id}: not in the data (use the new-user options for cold start)"
            )
        return r

    def _user_entries(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.matrix.labels.indptr[row], self.matrix.labels.indptr[row + 1]
        return self.matrix.labels.indices[lo:hi], self.matrix.labels.data[lo:hi]

    def _allowed(self, genres: Iterable[int] | None, artists: Iterable[int] | None) -> np.ndarray:
        """The items passing the genre and artist filters (None = no filter)."""
        allowed = np.ones(len(self.item_ids), bool)
        if genres is not None:
            allowed &= np.isin(self.item_genre, np.asarray(list(genres), np.int64))
        if artists is not None:
            allowed &= np.isin(self.item_artist, np.asarray(list(artists), np.int64))
        return allowed

    def _select(
        self, scores: np.ndarray, allowed: np.ndarray, n: int, max_per_artist: int | None
    ) -> np.ndarray:
        """The top `n` allowed items by score (ties: lower column), at most `max_per_artist` per artist."""
        n_allowed = int(allowed.sum())
        if n <= 0 or n_allowed == 0:
            return np.zeros(0, np.int64)
        pool = min(n_allowed, n if max_per_artist is None else max(n * 20, 200))
        while True:
            top = top_n(scores[None, :], pool, allowed=allowed)[0]
            top = top[top >= 0]
            if max_per_artist is None:
                return top
            capped = _cap_per_group(top, self.item_artist[top], max_per_artist)
            if len(capped) >= n or pool >= n_allowed:
                return capped[:n]
            pool = n_allowed  # the cap ate the pool: rank every allowed item

    def _frame(self, items: np.ndarray, scores: np.ndarray, reasons: Sequence[str]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "media_id": self.shown("item", self.item_ids[items].astype(np.int64)),
                "score": np.asarray(scores, np.float64),
                "artist_id": self.shown("artist", self.item_artist[items]),
                "genre_id": self.shown("genre", self.item_genre[items]),
                "reason": list(reasons),
            },
        )  # the dict's order is REC_COLUMNS (a columns= argument would cost a reindex)

    def label(self, kind: str, internal: int) -> str:
        """How id `internal` of `kind` ("user", "item", "artist", "genre") is shown: the log's own id with
        an id map, else the number (an id the map does not hold, e.g. -1 for unknown, stays a number)."""
        key = (kind, int(internal))
        text = self._labels.get(key)
        if text is None:
            text = str(int(internal))
            if self.ids is not None:
                to = {
                    "user": self.ids.user_ids,
                    "item": self.ids.item_ids,
                    "artist": self.ids.artist_ids,
                    "genre": self.ids.genre_ids,
                }[kind]
                with contextlib.suppress(DataError):
                    text = str(to(int(internal)))
            self._labels[key] = text
        return text

    def shown(self, kind: str, internal: np.ndarray) -> Any:
        """`internal` ids as shown (see `label`): the array itself without an id map, else an object array
        of the log's ids."""
        arr = np.asarray(internal, np.int64)
        if self.ids is None:
            return arr
        uniq, inv = np.unique(arr, return_inverse=True)
        names = np.array([self.label(kind, v) for v in uniq.tolist()], dtype=object)
        return names[inv.reshape(-1)] if len(arr) else np.zeros(0, object)

    def _co_plays(self, items: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """(len(items), len(seeds)): users who played both the item and the seed item."""
        if len(items) == 0 or len(seeds) == 0:
            return np.zeros((len(items), len(seeds)))
        return np.asarray((self._by_item[items] @ self._by_item[seeds].T).toarray(), np.float64)

    # -- tracks ----------------------------------------------------------------------------------
    def for_user(
        self,
        user_id: int,
        n: int = 10,
        *,
        genres: Iterable[int] | None = None,
        artists: Iterable[int] | None = None,
        exclude_skipped: bool = True,
        exclude_heard: bool = True,
        max_per_artist: int | None = None,
    ) -> pd.DataFrame:
        """The user's top-`n` items: DataFrame[media_id, score, artist_id, genre_id, reason], best first.

        Heard items are left out (`exclude_heard`); with `exclude_heard=False`, skipped ones still are unless
        `exclude_skipped=False`. `genres` / `artists` keep only items of those genres / artists (before
        ranking: every matching item is a candidate); `max_per_artist` caps each artist."""
        row = self._row(user_id)
        cols, labels = self._user_entries(row)
        heard = cols[labels >= 0.5]
        filtered = genres is not None or artists is not None or max_per_artist is not None
        if self._cache is not None and n <= self._cache[0].shape[1] and not filtered and exclude_heard:
            top, val = self._cache[0][row], self._cache[1][row]
            keep = top >= 0
            top, val = top[keep][:n], val[keep][:n]
            return self._frame(top, val, self._reasons(top, heard))
        scores = self.model.score(self.matrix, [row])[0]
        allowed = self._allowed(genres, artists)
        if exclude_heard:
            allowed[cols] = False
        elif exclude_skipped:
            allowed[cols[labels < 0.5]] = False
        top = self._select(scores, allowed, n, max_per_artist)
        return self._frame(top, scores[top], self._reasons(top, heard))

    def playlist(self, user_id: int, genre: int, n: int = 20, max_per_artist: int | None = 2) -> pd.DataFrame:
        """A playlist of one genre for the user: known favourites and new tracks, no skipped ones."""
        return self.for_user(
            user_id,
            n,
            genres=[genre],
            exclude_heard=False,
            exclude_skipped=True,
            max_per_artist=max_per_artist,
        )

    def _reasons(self, items: np.ndarray, heard: np.ndarray) -> list[str]:
        """Why each item: an artist or genre the user listens to, else the heard track whose listeners
        play it most, else the model's score."""
        art, gen = self.item_artist[items], self.item_genre[items]
        by_artist = np.isin(art, self.item_artist[heard]) & (art >= 0)
        by_genre = ~by_artist & np.isin(gen, self.item_genre[heard]) & (gen >= 0) & self._genre_known
        rest = np.flatnonzero(~by_artist & ~by_genre)
        near = np.full(len(items), -1, np.int64)
        if len(rest) and len(heard):
            co = self._co_plays(items[rest], heard)
            best = np.argmax(co, axis=1)
            near[rest] = np.where(co[np.arange(len(rest)), best] > 0, self.item_ids[heard[best]], -1)
        fallback = self.model.plain_reason or f"ranked high by {self.model.name} for you"
        return [
            f"artist {self.label('artist', a)} you listen to"
            if ba
            else f"genre {self.label('genre', g)} you listen to"
            if bg
            else f"listeners of media {self.label('item', c)} you listened to also play it"
            if c >= 0
            else fallback
            for a, g, ba, bg, c in zip(
                art.tolist(), gen.tolist(), by_artist.tolist(), by_genre.tolist(), near.tolist(), strict=True
            )
        ]

    # -- artists and genres ----------------------------------------------------------------------
    def _grouped(self, user_id: int, key: np.ndarray, n: int, exclude_heard: bool, name: str) -> pd.DataFrame:
        row = self._row(user_id)
        scores = self.model.score(self.matrix, [row])[0].astype(np.float64)
        ok = key >= 0
        groups, code = np.unique(key[ok], return_inverse=True)
        mean = np.bincount(code, weights=scores[ok]) / np.bincount(code)
        cols, labels = self._user_entries(row)
        heard = np.isin(groups, key[cols[labels >= 0.5]])
        out = pd.DataFrame({name: groups, "score": mean, "n_tracks": np.bincount(code), "heard": heard})
        if exclude_heard:
            out = out[~out["heard"]]
        return out.sort_values(["score", name], ascending=[False, True]).head(n).reset_index(drop=True)

    def artists_for_user(self, user_id: int, n: int = 10, *, exclude_heard: bool = True) -> pd.DataFrame:
        """Artists ranked by the mean score of their tracks: DataFrame[artist_id, score, n_tracks, heard];
        artists already listened to are left out by default."""
        return self._grouped(user_id, self.item_artist, n, exclude_heard, "artist_id")

    def genres_for_user(self, user_id: int, n: int = 10, *, exclude_heard: bool = False) -> pd.DataFrame:
        """Genres ranked the same way: DataFrame[genre_id, score, n_tracks, heard]."""
        return self._grouped(user_id, self.item_genre, n, exclude_heard, "genre_id")

    # -- cold start ------------------------------------------------------------------------------
    def for_new_user(
        self,
        liked_artists: Iterable[int] = (),
        liked_genres: Iterable[int] = (),
        age: int | None = None,
        gender: int | None = None,
        n: int = 10,
        *,
        max_per_artist: int | None = None,
        genres: Iterable[int] | None = None,
        artists: Iterable[int] | None = None,
    ) -> pd.DataFrame:
        """Recommendations for someone with no history, at once.

        Stated tastes are folded into the model (the most played tracks of each liked artist and genre as
        listened, `RecommenderBase.fold_in`). The liked artists' own tracks come first, then tracks of the
        liked genres, then the rest, each group ranked by the folded-in score (ties: most played), so the
        `score` column is monotone within a group only. Without tastes: the most listened tracks of the
        age (+-2 years) and gender segment. `genres` / `artists` filter before ranking. Unknown artist or
        genre ids raise ValueError."""
        liked_a = np.unique(np.asarray(list(liked_artists), np.int64))
        liked_g = np.unique(np.asarray(list(liked_genres), np.int64))
        allowed = self._allowed(genres, artists)
        if len(liked_a) == 0 and len(liked_g) == 0:
            return self._segment_popular(age, gender, n, max_per_artist, allowed)
        seeds, choice = self._seeds(liked_a, liked_g)
        scores = self.model.fold_in(seeds)
        tier = np.full(len(self.item_ids), 2, np.int64)
        tier[np.isin(self.item_genre, liked_g)] = 1
        tier[np.isin(self.item_artist, liked_a)] = 0
        cand = np.flatnonzero(allowed)
        ranked = cand[np.lexsort((cand, -self.item_plays[cand], -scores[cand], tier[cand]))]
        if max_per_artist is not None:
            ranked = _cap_per_group(ranked, self.item_artist[ranked], max_per_artist)
        top = ranked[:n]
        return self._frame(top, scores[top], self._new_user_reasons(top, tier, seeds, choice))

    def _seeds(self, liked_a: np.ndarray, liked_g: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """(the folded-in item columns, the choice each came from, as a phrase): the most played tracks of
        each liked artist and genre; ValueError naming the ids with no track in the vocabulary."""
        seeds: list[int] = []
        choice: list[str] = []
        unknown: list[str] = []
        for key, ids, per, label in (
            (self.item_artist, liked_a, TRACKS_PER_ARTIST, "artist"),
            (self.item_genre, liked_g, TRACKS_PER_GENRE, "genre"),
        ):
            for i in ids.tolist():
                items = np.flatnonzero(key == i)
                name = f"{label} {self.label(label, i)}"
                if len(items) == 0:
                    unknown.append(name)
                    continue
                top = items[np.argsort(-self.item_plays[items], kind="stable")[:per]]
                seeds.extend(top.tolist())
                choice.extend([name] * len(top))
        if unknown:
            raise ValueError(f"no track of {', '.join(unknown)} in the model's vocabulary")
        return np.asarray(seeds, np.int64), choice

    def _new_user_reasons(
        self, items: np.ndarray, tier: np.ndarray, seeds: np.ndarray, choice: list[str]
    ) -> list[str]:
        """By the chosen artist, in the chosen genre, or the choice whose listeners play it most."""
        choices = sorted(set(choice))
        co = self._co_plays(items, seeds)
        member = np.array([[c == name for name in choices] for c in choice], np.float64).reshape(
            len(choice), len(choices)
        )
        by_choice = co @ member  # (n items, n choices): co-plays with each choice's seeds
        out = []
        for j, it in enumerate(items.tolist()):
            if tier[it] == 0:
                out.append(f"by artist {self.label('artist', self.item_artist[it])} (you chose it)")
            elif tier[it] == 1:
                out.append(f"in genre {self.label('genre', self.item_genre[it])} (you chose it)")
            elif len(choices) and by_choice[j].max() > 0:
                out.append(f"listeners of {choices[int(np.argmax(by_choice[j]))]} also play it")
            else:
                out.append(self.model.plain_reason or f"ranked high by {self.model.name} for your choices")
        return out

    def _segment_popular(
        self, age: int | None, gender: int | None, n: int, max_per_artist: int | None, allowed: np.ndarray
    ) -> pd.DataFrame:
        f = self.frame
        keep = np.ones(len(f), bool)
        parts = []
        if age is not None and "user_age" in f.columns:
            keep &= np.abs(f["user_age"].to_numpy(np.int64) - int(age)) <= AGE_WINDOW
            parts.append(f"aged {int(age) - AGE_WINDOW}-{int(age) + AGE_WINDOW}")
        if gender is not None and "user_gender" in f.columns:
            keep &= f["user_gender"].to_numpy(np.int64) == int(gender)
            parts.append(f"gender {int(gender)}")
        if keep.sum() < MIN_SEGMENT_ROWS:
            keep[:] = True
            parts = []
        code = _lookup(self.item_ids, f["media_id"].to_numpy(np.int64))
        listened = f["is_listened"].to_numpy() == 1 if "is_listened" in f.columns else np.ones(len(f), bool)
        sel = keep & (code >= 0) & listened
        counts = np.bincount(code[sel], minlength=len(self.item_ids)).astype(np.float64)
        top = self._select(counts, allowed & (counts > 0), n, max_per_artist)
        who = f"listeners {' '.join(parts)}" if parts else "all listeners"
        score = counts[top] / max(counts.sum(), 1.0)
        return self._frame(top, score, [f"popular with {who}"] * len(top))

    # -- everyone --------------------------------------------------------------------------------
    def all_users(
        self,
        n: int = 10,
        *,
        exclude_heard: bool = True,
        genres: Iterable[int] | None = None,
        artists: Iterable[int] | None = None,
    ) -> pd.DataFrame:
        """Top-`n` unheard items of every user in the data: DataFrame[user_id, rank, media_id, score].
        `genres` and `artists` (internal ids) filter before ranking, as for one user: every match competes."""
        filtered = bool(genres or artists)
        if self._cache is not None and exclude_heard and not filtered and n <= self._cache[0].shape[1]:
            idx, val = self._cache[0][:, :n], self._cache[1][:, :n]
        else:
            allowed = self._allowed(genres, artists) if filtered else None
            idx, val = self.model.recommend(
                self.matrix, None, n, exclude_seen=exclude_heard, allowed=allowed, batch_size=self.batch_size
            )
        keep = idx >= 0  # a user who heard nearly everything gets fewer rows
        k = idx.shape[1]
        return pd.DataFrame(
            {
                "user_id": self.shown("user", np.repeat(self.matrix.user_ids, k).reshape(-1, k)[keep]),
                "rank": np.tile(np.arange(1, k + 1), (len(idx), 1))[keep].astype(np.int64),
                "media_id": self.shown("item", self.item_ids[np.where(keep, idx, 0)][keep]),
                "score": val[keep].astype(np.float64),
            },
            columns=ALL_COLUMNS,
        )


def _cap_per_group(ranked: np.ndarray, group: np.ndarray, cap: int) -> np.ndarray:
    """Keep, in order, at most `cap` items of each group (-1 = unknown group, never capped)."""
    order = np.argsort(group, kind="stable")
    g = group[order]
    start = np.r_[True, g[1:] != g[:-1]] if len(g) else np.zeros(0, bool)
    first = np.maximum.accumulate(np.where(start, np.arange(len(g)), 0))
    rank = np.empty(len(g), np.int64)
    rank[order] = np.arange(len(g)) - first
    return ranked[(rank < cap) | (group < 0)]


__all__ = ["ALL_COLUMNS", "REC_COLUMNS", "Recommender", "as_recommender", "check_model_data"]

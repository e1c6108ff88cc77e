"""Recommendations from a fitted RBM/DBN model: top-N tracks, artists, genres, playlists and cold start.

A `Recommender` joins the model (its item vocabulary and weights) with a train frame (the users' histories
and the media -> artist, genre metadata). Everything per item is precomputed once, so one user's top-10 is
one up-pass, one down-pass and a partial sort.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd

from flowtui.core.recs.interactions import InteractionMatrix, _lookup
from flowtui.core.recs.numpy_net import NumpyNet

if TYPE_CHECKING:
    from flowtui.core.recs.rbm_models import CollaborativeModel

REC_COLUMNS = ["media_id", "score", "artist_id", "genre_id", "reason"]
ALL_COLUMNS = ["user_id", "rank", "media_id", "score"]
#: A liked artist (genre) is folded into the visible layer as its most played tracks, this many.
TRACKS_PER_ARTIST = 5
TRACKS_PER_GENRE = 10
#: A cold-start segment is users within this many years of the stated age (and of the stated gender).
AGE_WINDOW = 2
MIN_SEGMENT_ROWS = 50


class Recommender:
    """Top-N recommendations of a fitted `rbm`/`dbn` model (or a TrainedModel / hybrid holding one)."""

    def __init__(self, model: object, data: object, *, batch_size: int = 1024, precompute: int = 0) -> None:
        """`model`: a fitted rbm/dbn model, or a TrainedModel or hybrid holding one; `data`: a train frame
        (or a Dataset with `.frame`). `precompute` > 0 ranks every user's top `precompute` unheard items at
        once (batched matrix products), so a plain `for_user(u, n <= precompute)` is a lookup; filters still
        score live."""
        self.model = _collaborative(model)
        frame = cast(pd.DataFrame, getattr(data, "frame", data))
        self.net = self.model.net_
        self.batch_size = batch_size
        self.item_ids: np.ndarray = self.model.item_ids_
        self.matrix = InteractionMatrix.from_frame(frame, "media", items=self.item_ids, label="latest")
        self.frame = frame
        self._item_metadata(frame)
        self.expo = self.model.exposure_
        self.rank_by = "expected" if self.expo is not None else "probability"
        self._pref = NumpyNet(self.net)
        self._expo = NumpyNet(self.expo) if self.expo is not None else None
        self.played = self.matrix.as_played(self._expo.implicit if self._expo else 0.0)
        wn = self.net._visible_layer()[0].detach().cpu().numpy()
        self._Wn = (
            wn / np.maximum(np.linalg.norm(wn, axis=0, keepdims=True), 1e-9)
        ).T.copy()  # items x hidden
        self._cache: tuple[np.ndarray, np.ndarray] | None = None
        if precompute > 0:
            self._cache = self._top_all(precompute)

    def _item_metadata(self, frame: pd.DataFrame) -> None:
        """Artist, genre and number of plays of each vocabulary item (-1 when the data has no row of it)."""
        n_items = len(self.item_ids)
        last = frame.drop_duplicates("media_id", keep="last")
        pos = _lookup(self.item_ids, last["media_id"].to_numpy(np.int64))
        ok = pos >= 0
        self.item_artist = np.full(n_items, -1, np.int64)
        self.item_genre = np.full(n_items, -1, np.int64)
        self.item_artist[pos[ok]] = last["artist_id"].to_numpy(np.int64)[ok]
        self.item_genre[pos[ok]] = last["genre_id"].to_numpy(np.int64)[ok]
        code = _lookup(self.item_ids, frame["media_id"].to_numpy(np.int64))
        okc = code >= 0
        self.item_plays = np.bincount(code[okc], minlength=n_items).astype(np.float64)

    # -- scoring ---------------------------------------------------------------------------------
    def _log_scores(self, cols: np.ndarray, values: np.ndarray) -> np.ndarray:
        """log of the ranking score of every item for one user's observed entries (`cols`, labels `values`):
        log P(listened | played) + log P(played) when the model has an exposure network ("expected
        listens"), else log P(listened | played)."""
        out: np.ndarray = -np.logaddexp(0.0, -2.0 * self._pref.half_logits(cols, values))
        if self._expo is not None:
            out -= np.logaddexp(0.0, -2.0 * self._expo.half_logits(cols, np.ones(len(cols), np.float32)))
        return out

    def _scores_row(self, row: int) -> np.ndarray:
        """The ranking score (a probability) of every item for the user at matrix row `row`."""
        scores: np.ndarray = np.exp(self._log_scores(*self._user_entries(row)))
        return scores

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

    # -- tracks ----------------------------------------------------------------------------------
    def for_user(
        self,
        user_id: int,
        n: int = 10,
        *,
        genres: Iterable[int] | None = None,
        exclude_skipped: bool = True,
        exclude_heard: bool = True,
        max_per_artist: int | None = None,
    ) -> pd.DataFrame:
        """The user's top-`n` items: DataFrame[media_id, score, artist_id, genre_id, reason], best first.

        Heard items are left out (`exclude_heard`); with `exclude_heard=False`, skipped ones still are unless
        `exclude_skipped=False`. `genres` keeps only items of those genres; `max_per_artist` caps each artist."""
        row = self._row(user_id)
        cols, labels = self._user_entries(row)
        cached = self._cache is not None and n <= self._cache[0].shape[1]
        if cached and genres is None and max_per_artist is None and exclude_heard:
            assert self._cache is not None
            top, val = self._cache[0][row], self._cache[1][row]
            keep = top >= 0
            top, val = top[keep][:n], val[keep][:n]
            return self._frame(top, val, self._reasons(top, cols[labels >= 0.5]))
        z = self._log_scores(cols, labels)
        allowed = np.ones(len(z), bool)
        if exclude_heard:
            allowed[cols] = False
        elif exclude_skipped:
            allowed[cols[labels < 0.5]] = False
        if genres is not None:
            allowed &= np.isin(self.item_genre, np.asarray(list(genres), np.int64))
        top = self._select(z, allowed, n, max_per_artist)
        heard = cols[labels >= 0.5]
        return self._frame(top, np.exp(z[top]), self._reasons(top, heard))

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

    def _select(
        self, scores: np.ndarray, allowed: np.ndarray, n: int, max_per_artist: int | None
    ) -> np.ndarray:
        cand = np.flatnonzero(allowed)
        if len(cand) == 0 or n <= 0:
            return cand[:0]
        s = scores[cand]
        pool = len(cand) if max_per_artist is not None else min(n, len(cand))
        if max_per_artist is not None:
            pool = min(len(cand), max(n * 20, 200))
        part = np.argpartition(-s, pool - 1)[:pool] if pool < len(cand) else np.arange(len(cand))
        ranked = cand[part[np.argsort(-s[part], kind="stable")]]
        if max_per_artist is not None:
            ranked = _cap_per_group(ranked, self.item_artist[ranked], max_per_artist)
            if len(ranked) < n and pool < len(cand):  # the cap ate the pool: rank everything
                ranked = cand[np.argsort(-s, kind="stable")]
                ranked = _cap_per_group(ranked, self.item_artist[ranked], max_per_artist)
        return ranked[:n]

    def _reasons(self, items: np.ndarray, heard: np.ndarray) -> list[str]:
        """Why each item: an artist or genre the user listens to, else the heard track closest to it."""
        art, gen = self.item_artist[items], self.item_genre[items]
        by_artist = np.isin(art, self.item_artist[heard]) & (art >= 0)
        by_genre = ~by_artist & np.isin(gen, self.item_genre[heard]) & (gen >= 0)
        rest = np.flatnonzero(~by_artist & ~by_genre)
        closest = np.full(len(items), -1, np.int64)
        if len(rest) and len(heard):
            sim = self._Wn[items[rest]] @ self._Wn[heard].T
            closest[rest] = self.item_ids[heard[np.argmax(sim, axis=1)]]
        return [
            f"artist {a} you listen to"
            if ba
            else f"genre {g} you listen to"
            if bg
            else f"close to media {c} you listened to"
            if c >= 0
            else "liked by listeners like you"
            for a, g, ba, bg, c in zip(
                art.tolist(),
                gen.tolist(),
                by_artist.tolist(),
                by_genre.tolist(),
                closest.tolist(),
                strict=True,
            )
        ]

    def _frame(self, items: np.ndarray, scores: np.ndarray, reasons: Sequence[str]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "media_id": self.item_ids[items].astype(np.int64),
                "score": np.asarray(scores, np.float64),
                "artist_id": self.item_artist[items],
                "genre_id": self.item_genre[items],
                "reason": list(reasons),
            },
            columns=REC_COLUMNS,
        )

    # -- artists and genres ----------------------------------------------------------------------
    def _grouped(self, user_id: int, key: np.ndarray, n: int, exclude_heard: bool, name: str) -> pd.DataFrame:
        row = self._row(user_id)
        scores = self._scores_row(row).astype(np.float64)
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
        """Artists ranked by the mean predicted listen probability of their tracks:
        DataFrame[artist_id, score, n_tracks, heard]; artists already listened to are left out by default."""
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
    ) -> pd.DataFrame:
        """Recommendations for someone with no history, at once.

        Stated tastes are folded into the visible layer (the most played tracks of each liked artist and genre
        marked as listened) and scored by one up- and down-pass. Without tastes: the most listened tracks of
        the age (+-2 years) and gender segment. Unknown artist or genre ids raise ValueError."""
        artists = np.asarray(list(liked_artists), np.int64)
        genres = np.asarray(list(liked_genres), np.int64)
        if len(artists) == 0 and len(genres) == 0:
            return self._segment_popular(age, gender, n, max_per_artist)
        v = np.zeros(len(self.item_ids), np.float32)
        unknown: list[str] = []
        for key, ids, per, label in (
            (self.item_artist, artists, TRACKS_PER_ARTIST, "artist"),
            (self.item_genre, genres, TRACKS_PER_GENRE, "genre"),
        ):
            for i in ids.tolist():
                items = np.flatnonzero(key == i)
                if len(items) == 0:
                    unknown.append(f"{label} {i}")
                    continue
                v[items[np.argsort(-self.item_plays[items], kind="stable")[:per]]] = 1.0
        if unknown:
            raise ValueError(f"no track of {', '.join(unknown)} in the model's vocabulary")
        seeded = np.flatnonzero(v)
        scores = np.exp(self._log_scores(seeded, v[seeded]))
        top = self._select(scores, np.ones(len(scores), bool), n, max_per_artist)
        a_set, g_set = set(artists.tolist()), set(genres.tolist())
        seeds = np.flatnonzero(v)
        sim = self._Wn[top] @ self._Wn[seeds].T if len(top) else np.zeros((0, 0))
        reasons = []
        for j, it in enumerate(top.tolist()):
            a, g = int(self.item_artist[it]), int(self.item_genre[it])
            if a in a_set:
                reasons.append(f"artist {a} you like")
            elif g in g_set:
                reasons.append(f"genre {g} you like")
            else:
                near = int(self.item_artist[seeds[int(np.argmax(sim[j]))]])
                reasons.append(f"fans of artist {near} listen to it")
        return self._frame(top, scores[top], reasons)

    def _segment_popular(
        self, age: int | None, gender: int | None, n: int, max_per_artist: int | None
    ) -> pd.DataFrame:
        f = self.frame
        keep = np.ones(len(f), bool)
        parts = []
        if age is not None:
            keep &= np.abs(f["user_age"].to_numpy(np.int64) - int(age)) <= AGE_WINDOW
            parts.append(f"aged {int(age) - AGE_WINDOW}-{int(age) + AGE_WINDOW}")
        if gender is not None:
            keep &= f["user_gender"].to_numpy(np.int64) == int(gender)
            parts.append(f"gender {int(gender)}")
        if keep.sum() < MIN_SEGMENT_ROWS:
            keep[:] = True
            parts = []
        code = _lookup(self.item_ids, f["media_id"].to_numpy(np.int64))
        listened = f["is_listened"].to_numpy() == 1 if "is_listened" in f.columns else np.ones(len(f), bool)
        sel = keep & (code >= 0) & listened
        counts = np.bincount(code[sel], minlength=len(self.item_ids)).astype(np.float64)
        top = self._select(counts, counts > 0, n, max_per_artist)
        who = f"listeners {' '.join(parts)}" if parts else "all listeners"
        score = counts[top] / max(counts.sum(), 1.0)
        return self._frame(top, score, [f"popular with {who}"] * len(top))

    # -- everyone --------------------------------------------------------------------------------
    def all_users(self, n: int = 10, *, exclude_heard: bool = True) -> pd.DataFrame:
        """Top-`n` unheard items of every user in the data: DataFrame[user_id, rank, media_id, score]."""
        if self._cache is not None and exclude_heard and n <= self._cache[0].shape[1]:
            idx, val = self._cache[0][:, :n], self._cache[1][:, :n]
        else:
            idx, val = self._top_all(n, exclude_heard)
        keep = idx >= 0  # a user who heard nearly everything gets fewer rows
        k = idx.shape[1]
        return pd.DataFrame(
            {
                "user_id": np.repeat(self.matrix.user_ids, k).reshape(-1, k)[keep].astype(np.int64),
                "rank": np.tile(np.arange(1, k + 1), (len(idx), 1))[keep].astype(np.int64),
                "media_id": self.item_ids[np.where(keep, idx, 0)][keep].astype(np.int64),
                "score": val[keep].astype(np.float64),
            },
            columns=ALL_COLUMNS,
        )

    def _top_all(self, n: int, exclude_heard: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(item columns, scores) of every user's top `n`, (n_users, n) each; -1 pads a short list."""
        import torch

        n_rows = self.matrix.shape[0]
        k = min(n, len(self.item_ids))
        idx_out = np.full((n_rows, k), -1, np.int64)
        val_out = np.zeros((n_rows, k), np.float32)
        for start in range(0, n_rows, self.batch_size):
            rows = np.arange(start, min(start + self.batch_size, n_rows))
            sub_l, sub_m = self.matrix.labels[rows], self.matrix.mask[rows]
            ((_, p),) = self.net.iter_visible(sub_l, sub_m, len(rows))
            if self.expo is not None:
                ((_, pe),) = self.expo.iter_visible(self.played.labels[rows], sub_m, len(rows))
                p = p.mul_(pe)
            if exclude_heard:
                r = torch.from_numpy(np.repeat(np.arange(len(rows)), np.diff(sub_m.indptr))).to(p.device)
                c = torch.from_numpy(sub_m.indices.astype(np.int64)).to(p.device)
                p[r, c] = -1.0
            val, idx = torch.topk(p, k, dim=1)
            val_np, idx_np = val.cpu().numpy(), idx.cpu().numpy()
            idx_out[rows] = np.where(val_np >= 0, idx_np, -1)
            val_out[rows] = val_np
        return idx_out, val_out


def _collaborative(model: object) -> CollaborativeModel:
    """The rbm/dbn FlowModel inside a TrainedModel, a hybrid model or itself."""
    for _ in range(3):
        if hasattr(model, "net_"):
            return cast("CollaborativeModel", model)
        if hasattr(model, "rbm_"):
            model = model.rbm_
        elif hasattr(model, "model"):
            model = model.model
    raise ValueError(
        "recommendations need an rbm, dbn or hybrid model (train one with `flowtui train --model rbm`)"
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

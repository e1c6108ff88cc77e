"""The world of the synthetic generator, drawn once per run: its knobs, catalogue and users.

See `synth` for the generative model. Everything here is drawn from one generator in a fixed order, so a
seed always gives the same world; `synth_rows` then gives its users their artist pools and draws their
rows, chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, overload

import numpy as np
import pandas as pd

from flowtui.core.data.synth_stats import (
    AGE_P,
    DAY,
    FAMILY_P,
    NAME1_GIVEN_FAMILY,
    NOV_2016,
    ROWS_LEVELS,
    ROWS_VALUES,
    YEAR_LEVELS,
    YEAR_VALUES,
)


@dataclass(frozen=True)
class Knobs:
    """Effect sizes and shares of the generative model (defaults calibrated to DSG17)."""

    dim: int = 16
    session_len: float = 12.0
    flow_share: float = 0.307
    genre0_share: float = 0.485
    genre7_share: float = 0.123
    gender_mean: float = 0.394
    flow_rate: float = 0.600
    other_rate: float = 0.721
    family_rates: tuple[float, float, float] = (0.641, 0.871, 0.808)
    user_sd: float = 0.55  # b_u
    flow_user_sd: float = 0.35  # f_u
    artist_sd: float = 0.6
    album_sd: float = 0.25
    track_sd: float = 0.25
    beta_taste: float = 0.8  # weight of theta_u . phi_i in the listen logit
    beta_choice: float = 2.5  # weight of theta_u . phi_a when a user picks an artist
    flow_pop_share: float = 0.5  # share of Flow picks made by popularity alone
    pool_skew: float = 2.5  # rows pick pool slot floor(m * U**skew): a few favourite artists dominate
    artist_pop_sd: float = 1.3
    track_pop_sd: float = 1.0
    repeat_prob: float = 0.2
    repeat_effect: float = 0.8
    context_scale: float = 0.4  # share of the real per-context rate gaps kept as a context effect
    hour_scale: float = 0.7  # same for the hourly rate offsets
    first_in_session: float = -0.5
    second_in_session: float = -0.2
    device_loyalty: float = 0.9
    bogus_ts_rate: float = 8.3e-5


@dataclass
class World:
    """Everything drawn once for a run: catalogue, users and calibrated intercepts."""

    k: Knobs
    n_users: int
    # catalogue
    genre_p: np.ndarray  # (G,) play shares
    genre_nz_cum: np.ndarray  # (G,) normalised cumulative shares of genres != 0 (background draws)
    artist_genre: np.ndarray  # (A,) sorted by genre
    artist_phi: np.ndarray  # (A, d) float32
    artist_popcum: np.ndarray  # (A,) genre index + normalised cumulative popularity within genre
    track_artist: np.ndarray  # (T,) sorted by artist
    track_album: np.ndarray  # (T,)
    track_phi: np.ndarray  # (T, d) float32
    track_appeal: np.ndarray  # (T,) float32
    track_popcum: np.ndarray  # (T,) artist index + normalised cumulative popularity within artist
    track_duration: np.ndarray  # (T,)
    album_release: np.ndarray  # (Al,)
    media_ids: np.ndarray
    album_ids: np.ndarray
    artist_ids: np.ndarray
    genre_ids: np.ndarray
    # users
    n_rows: np.ndarray
    age: np.ndarray
    gender: np.ndarray
    family: np.ndarray
    name: np.ndarray
    q_flow: np.ndarray
    b_user: np.ndarray
    f_user: np.ndarray
    w_genre0: np.ndarray
    fav_genres: np.ndarray  # (N, 3)
    fav_cum: np.ndarray  # (N, 3) cumulative favourite weights (last = 1)
    w_background: np.ndarray
    theta: np.ndarray  # (N, d) float32
    sample_id: np.ndarray
    test_target: np.ndarray  # wished test time per user
    gap: np.ndarray  # wished gap between the last train row and the test row
    # intercepts (solved by synth._calibrate)
    mu: float = 0.0
    c_flow: float = 0.0
    c_family: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # artist pools (built by build_pools)
    pool_start: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    pool_artist: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


# ---------------------------------------------------------------------------------------------------------
# Sampling helpers


@overload
def logit(p: float) -> float: ...
@overload
def logit(p: np.ndarray) -> np.ndarray: ...
def logit(p: np.ndarray | float) -> np.ndarray | float:
    """log(p / (1 - p)), with p clipped away from 0 and 1."""
    q = np.clip(p, 1e-9, 1 - 1e-9)
    z: np.ndarray | float = np.log(q / (1 - q))
    return z


def sigmoid(z: np.ndarray) -> np.ndarray:
    s: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return s


def _balance_logit(p: np.ndarray, weights: np.ndarray, target: float) -> np.ndarray:
    """Shift `p` in logit space so that its `weights`-weighted mean is exactly `target`."""
    z = logit(p)
    lo, hi = -10.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.average(sigmoid(z + mid), weights=weights) < target:
            lo = mid
        else:
            hi = mid
    return np.asarray(sigmoid(z + (lo + hi) / 2))


def _assign_by_mass(rng: np.random.Generator, weights: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """A category per item so that each category's total weight matches `shares` (random order)."""
    order = rng.permutation(len(weights))
    mid = (np.cumsum(weights[order]) - weights[order] / 2) / weights.sum()
    out = np.empty(len(weights), dtype=np.int64)
    out[order] = np.minimum(np.searchsorted(np.cumsum(shares), mid, side="right"), len(shares) - 1)
    return out


def _segment_cum(values: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Segment index + cumulative share of `values` within each (contiguous, sorted) segment."""
    cum = np.cumsum(values, dtype=np.float64)
    starts = np.r_[0, np.flatnonzero(np.diff(segment)) + 1]
    seg_start_val = np.repeat(np.r_[0.0, cum[starts[1:] - 1]], np.diff(np.r_[starts, len(values)]))
    seg_total = np.repeat(cum[np.r_[starts[1:] - 1, len(values) - 1]], np.diff(np.r_[starts, len(values)]))
    out: np.ndarray = segment + (cum - seg_start_val) / (seg_total - seg_start_val)
    return out


def pick_in_segment(cumseg: np.ndarray, seg: np.ndarray, u: np.ndarray, n_items: int) -> np.ndarray:
    """Sample an item within segment `seg` using a `_segment_cum` table and uniforms `u`."""
    idx = np.searchsorted(cumseg, seg + u, side="right")
    picked: np.ndarray = np.minimum(idx, n_items - 1)
    return picked


# ---------------------------------------------------------------------------------------------------------
# Catalogue


class _Genres(NamedTuple):
    p: np.ndarray  # play shares
    ids: np.ndarray  # real ids (index 1 is genre 7)
    nz_cum: np.ndarray  # normalised cumulative shares of genres != 0
    protos: np.ndarray  # (G, d) unit taste prototypes


class _Artists(NamedTuple):
    genre: np.ndarray  # sorted
    phi: np.ndarray  # (A, d) float64
    popcum: np.ndarray
    appeal: np.ndarray


class _Tracks(NamedTuple):
    album: np.ndarray  # sorted
    artist: np.ndarray
    phi: np.ndarray  # float32
    appeal: np.ndarray  # float32
    popcum: np.ndarray
    duration: np.ndarray
    n_albums: int


def _draw_genres(n_users: int, rng: np.random.Generator, k: Knobs) -> _Genres:
    n_genres = int(np.clip(round(2922 * n_users / 19918), 12, 2922))
    rest = 1.0 / np.arange(1, n_genres - 1) ** 1.1
    rest = rest / rest.sum() * (1 - k.genre0_share - k.genre7_share)
    genre_p = np.empty(n_genres)
    genre_p[0], genre_p[1] = k.genre0_share, k.genre7_share
    genre_p[2:] = rest
    # genre index 1 carries real id 7; the rest get shuffled ids
    other_ids = np.setdiff1d(np.arange(n_genres + 8), [0, 7])[: n_genres - 2]
    genre_ids = np.r_[0, 7, rng.permutation(other_ids)].astype(np.int64)
    nz = genre_p[1:] / genre_p[1:].sum()
    protos = rng.standard_normal((n_genres, k.dim))
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    return _Genres(genre_p, genre_ids, np.cumsum(nz), protos)


def _draw_artists(n_users: int, g: _Genres, rng: np.random.Generator, k: Knobs) -> _Artists:
    """Artists grouped by genre (counts ~ share, at least one each); genre 0 borrows other prototypes."""
    d, n_genres = k.dim, len(g.p)
    n_artists = max(round(3.4 * n_users), 2 * n_genres)
    extra = rng.multinomial(n_artists - n_genres, g.p)
    artist_genre = np.repeat(np.arange(n_genres), extra + 1)
    style = artist_genre.copy()
    g0 = artist_genre == 0
    style[g0] = 1 + np.searchsorted(g.nz_cum, rng.random(g0.sum()), side="right").clip(0, n_genres - 2)
    artist_phi = g.protos[style] + 0.6 * rng.standard_normal((n_artists, d)) / np.sqrt(d)
    artist_phi /= np.linalg.norm(artist_phi, axis=1, keepdims=True)
    artist_logpop = rng.normal(0, k.artist_pop_sd, n_artists)
    artist_popcum = _segment_cum(np.exp(artist_logpop), artist_genre)
    artist_appeal = rng.normal(0, k.artist_sd, n_artists)
    return _Artists(artist_genre, artist_phi, artist_popcum, artist_appeal)


def _draw_tracks(n_users: int, a: _Artists, rng: np.random.Generator, k: Knobs) -> _Tracks:
    """Albums and tracks (each artist >= 1 album, each album >= 1 track), with appeal, taste and duration."""
    d, n_artists = k.dim, len(a.genre)
    n_albums = max(round(7.6 * n_users), n_artists)
    album_artist = np.sort(np.r_[np.arange(n_artists), rng.integers(0, n_artists, n_albums - n_artists)])
    n_tracks = max(round(22.7 * n_users), n_albums)
    track_album = np.sort(np.r_[np.arange(n_albums), rng.integers(0, n_albums, n_tracks - n_albums)])
    track_artist = album_artist[track_album]
    album_appeal = rng.normal(0, k.album_sd, n_albums)
    track_appeal = (
        a.appeal[track_artist] + album_appeal[track_album] + rng.normal(0, k.track_sd, n_tracks)
    ).astype(np.float32)
    track_phi = (a.phi[track_artist] + 0.35 * rng.standard_normal((n_tracks, d)) / np.sqrt(d)).astype(
        np.float32
    )
    track_popcum = _segment_cum(np.exp(rng.normal(0, k.track_pop_sd, n_tracks)), track_artist)
    dur = np.exp(rng.normal(np.log(222), 0.19, n_tracks))
    short = rng.random(n_tracks) < 0.0008
    dur[short] = rng.integers(1, 31, short.sum())
    track_duration = np.clip(np.round(dur), 1, 65535).astype(np.int64)
    return _Tracks(track_album, track_artist, track_phi, track_appeal, track_popcum, track_duration, n_albums)


def _release_dates(n_albums: int, rng: np.random.Generator) -> np.ndarray:
    """YYYYMMDD per album: real-like years; ~1% released in Nov/Dec 2016 (some listens before release)."""
    years = np.interp(rng.random(n_albums), YEAR_LEVELS, YEAR_VALUES)
    yr = np.floor(years).astype(np.int64)
    doy = np.floor((years - yr) * 365).astype(np.int64)
    dates = pd.to_datetime(yr.astype(str), format="%Y") + pd.to_timedelta(doy, unit="D")
    album_release: np.ndarray = (
        (dates.year * 10000 + dates.month * 100 + dates.day).to_numpy().astype(np.int64)
    )
    late = rng.random(n_albums) < 0.004
    late_days = pd.to_datetime(NOV_2016 + rng.integers(0, 50, late.sum()) * DAY, unit="s")
    album_release[late] = (late_days.year * 10000 + late_days.month * 100 + late_days.day).to_numpy()
    return album_release


# ---------------------------------------------------------------------------------------------------------
# Users


class _Users(NamedTuple):
    n_rows: np.ndarray
    age: np.ndarray
    gender: np.ndarray
    family: np.ndarray
    name: np.ndarray
    q_flow: np.ndarray
    b_user: np.ndarray
    f_user: np.ndarray
    w_genre0: np.ndarray
    fav_genres: np.ndarray
    fav_cum: np.ndarray
    w_background: np.ndarray
    theta: np.ndarray  # float32
    sample_id: np.ndarray
    test_target: np.ndarray
    gap: np.ndarray


def _draw_users(n_users: int, g: _Genres, rng: np.random.Generator, k: Knobs) -> _Users:
    """Users ranked by activity; gender, device and the genre-0 and Flow shares balanced over rows."""
    u = (np.arange(n_users) + rng.random(n_users)) / n_users  # stratified quantile draws
    n_rows = np.sort(np.round(np.interp(u, ROWS_LEVELS, ROWS_VALUES)).astype(np.int64))[::-1].copy()
    w = n_rows.astype(float)
    age = rng.choice(np.arange(18, 31), n_users, p=AGE_P / AGE_P.sum())
    gender = _assign_by_mass(rng, w, np.array([1 - k.gender_mean, k.gender_mean]))
    family = _assign_by_mass(rng, w, FAMILY_P)
    name = np.where(family == 1, 2, (rng.random(n_users) < NAME1_GIVEN_FAMILY[family]).astype(np.int64))
    a_flow = 0.9
    q_flow = _balance_logit(
        rng.beta(a_flow, a_flow * (1 - k.flow_share) / k.flow_share, n_users), w, k.flow_share
    )
    b_user = rng.normal(0, k.user_sd, n_users)
    f_user = rng.normal(0, k.flow_user_sd, n_users)
    w_genre0 = _balance_logit(rng.beta(2.0, 2.0, n_users), w, k.genre0_share)
    n_fav = rng.integers(1, 4, n_users)
    fav_genres = 1 + np.searchsorted(g.nz_cum, rng.random((n_users, 3)), side="right").clip(0, len(g.p) - 2)
    fav_w = rng.gamma(1.0, 1.0, (n_users, 3)) * (np.arange(3)[None, :] < n_fav[:, None])
    fav_w /= fav_w.sum(axis=1, keepdims=True)
    fav_cum = np.cumsum(fav_w, axis=1)
    fav_cum[:, -1] = 1.0
    w_background = rng.uniform(0.1, 0.4, n_users)
    theta = (fav_w[:, :, None] * g.protos[fav_genres]).sum(axis=1)
    theta += 0.5 * rng.standard_normal((n_users, k.dim)) / np.sqrt(k.dim)
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    theta *= rng.uniform(0.6, 1.2, (n_users, 1))  # strength of taste
    sample_id = rng.permutation(n_users)
    test_target = NOV_2016 + rng.uniform(9, 31, n_users) * DAY
    gap = np.clip(np.exp(rng.normal(np.log(10 * DAY), 0.7, n_users)), 2 * 3600, 25 * DAY)
    return _Users(
        n_rows, age, gender, family, name, q_flow, b_user, f_user, w_genre0, fav_genres, fav_cum,
        w_background, theta.astype(np.float32), sample_id, test_target, gap,
    )  # fmt: skip


def build_world(n_users: int, rng: np.random.Generator, k: Knobs) -> World:
    """Catalogue and users (no intercepts, no pools yet); the order of the draws is fixed by the seed."""
    g = _draw_genres(n_users, rng, k)
    a = _draw_artists(n_users, g, rng, k)
    t = _draw_tracks(n_users, a, rng, k)
    album_release = _release_dates(t.n_albums, rng)
    us = _draw_users(n_users, g, rng, k)
    return World(
        k=k,
        n_users=n_users,
        genre_p=g.p,
        genre_nz_cum=g.nz_cum,
        artist_genre=a.genre,
        artist_phi=a.phi.astype(np.float32),
        artist_popcum=a.popcum,
        track_artist=t.artist,
        track_album=t.album,
        track_phi=t.phi,
        track_appeal=t.appeal,
        track_popcum=t.popcum,
        track_duration=t.duration,
        album_release=album_release,
        media_ids=rng.permutation(len(t.album)) + 100_000,
        album_ids=rng.permutation(t.n_albums) + 10_000,
        artist_ids=rng.permutation(len(a.genre)) + 1_000,
        genre_ids=g.ids,
        **us._asdict(),
    )

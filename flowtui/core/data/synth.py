"""Synthetic DSG17-like data with known listen probabilities (`p_true`).

The generative model
--------------------
Catalogue (scaled with the number of users N, like the real 22.7 tracks, 7.6 albums, 3.4 artists per user):
genres with a Zipf-like share (genre 0 holds 48.5% of plays, genre 7 12.3%), each with a taste prototype
`psi_g` in R^d (d=16). Artists belong to one genre; an artist's taste factor `phi_a` lies near its genre's
prototype (genre 0 is a catch-all: its artists borrow the prototype of a random other genre). Albums belong
to artists, tracks to albums; a track's factor `phi_i` lies near its artist's. Artists and tracks carry
long-tailed (log-normal) popularities and an appeal `a_i = a_artist + a_album + a_track`; tracks carry a
duration (median 222 s), albums a release date (a few 19000101 / 30000101 oddities, some pre-releases).

Users: rows per user drawn from the quantiles of the real `user_row_counts.csv` (ids ranked by activity),
age 18-30, gender, a primary device (platform name/family with the real row shares), a Flow share `q_u`,
a propensity `b_u`, a Flow-proneness `f_u`, a genre mix (a share of genre 0, one to three favourite genres
and a background of all genres) and a taste `theta_u` built from the favourite genres' prototypes plus noise.
Gender, device and the genre-0 and Flow shares are balanced over rows so the marginals are exact in
expectation.

Each user also holds a pool of artists, growing with activity (3 * rows^0.6, at most 400): each pool entry
takes a genre from the user's mix and the best of 16 popularity-drawn artists of that genre under
`beta_choice * theta_u . phi_a` plus Gumbel noise (about a draw from popularity * exp(beta_choice * theta . phi)).

Rows come in sessions (geometric length, mean 12; gaps > 600 s between sessions; a daily rhythm) that are
either Flow or not; a session has one context (drawn from the real shares per listen type) and one device.
A row's artist comes from the user's pool, favourites first (slot = floor(m * U^2.5)); half of Flow's picks
instead take a genre from half the user's, half the global mix and an artist by popularity alone (Flow fits
a user less well than the user's own choices). The track is drawn by popularity within the artist.
Non-Flow rows replay an earlier track the user liked now and then.

Whether the user listens (>30 s):
    logit p = mu + b_u + a_i + beta_taste * theta_u . phi_i + flow * (c_flow + f_u) + c_context
              + c_platform + c_hour + c_weekend + c_session_position + c_repeat * repeat
and `is_listened ~ Bernoulli(p)`. `mu`, `c_flow` and the platform-family intercepts are solved on the rows
themselves: a first pass draws every chunk of users without labels, the intercepts are fitted to a
subsample of its logits, and a second pass redraws the same rows from the same seeds with labels, so the
listen rates match DSG17 (0.600 in Flow, 0.721 outside, families 0.641/0.871/0.808) up to label noise.
Most of the signal is recoverable from history (user and user-on-Flow rates, track, album and artist rates
seen through other users, user-genre and user-artist rates, context, platform, hour); the pure
latent-factor part is real but moderate. Context and hour effects keep only part (`context_scale`,
`hour_scale`) of the real per-context and per-hour rate gaps (those are marginal rates, partly user mix),
and item appeal is moderate: with the defaults an honest holdout (each user's last Flow row) stays near
realistic levels, below the 0.8 that flags a leak. Defaults give, at 3000 users (seed 7), a test oracle
AUC near 0.77, a smoothed per-user Flow-rate baseline near 0.62-0.66 and a holdout LightGBM AUC near
0.76-0.77; on the bundled sample (200 users, seed 2017) holdout AUCs of 0.75-0.78.

Test: one Flow row per user (contexts 1/5/20/23 in the real shares, the first row of a new session on the
user's primary device) later than all of that user's train rows (gap median about 9 days); `sample_id` is a
random permutation of the users. `test_answers.csv` holds `is_listened ~ Bernoulli(p_true)` and `p_true`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flowtui.core import events
from flowtui.core.data.schema import ANSWER_COLUMNS, DTYPES, LABEL, TEST_COLUMNS, TRAIN_COLUMNS
from flowtui.core.events import EventCallback

# Quantiles of the real rows-per-user distribution (user_row_counts.csv, 19,918 users), levels -> rows.
_ROWS_LEVELS = np.r_[np.linspace(0.0, 0.9, 19), 0.925, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999, 1.0]
_ROWS_VALUES = np.r_[
    1.0, 9, 22, 35, 49, 66, 85, 107, 134, 164, 197, 238, 288, 343, 410, 495, 606, 742, 946,
    1109, 1345, 1659, 1944, 2436, 2987, 3718, 4181, 6317,
]  # fmt: skip
# Contexts and their listen rates in the real train sample, per listen type (rest: small tail).
_CTX_OTHER = np.array([0, 2, 3, 9, 8, 10, 11, 12, 15, 17, 16, 19, 14, 18])
_CTX_OTHER_P = np.array([0.611, 0.204, 0.083, 0.0147, 0.0145, 0.0139, 0.0127, 0.0101, 0.0042, 0.0036])
_CTX_OTHER_P = np.r_[_CTX_OTHER_P, np.full(4, (1 - _CTX_OTHER_P.sum()) / 4)]
_CTX_OTHER_RATE = np.array([0.688, 0.762, 0.713, 0.752, 0.894, 0.95, 0.905, 0.727] + [0.72] * 6)
_CTX_FLOW = np.array([1, 4, 5, 7, 6, 13, 20, 23, 24, 30])
_CTX_FLOW_P = np.array([0.716, 0.089, 0.068, 0.041, 0.041, 0.023, 0.007, 0.0066, 0.005])
_CTX_FLOW_P = np.r_[_CTX_FLOW_P, 1 - _CTX_FLOW_P.sum()]
_CTX_FLOW_RATE = np.array([0.574, 0.726, 0.534, 0.96, 0.586, 0.534, 0.58, 0.58, 0.6, 0.6])
_TEST_CTX = np.array([1, 5, 20, 23])
_TEST_CTX_P = np.array([16167, 3312, 251, 188]) / 19918
# Platform family row shares; platform name given the family (real cross-tab).
_FAMILY_P = np.array([6_041_392, 1_101_269, 416_173]) / 7_558_834
_NAME1_GIVEN_FAMILY = np.array([0.214, 0.0, 0.292])  # family 1 is always name 2
# Session starts per hour of day (UTC) and the hourly listen-rate offsets, from the real sample.
_HOUR_P = np.array(
    [20, 13, 10, 7, 8, 14, 34, 45, 44, 51, 56, 57, 56, 58, 60, 63, 73, 76, 64, 49, 46, 39, 31, 28],
    dtype=float,
)
_HOUR_P /= _HOUR_P.sum()
_HOUR_RATE = np.r_[
    0.678, 0.713, 0.765, 0.801, 0.766, 0.707, 0.66, 0.665, 0.685, 0.712, 0.716, 0.692,
    0.69, 0.722, 0.731, 0.708, 0.664, 0.655, 0.67, 0.682, 0.684, 0.676, 0.683, 0.67,
]  # fmt: skip
# Release years: inverse-CDF table matching the real sample's quantiles.
_YEAR_LEVELS = np.array([0.0, 0.02, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0])
_YEAR_VALUES = np.array([1955.0, 1980.0, 1998.0, 2003.0, 2010.0, 2014.0, 2016.0, 2016.83])  # 2016.83: Nov 1

NOV_2016 = 1_477_958_400  # 2016-11-01 00:00 UTC
DAY = 86_400
CHUNK_USERS = 500  # users generated (and written) at a time; fixed so output does not depend on it


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
class _World:
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
    # intercepts (solved by _calibrate)
    mu: float = 0.0
    c_flow: float = 0.0
    c_family: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # artist pools (built by _build_pools)
    pool_start: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    pool_artist: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _logit(p: np.ndarray | float) -> Any:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _balance_logit(p: np.ndarray, weights: np.ndarray, target: float) -> np.ndarray:
    """Shift `p` in logit space so that its `weights`-weighted mean is exactly `target`."""
    z = _logit(p)
    lo, hi = -10.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.average(_sigmoid(z + mid), weights=weights) < target:
            lo = mid
        else:
            hi = mid
    return np.asarray(_sigmoid(z + (lo + hi) / 2))


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
    return segment + (cum - seg_start_val) / (seg_total - seg_start_val)


def _pick_in_segment(cumseg: np.ndarray, seg: np.ndarray, u: np.ndarray, n_items: int) -> np.ndarray:
    """Sample an item within segment `seg` using a `_segment_cum` table and uniforms `u`."""
    idx = np.searchsorted(cumseg, seg + u, side="right")
    return np.minimum(idx, n_items - 1)


def _build_world(n_users: int, rng: np.random.Generator, k: Knobs) -> _World:
    d = k.dim
    # --- genres
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
    genre_nz_cum = np.cumsum(nz)
    protos = rng.standard_normal((n_genres, d))
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)

    # --- artists grouped by genre (counts ~ share, at least one each)
    n_artists = max(round(3.4 * n_users), 2 * n_genres)
    extra = rng.multinomial(n_artists - n_genres, genre_p)
    per_genre = extra + 1
    artist_genre = np.repeat(np.arange(n_genres), per_genre)
    style = artist_genre.copy()
    g0 = artist_genre == 0
    style[g0] = 1 + np.searchsorted(genre_nz_cum, rng.random(g0.sum()), side="right").clip(0, n_genres - 2)
    artist_phi = protos[style] + 0.6 * rng.standard_normal((n_artists, d)) / np.sqrt(d)
    artist_phi /= np.linalg.norm(artist_phi, axis=1, keepdims=True)
    artist_logpop = rng.normal(0, k.artist_pop_sd, n_artists)
    artist_popcum = _segment_cum(np.exp(artist_logpop), artist_genre)
    artist_appeal = rng.normal(0, k.artist_sd, n_artists)

    # --- albums and tracks (each artist >= 1 album, each album >= 1 track)
    n_albums = max(round(7.6 * n_users), n_artists)
    album_artist = np.sort(np.r_[np.arange(n_artists), rng.integers(0, n_artists, n_albums - n_artists)])
    n_tracks = max(round(22.7 * n_users), n_albums)
    track_album = np.sort(np.r_[np.arange(n_albums), rng.integers(0, n_albums, n_tracks - n_albums)])
    track_artist = album_artist[track_album]
    album_appeal = rng.normal(0, k.album_sd, n_albums)
    track_appeal = (
        artist_appeal[track_artist] + album_appeal[track_album] + rng.normal(0, k.track_sd, n_tracks)
    ).astype(np.float32)
    track_phi = (artist_phi[track_artist] + 0.35 * rng.standard_normal((n_tracks, d)) / np.sqrt(d)).astype(
        np.float32
    )
    track_popcum = _segment_cum(np.exp(rng.normal(0, k.track_pop_sd, n_tracks)), track_artist)
    dur = np.exp(rng.normal(np.log(222), 0.19, n_tracks))
    short = rng.random(n_tracks) < 0.0008
    dur[short] = rng.integers(1, 31, short.sum())
    track_duration = np.clip(np.round(dur), 1, 65535).astype(np.int64)
    # release dates: real-like years; ~1% of albums released in Nov/Dec 2016 (some listens before release)
    years = np.interp(rng.random(n_albums), _YEAR_LEVELS, _YEAR_VALUES)
    yr = np.floor(years).astype(np.int64)
    doy = np.floor((years - yr) * 365).astype(np.int64)
    dates = pd.to_datetime(yr.astype(str), format="%Y") + pd.to_timedelta(doy, unit="D")
    album_release = (dates.year * 10000 + dates.month * 100 + dates.day).to_numpy().astype(np.int64)
    late = rng.random(n_albums) < 0.004
    late_days = pd.to_datetime(NOV_2016 + rng.integers(0, 50, late.sum()) * DAY, unit="s")
    album_release[late] = (late_days.year * 10000 + late_days.month * 100 + late_days.day).to_numpy()

    # --- users
    u = (np.arange(n_users) + rng.random(n_users)) / n_users  # stratified quantile draws
    n_rows = np.sort(np.round(np.interp(u, _ROWS_LEVELS, _ROWS_VALUES)).astype(np.int64))[::-1].copy()
    w = n_rows.astype(float)
    ages = np.arange(18, 31)
    age_p = np.array([7.6, 6.8, 7.6, 7.7, 6.6, 7.2, 7.3, 7.9, 8.5, 8.0, 7.6, 7.9, 9.3])
    age = rng.choice(ages, n_users, p=age_p / age_p.sum())
    gender = _assign_by_mass(rng, w, np.array([1 - k.gender_mean, k.gender_mean]))
    family = _assign_by_mass(rng, w, _FAMILY_P)
    name = np.where(family == 1, 2, (rng.random(n_users) < _NAME1_GIVEN_FAMILY[family]).astype(np.int64))
    a_flow = 0.9
    q_flow = _balance_logit(
        rng.beta(a_flow, a_flow * (1 - k.flow_share) / k.flow_share, n_users), w, k.flow_share
    )
    b_user = rng.normal(0, k.user_sd, n_users)
    f_user = rng.normal(0, k.flow_user_sd, n_users)
    w_genre0 = _balance_logit(rng.beta(2.0, 2.0, n_users), w, k.genre0_share)
    n_fav = rng.integers(1, 4, n_users)
    fav_genres = 1 + np.searchsorted(genre_nz_cum, rng.random((n_users, 3)), side="right").clip(
        0, n_genres - 2
    )
    fav_w = rng.gamma(1.0, 1.0, (n_users, 3)) * (np.arange(3)[None, :] < n_fav[:, None])
    fav_w /= fav_w.sum(axis=1, keepdims=True)
    fav_cum = np.cumsum(fav_w, axis=1)
    fav_cum[:, -1] = 1.0
    w_background = rng.uniform(0.1, 0.4, n_users)
    theta = (fav_w[:, :, None] * protos[fav_genres]).sum(axis=1)
    theta += 0.5 * rng.standard_normal((n_users, d)) / np.sqrt(d)
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    theta *= rng.uniform(0.6, 1.2, (n_users, 1))  # strength of taste
    sample_id = rng.permutation(n_users)
    test_target = NOV_2016 + rng.uniform(9, 31, n_users) * DAY
    gap = np.clip(np.exp(rng.normal(np.log(10 * DAY), 0.7, n_users)), 2 * 3600, 25 * DAY)

    return _World(
        k=k,
        n_users=n_users,
        genre_p=genre_p,
        genre_nz_cum=genre_nz_cum,
        artist_genre=artist_genre,
        artist_phi=artist_phi.astype(np.float32),
        artist_popcum=artist_popcum,
        track_artist=track_artist,
        track_album=track_album,
        track_phi=track_phi,
        track_appeal=track_appeal,
        track_popcum=track_popcum,
        track_duration=track_duration,
        album_release=album_release,
        media_ids=rng.permutation(n_tracks) + 100_000,
        album_ids=rng.permutation(n_albums) + 10_000,
        artist_ids=rng.permutation(n_artists) + 1_000,
        genre_ids=genre_ids,
        n_rows=n_rows,
        age=age,
        gender=gender,
        family=family,
        name=name,
        q_flow=q_flow,
        b_user=b_user,
        f_user=f_user,
        w_genre0=w_genre0,
        fav_genres=fav_genres,
        fav_cum=fav_cum,
        w_background=w_background,
        theta=theta.astype(np.float32),
        sample_id=sample_id,
        test_target=test_target,
        gap=gap,
    )


def _pick_genre(w: _World, users: np.ndarray, flow: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Genre index per row from the user's mix (`flow` rows: half of them from the global mix)."""
    n = len(users)
    glob = flow & (rng.random(n) < 0.5)
    u1, u2, u3 = rng.random(n), rng.random(n), rng.random(n)
    g0_share = np.where(glob, w.genre_p[0], w.w_genre0[users])
    bg = glob | (u2 < w.w_background[users])
    bg_genre = 1 + np.searchsorted(w.genre_nz_cum, u3, side="right").clip(0, len(w.genre_p) - 2)
    slot = (u3[:, None] > w.fav_cum[users]).sum(axis=1).clip(0, 2)
    fav = w.fav_genres[users, slot]
    return np.asarray(np.where(u1 < g0_share, 0, np.where(bg, bg_genre, fav)))


def _taste_artists(
    w: _World, users: np.ndarray, genre: np.ndarray, rng: np.random.Generator, k: int = 16
) -> np.ndarray:
    """Artist per entry: the best of `k` popularity-drawn candidates of the genre under Gumbel noise,
    i.e. a draw from about popularity * exp(beta_choice * theta_u . phi_a)."""
    out = np.empty(len(users), dtype=np.int64)
    n_art = len(w.artist_genre)
    beta = np.float32(w.k.beta_choice)
    block = 65_536
    for b0 in range(0, len(users), block):
        g = genre[b0 : b0 + block]
        cand = _pick_in_segment(w.artist_popcum, g[:, None], rng.random((len(g), k)), n_art)
        score = np.einsum("bkd,bd->bk", w.artist_phi[cand], w.theta[users[b0 : b0 + block]]) * beta
        score += rng.gumbel(size=score.shape)
        out[b0 : b0 + block] = cand[np.arange(len(g)), score.argmax(axis=1)]
    return out


def _build_pools(w: _World, rng: np.random.Generator) -> None:
    """Each user's pool of artists (grows with activity): what the user plays and Flow's taste picks."""
    m = np.clip(np.round(3 * w.n_rows**0.6), 3, 400).astype(np.int64)
    w.pool_start = np.r_[0, np.cumsum(m)]
    owner = np.repeat(np.arange(w.n_users), m)
    genre = _pick_genre(w, owner, np.zeros(len(owner), dtype=bool), rng)
    w.pool_artist = _taste_artists(w, owner, genre, rng)
    # a handful of impossible release dates (the real data has 19000101 and 30000101), on albums of
    # niche artists that some pool holds, so they show up in a few rows at any scale
    in_pools = np.bincount(w.pool_artist, minlength=len(w.artist_genre))
    album_artist = np.zeros(len(w.album_release), dtype=np.int64)
    album_artist[w.track_album] = w.track_artist
    niche = np.flatnonzero(np.isin(album_artist, np.flatnonzero((in_pools >= 1) & (in_pools <= 2))))
    if len(niche) >= 2:
        odd = rng.choice(niche, max(2, round(len(w.album_release) * 1e-4)), replace=False)
        w.album_release[odd] = np.where(np.arange(len(odd)) % 5 == 0, 30000101, 19000101)


def _pick_artist(w: _World, users: np.ndarray, flow: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Artist per row: from the user's pool, favourites first; part of Flow's picks by popularity alone."""
    n = len(users)
    m = np.diff(w.pool_start)[users]
    slot = np.minimum((m * rng.random(n) ** w.k.pool_skew).astype(np.int64), m - 1)
    artist = w.pool_artist[w.pool_start[users] + slot]
    pop = np.flatnonzero(flow & (rng.random(n) < w.k.flow_pop_share))
    genre = _pick_genre(w, users[pop], np.ones(len(pop), dtype=bool), rng)
    artist[pop] = _pick_in_segment(w.artist_popcum, genre, rng.random(len(pop)), len(w.artist_genre))
    return artist


def _session_times(
    w: _World,
    sess_user: np.ndarray,
    sess_dur: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Start time per session: daily rhythm inside the user's window, sorted, > 600 s apart."""
    n_sess = len(sess_user)
    uq, first, counts = np.unique(sess_user, return_index=True, return_counts=True)
    need = np.bincount(sess_user, weights=sess_dur + 4 * 3600, minlength=w.n_users)[uq]
    span = np.clip(need * rng.uniform(1.0, 4.0, len(uq)), DAY, 29 * DAY)
    end = np.maximum(w.test_target[uq] - w.gap[uq], NOV_2016 + span)
    end = np.minimum(end, NOV_2016 + 30 * DAY)
    start = end - span
    s_user = np.repeat(np.arange(len(uq)), counts)
    day = np.floor(start[s_user] / DAY + rng.random(n_sess) * span[s_user] / DAY)
    hour = rng.choice(24, n_sess, p=_HOUR_P)
    t = day * DAY + hour * 3600 + rng.random(n_sess) * 3600
    t = np.clip(t, start[s_user], end[s_user])
    order = np.lexsort((t, s_user))
    t = t[order]
    # push sessions so each starts > 600 s after the previous one ends: s'_k = C_k + cummax(s_k - C_k)
    step = sess_dur + 601.0
    c = np.cumsum(step) - step
    c -= np.repeat(c[first], counts)
    big = 1e10 * s_user
    pushed = np.maximum.accumulate(t - c + big) - big + c
    return pushed


def _gen_users(
    w: _World, users: np.ndarray, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Train rows of `users` (sorted ids) and their test rows, with logits lacking the intercepts.

    Each dict maps column names to arrays; `z` is the logit without mu/c_flow/c_family.
    """
    k = w.k
    n = w.n_rows[users]
    n_total = int(n.sum())
    row_user = np.repeat(users, n)
    user_first = np.r_[0, np.cumsum(n)[:-1]]
    pos_user = np.arange(n_total) - np.repeat(user_first, n)

    # sessions: geometric lengths, one listen type, context and device each
    new = rng.random(n_total) < 1.0 / k.session_len
    new[user_first] = True
    sess = np.cumsum(new) - 1
    sess_first = np.flatnonzero(new)
    sess_user = row_user[sess_first]
    n_sess = len(sess_first)
    pos_sess = np.arange(n_total) - sess_first[sess]
    sess_flow = rng.random(n_sess) < w.q_flow[sess_user]
    ctx = np.where(
        sess_flow,
        _CTX_FLOW[rng.choice(len(_CTX_FLOW), n_sess, p=_CTX_FLOW_P)],
        _CTX_OTHER[rng.choice(len(_CTX_OTHER), n_sess, p=_CTX_OTHER_P)],
    )
    ctx_rate = np.zeros(64)
    ctx_rate[_CTX_OTHER] = k.context_scale * (_logit(_CTX_OTHER_RATE) - _logit(k.other_rate))
    ctx_rate[_CTX_FLOW] = k.context_scale * (_logit(_CTX_FLOW_RATE) - _logit(k.flow_rate))
    hour_rate = k.hour_scale * (_logit(_HOUR_RATE) - _logit(0.684))
    loyal = rng.random(n_sess) < k.device_loyalty
    fam_any = rng.choice(3, n_sess, p=_FAMILY_P)
    name_any = np.where(fam_any == 1, 2, (rng.random(n_sess) < _NAME1_GIVEN_FAMILY[fam_any]).astype(np.int64))
    sess_family = np.where(loyal, w.family[sess_user], fam_any)
    sess_name = np.where(loyal, w.name[sess_user], name_any)

    flow = sess_flow[sess]
    artist = _pick_artist(w, row_user, flow, rng)
    track = _pick_in_segment(w.track_popcum, artist, rng.random(n_total), len(w.track_artist))

    # replays of a liked earlier track (non-Flow rows only)
    theta_rows = w.theta[row_user]
    tz = w.track_appeal[track] + k.beta_taste * np.einsum("ij,ij->i", theta_rows, w.track_phi[track])
    src = np.repeat(user_first, n) + np.floor(rng.random(n_total) * pos_user).astype(np.int64)
    cand = (~flow) & (pos_user > 0) & (rng.random(n_total) < k.repeat_prob)
    cand &= rng.random(n_total) < _sigmoid(tz[src] + 0.8)
    for _ in range(40):  # resolve chains of replays (pointer jumping)
        chained = cand[src] & cand
        if not chained.any():
            break
        src = np.where(chained, src[src], src)
    track = np.where(cand, track[src], track)
    tz = np.where(cand, tz[src], tz)

    # times
    dur = w.track_duration[track]
    play = np.minimum(dur * rng.uniform(0.15, 1.0, n_total), 590.0)
    cum_play = np.cumsum(play) - play
    offset = cum_play - np.repeat(cum_play[sess_first], np.diff(np.r_[sess_first, n_total]))
    sess_dur = np.bincount(sess, weights=play, minlength=n_sess)
    starts = _session_times(w, sess_user, sess_dur, rng)
    ts = np.floor(starts[sess] + offset).astype(np.int64)
    bogus = rng.random(n_total) < k.bogus_ts_rate
    nb = int(bogus.sum())
    ts[bogus] = np.where(
        rng.random(nb) < 0.4, rng.integers(0, 30 * DAY, nb), rng.integers(315_532_800, 1_230_000_000, nb)
    )
    hour = (ts // 3600) % 24
    weekend = ((ts // DAY + 3) % 7) >= 5  # 1970-01-01 was a Thursday

    c_pos = np.where(pos_sess == 0, k.first_in_session, np.where(pos_sess == 1, k.second_in_session, 0.0))
    z = (
        tz
        + w.b_user[row_user]
        + flow * w.f_user[row_user]
        + ctx_rate[ctx[sess]]
        + 0.3 * (sess_name[sess] == 1)
        + hour_rate[hour]
        + 0.1 * weekend
        + c_pos
        + k.repeat_effect * cand
    )
    album = w.track_album[track]
    train = {
        "user": row_user,
        "track": track,
        "album": album,
        "artist": w.track_artist[track],
        "genre": w.artist_genre[w.track_artist[track]],
        "ts": ts,
        "context": ctx[sess],
        "family": sess_family[sess],
        "name": sess_name[sess],
        "flow": flow.astype(np.int64),
        "z": z,
    }

    # test: one Flow row per user, first of a new session on the primary device, after all train rows
    last = np.maximum.reduceat(np.where(bogus, 0, ts), user_first)
    n_u = len(users)
    t_ts = np.maximum(w.test_target[users], last + w.gap[users] * rng.uniform(0.3, 1.0, n_u)).astype(np.int64)
    t_ctx = _TEST_CTX[rng.choice(len(_TEST_CTX), n_u, p=_TEST_CTX_P)]
    t_flow = np.ones(n_u, dtype=bool)
    t_artist = _pick_artist(w, users, t_flow, rng)
    t_track = _pick_in_segment(w.track_popcum, t_artist, rng.random(n_u), len(w.track_artist))
    t_hour = (t_ts // 3600) % 24
    t_weekend = ((t_ts // DAY + 3) % 7) >= 5
    t_z = (
        w.track_appeal[t_track]
        + k.beta_taste * np.einsum("ij,ij->i", w.theta[users], w.track_phi[t_track])
        + w.b_user[users]
        + w.f_user[users]
        + ctx_rate[t_ctx]
        + 0.3 * (w.name[users] == 1)
        + hour_rate[t_hour]
        + 0.1 * t_weekend
        + k.first_in_session
    )
    test = {
        "user": users,
        "track": t_track,
        "album": w.track_album[t_track],
        "artist": w.track_artist[t_track],
        "genre": w.artist_genre[w.track_artist[t_track]],
        "ts": t_ts,
        "context": t_ctx,
        "family": w.family[users],
        "name": w.name[users],
        "flow": t_flow.astype(np.int64),
        "z": t_z,
    }
    return train, test


def _full_logit(w: _World, rows: dict[str, np.ndarray]) -> np.ndarray:
    fam = np.asarray(w.c_family)[rows["family"]]
    return np.asarray(rows["z"] + w.mu + rows["flow"] * w.c_flow + fam)


def _chunk_rng(chunks_ss: np.random.SeedSequence, c: int) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence(chunks_ss.entropy, spawn_key=(*chunks_ss.spawn_key, c))
    )


def _chunk_users(w: _World, c: int) -> np.ndarray:
    return np.arange(c * CHUNK_USERS, min((c + 1) * CHUNK_USERS, w.n_users))


def _calibrate(
    w: _World,
    chunks_ss: np.random.SeedSequence,
    rng: np.random.Generator,
    on_event: EventCallback | None,
    cancel: threading.Event | None,
    max_rows: int = 1_500_000,
) -> None:
    """Solve mu, c_flow and the family intercepts on the very rows that will be written.

    A first pass draws every chunk (without labels) and keeps a uniform subsample of its logits; the
    second pass (`_chunk_tables`) redraws the same rows from the same seeds, so the rates are exact up to
    the Bernoulli noise of the labels.
    """
    k = w.k
    keep = min(1.0, max_rows / float(w.n_rows.sum()))
    zs, flows, fams = [], [], []
    n_chunks = _n_chunks(w.n_users)
    for c in range(n_chunks):
        events.check_cancel(cancel)
        tr, _ = _gen_users(w, _chunk_users(w, c), _chunk_rng(chunks_ss, c))
        sel = rng.random(len(tr["z"])) < keep
        zs.append(tr["z"][sel])
        flows.append(tr["flow"][sel])
        fams.append(tr["family"][sel])
        events.emit(on_event, events.Progress("synth", c + 1, 2 * n_chunks, "calibrating"))
    rows = {"z": np.concatenate(zs), "flow": np.concatenate(flows), "family": np.concatenate(fams)}
    flow = rows["flow"].astype(bool)
    fam = rows["family"]
    t_flow, t_other = _logit(k.flow_rate), _logit(k.other_rate)
    t_fam = _logit(np.asarray(k.family_rates))
    c_family = np.zeros(3)
    for _ in range(60):
        w.c_family = (float(c_family[0]), float(c_family[1]), float(c_family[2]))
        p = _sigmoid(_full_logit(w, rows))
        if (~flow).any():
            w.mu += t_other - _logit(p[~flow].mean())
        if flow.any():
            w.c_flow += t_flow - _logit(p[flow].mean())
        for f in (1, 2):
            sel = fam == f
            if sel.any():
                c_family[f] += 0.8 * (t_fam[f] - _logit(p[sel].mean()))
    w.c_family = (float(c_family[0]), float(c_family[1]), float(c_family[2]))


def _make_world(
    n_users: int,
    seed: int,
    knobs: dict[str, Any],
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> tuple[_World, np.random.SeedSequence]:
    if n_users < 1:
        raise ValueError(f"n_users must be at least 1, got {n_users}")
    valid = {f.name for f in fields(Knobs)}
    unknown = set(knobs) - valid
    if unknown:
        raise ValueError(f"unknown synth knobs: {sorted(unknown)}")
    k = replace(Knobs(), **knobs)
    ss = np.random.SeedSequence(seed)
    world_ss, calib_ss, chunks_ss = ss.spawn(3)
    world_rng = np.random.default_rng(world_ss)
    w = _build_world(n_users, world_rng, k)
    _build_pools(w, world_rng)
    _calibrate(w, chunks_ss, np.random.default_rng(calib_ss), on_event, cancel)
    return w, chunks_ss


def _chunk_tables(
    w: _World, c: int, chunks_ss: np.random.SeedSequence
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Train columns (with labels) and test columns (with p_true and labels) of user chunk `c`."""
    rng = _chunk_rng(chunks_ss, c)
    tr, te = _gen_users(w, _chunk_users(w, c), rng)
    p = _sigmoid(_full_logit(w, tr))
    label = (rng.random(len(p)) < p).astype(np.int8)
    p_test = _sigmoid(_full_logit(w, te))
    t_label = (rng.random(len(p_test)) < p_test).astype(np.int8)
    return _columns(w, tr, label), {**_columns(w, te, None), "p_true": p_test, LABEL: t_label}


def _columns(w: _World, r: dict[str, np.ndarray], label: np.ndarray | None) -> dict[str, np.ndarray]:
    u = r["user"]
    cols = {
        "genre_id": w.genre_ids[r["genre"]],
        "ts_listen": r["ts"],
        "media_id": w.media_ids[r["track"]],
        "album_id": w.album_ids[r["album"]],
        "context_type": r["context"],
        "release_date": w.album_release[r["album"]],
        "platform_name": r["name"],
        "platform_family": r["family"],
        "media_duration": w.track_duration[r["track"]],
        "listen_type": r["flow"],
        "user_gender": w.gender[u],
        "user_id": u,
        "artist_id": w.artist_ids[r["artist"]],
        "user_age": w.age[u],
    }
    out = {c: np.asarray(v).astype(DTYPES[c]) for c, v in cols.items()}
    if label is not None:
        out[LABEL] = label
    return out


def _n_chunks(n_users: int) -> int:
    return (n_users + CHUNK_USERS - 1) // CHUNK_USERS


def _test_frames(w: _World, parts: list[dict[str, np.ndarray]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    cols = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
    sid = w.sample_id[cols["user_id"]].astype(DTYPES["sample_id"])
    order = np.argsort(sid)
    test = pd.DataFrame(
        {"sample_id": sid[order], **{c: cols[c][order] for c in TEST_COLUMNS if c != "sample_id"}}
    )
    answers = pd.DataFrame(
        {"sample_id": sid[order], LABEL: cols[LABEL][order], "p_true": cols["p_true"][order]}
    )
    return test, answers[list(ANSWER_COLUMNS)]


def synthesize_frames(
    n_users: int, seed: int = 0, **knobs: Any
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Generate (train, test, answers) in memory; deterministic for a seed. `knobs` override `Knobs`."""
    w, chunks_ss = _make_world(n_users, seed, knobs)
    trains, tests = [], []
    for c in range(_n_chunks(n_users)):
        tr, te = _chunk_tables(w, c, chunks_ss)
        trains.append(pd.DataFrame({col: tr[col] for col in TRAIN_COLUMNS}))
        tests.append(te)
    train = pd.concat(trains, ignore_index=True)
    test, answers = _test_frames(w, tests)
    return train, test, answers


def oracle_auc(answers: pd.DataFrame) -> float:
    """AUC of `p_true` against the drawn labels: the best any model can expect on this test."""
    y = answers[LABEL].to_numpy()
    s = answers["p_true"].to_numpy()
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(s).rank().to_numpy()
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _csv_options() -> Any:
    """Plain CSV like the real files: unquoted header, big batches (pyarrow >= 17 knows quoting_header)."""
    import pyarrow.csv as pacsv

    try:
        return pacsv.WriteOptions(quoting_header="none", batch_size=1 << 16)
    except TypeError:
        return pacsv.WriteOptions(batch_size=1 << 16)


def synthesize(
    n_users: int,
    seed: int = 0,
    out_dir: str | Path = ".",
    *,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
    **knobs: Any,
) -> dict[str, Any]:
    """Write train.csv, test.csv and test_answers.csv into `out_dir`, chunk by chunk and atomically.

    Emits `Progress(task="synth")` per chunk of users; a cancel raises `Cancelled` and leaves no files.
    Returns {"rows", "users", "test_rows", "listen_rate", "flow_share", "oracle_auc", "seconds", "paths"}.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from flowtui.core.data.io import atomic_path

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    events.check_cancel(cancel)
    w, chunks_ss = _make_world(n_users, seed, knobs, on_event, cancel)
    paths = {name: out / f"{name}.csv" for name in ("train", "test", "test_answers")}
    n_chunks = _n_chunks(n_users)
    rows = listened = flow_rows = 0
    tests: list[dict[str, np.ndarray]] = []
    with contextlib.ExitStack() as stack:
        tmp = {name: stack.enter_context(atomic_path(p)) for name, p in paths.items()}
        writer = None
        try:
            for c in range(n_chunks):
                events.check_cancel(cancel)
                tr, te = _chunk_tables(w, c, chunks_ss)
                table = pa.table({col: tr[col] for col in TRAIN_COLUMNS})
                if writer is None:
                    writer = pacsv.CSVWriter(str(tmp["train"]), table.schema, write_options=_csv_options())
                writer.write_table(table)
                rows += len(tr[LABEL])
                listened += int(tr[LABEL].sum())
                flow_rows += int(tr["listen_type"].sum())
                tests.append(te)
                events.emit(
                    on_event, events.Progress("synth", n_chunks + c + 1, 2 * n_chunks, f"{rows:,} rows")
                )
        finally:
            if writer is not None:
                writer.close()
        events.check_cancel(cancel)
        test, answers = _test_frames(w, tests)
        pacsv.write_csv(
            pa.Table.from_pandas(test, preserve_index=False), str(tmp["test"]), write_options=_csv_options()
        )
        answers.to_csv(tmp["test_answers"], index=False, float_format="%.6f")
    umask = os.umask(0)
    os.umask(umask)
    for p in paths.values():  # temporary files are created private; give the data the usual mode
        os.chmod(p, 0o666 & ~umask)
    return {
        "rows": rows,
        "users": n_users,
        "test_rows": len(test),
        "listen_rate": listened / rows,
        "flow_share": flow_rows / rows,
        "oracle_auc": oracle_auc(answers),
        "seconds": time.perf_counter() - t0,
        "paths": {name: str(p) for name, p in paths.items()},
    }

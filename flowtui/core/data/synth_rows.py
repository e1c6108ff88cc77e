"""Rows of the synthetic world: artist pools and picks, sessions, replays, times and the listen logit.

See `synth` for the generative model. `build_pools` gives each user a pool of artists once per run;
`gen_users` draws the train and test rows of one chunk of users from that chunk's own generator, so a
chunk always gets the same rows whichever pass (calibration or writing) draws it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from flowtui.core.data.synth_stats import (
    CTX_FLOW,
    CTX_FLOW_P,
    CTX_FLOW_RATE,
    CTX_OTHER,
    CTX_OTHER_P,
    CTX_OTHER_RATE,
    DAY,
    FAMILY_P,
    HOUR_P,
    HOUR_RATE,
    NAME1_GIVEN_FAMILY,
    NOV_2016,
    TEST_CTX,
    TEST_CTX_P,
)
from flowtui.core.data.synth_world import Knobs, World, logit, pick_in_segment, sigmoid

#: Columns of generated rows: "user", "track", "album", "artist", "genre" (indices into the world), "ts",
#: "context", "family", "name", "flow", and "z", the listen logit without mu, c_flow and c_family.
Rows = dict[str, np.ndarray]


# ---------------------------------------------------------------------------------------------------------
# Artist pools and picks


def _pick_genre(w: World, users: np.ndarray, flow: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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
    w: World, users: np.ndarray, genre: np.ndarray, rng: np.random.Generator, k: int = 16
) -> np.ndarray:
    """Artist per entry: the best of `k` popularity-drawn candidates of the genre under Gumbel noise,
    i.e. a draw from about popularity * exp(beta_choice * theta_u . phi_a)."""
    out = np.empty(len(users), dtype=np.int64)
    n_art = len(w.artist_genre)
    beta = np.float32(w.k.beta_choice)
    block = 65_536
    for b0 in range(0, len(users), block):
        g = genre[b0 : b0 + block]
        cand = pick_in_segment(w.artist_popcum, g[:, None], rng.random((len(g), k)), n_art)
        score = np.einsum("bkd,bd->bk", w.artist_phi[cand], w.theta[users[b0 : b0 + block]]) * beta
        score += rng.gumbel(size=score.shape)
        out[b0 : b0 + block] = cand[np.arange(len(g)), score.argmax(axis=1)]
    return out


def build_pools(w: World, rng: np.random.Generator) -> None:
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


def _pick_artist(w: World, users: np.ndarray, flow: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Artist per row: from the user's pool, favourites first; part of Flow's picks by popularity alone."""
    n = len(users)
    m = np.diff(w.pool_start)[users]
    slot = np.minimum((m * rng.random(n) ** w.k.pool_skew).astype(np.int64), m - 1)
    artist: np.ndarray = w.pool_artist[w.pool_start[users] + slot]
    pop = np.flatnonzero(flow & (rng.random(n) < w.k.flow_pop_share))
    genre = _pick_genre(w, users[pop], np.ones(len(pop), dtype=bool), rng)
    artist[pop] = pick_in_segment(w.artist_popcum, genre, rng.random(len(pop)), len(w.artist_genre))
    return artist


# ---------------------------------------------------------------------------------------------------------
# Rows of a chunk of users


class _Sessions(NamedTuple):
    """Per row: its session; per session: its first row, user, listen type, context and device."""

    sess: np.ndarray
    first: np.ndarray
    user: np.ndarray
    pos: np.ndarray  # row position within its session
    flow: np.ndarray
    ctx: np.ndarray
    family: np.ndarray
    name: np.ndarray


def _context_rates(k: Knobs) -> tuple[np.ndarray, np.ndarray]:
    """The logit offsets per context type (indexable by id, 0..63) and per hour of day."""
    ctx_rate = np.zeros(64)
    ctx_rate[CTX_OTHER] = k.context_scale * (logit(CTX_OTHER_RATE) - logit(k.other_rate))
    ctx_rate[CTX_FLOW] = k.context_scale * (logit(CTX_FLOW_RATE) - logit(k.flow_rate))
    hour_rate = k.hour_scale * (logit(HOUR_RATE) - logit(0.684))
    return ctx_rate, hour_rate


def _sessions(w: World, row_user: np.ndarray, user_first: np.ndarray, rng: np.random.Generator) -> _Sessions:
    """Sessions of geometric length, each with one listen type, one context and one device."""
    k = w.k
    n_total = len(row_user)
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
        CTX_FLOW[rng.choice(len(CTX_FLOW), n_sess, p=CTX_FLOW_P)],
        CTX_OTHER[rng.choice(len(CTX_OTHER), n_sess, p=CTX_OTHER_P)],
    )
    loyal = rng.random(n_sess) < k.device_loyalty
    fam_any = rng.choice(3, n_sess, p=FAMILY_P)
    name_any = np.where(fam_any == 1, 2, (rng.random(n_sess) < NAME1_GIVEN_FAMILY[fam_any]).astype(np.int64))
    sess_family = np.where(loyal, w.family[sess_user], fam_any)
    sess_name = np.where(loyal, w.name[sess_user], name_any)
    return _Sessions(sess, sess_first, sess_user, pos_sess, sess_flow, ctx, sess_family, sess_name)


def _replays(
    w: World,
    row_user: np.ndarray,
    track: np.ndarray,
    flow: np.ndarray,
    user_first: np.ndarray,
    n: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(track, track logit, replay mask) once non-Flow rows replay, now and then, a liked earlier track."""
    k = w.k
    n_total = len(row_user)
    pos_user = np.arange(n_total) - np.repeat(user_first, n)
    theta_rows = w.theta[row_user]
    tz = w.track_appeal[track] + k.beta_taste * np.einsum("ij,ij->i", theta_rows, w.track_phi[track])
    src = np.repeat(user_first, n) + np.floor(rng.random(n_total) * pos_user).astype(np.int64)
    cand = (~flow) & (pos_user > 0) & (rng.random(n_total) < k.repeat_prob)
    cand &= rng.random(n_total) < sigmoid(tz[src] + 0.8)
    for _ in range(40):  # resolve chains of replays (pointer jumping)
        chained = cand[src] & cand
        if not chained.any():
            break
        src = np.where(chained, src[src], src)
    return np.where(cand, track[src], track), np.where(cand, tz[src], tz), cand


def _session_times(
    w: World,
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
    hour = rng.choice(24, n_sess, p=HOUR_P)
    t = day * DAY + hour * 3600 + rng.random(n_sess) * 3600
    t = np.clip(t, start[s_user], end[s_user])
    order = np.lexsort((t, s_user))
    t = t[order]
    # push sessions so each starts > 600 s after the previous one ends: s'_k = C_k + cummax(s_k - C_k)
    step = sess_dur + 601.0
    c = np.cumsum(step) - step
    c -= np.repeat(c[first], counts)
    big = 1e10 * s_user
    pushed: np.ndarray = np.maximum.accumulate(t - c + big) - big + c
    return pushed


def _timestamps(
    w: World, track: np.ndarray, s: _Sessions, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(ts_listen per row, bogus-clock mask): rows play back to back inside their session."""
    n_total = len(track)
    dur = w.track_duration[track]
    play = np.minimum(dur * rng.uniform(0.15, 1.0, n_total), 590.0)
    cum_play = np.cumsum(play) - play
    offset = cum_play - np.repeat(cum_play[s.first], np.diff(np.r_[s.first, n_total]))
    sess_dur = np.bincount(s.sess, weights=play, minlength=len(s.first))
    starts = _session_times(w, s.user, sess_dur, rng)
    ts = np.floor(starts[s.sess] + offset).astype(np.int64)
    bogus = rng.random(n_total) < w.k.bogus_ts_rate
    nb = int(bogus.sum())
    ts[bogus] = np.where(
        rng.random(nb) < 0.4, rng.integers(0, 30 * DAY, nb), rng.integers(315_532_800, 1_230_000_000, nb)
    )
    return ts, bogus


def _test_rows(
    w: World,
    users: np.ndarray,
    last: np.ndarray,
    ctx_rate: np.ndarray,
    hour_rate: np.ndarray,
    rng: np.random.Generator,
) -> Rows:
    """One Flow row per user, first of a new session on the primary device, after all train rows."""
    k = w.k
    n_u = len(users)
    t_ts = np.maximum(w.test_target[users], last + w.gap[users] * rng.uniform(0.3, 1.0, n_u)).astype(np.int64)
    t_ctx = TEST_CTX[rng.choice(len(TEST_CTX), n_u, p=TEST_CTX_P)]
    t_flow = np.ones(n_u, dtype=bool)
    t_artist = _pick_artist(w, users, t_flow, rng)
    t_track = pick_in_segment(w.track_popcum, t_artist, rng.random(n_u), len(w.track_artist))
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
    return {
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


def gen_users(w: World, users: np.ndarray, rng: np.random.Generator) -> tuple[Rows, Rows]:
    """Train rows of `users` (sorted ids) and their test rows, with logits lacking the intercepts."""
    k = w.k
    n = w.n_rows[users]
    n_total = int(n.sum())
    row_user = np.repeat(users, n)
    user_first = np.r_[0, np.cumsum(n)[:-1]]
    s = _sessions(w, row_user, user_first, rng)
    ctx_rate, hour_rate = _context_rates(k)
    flow = s.flow[s.sess]
    artist = _pick_artist(w, row_user, flow, rng)
    track = pick_in_segment(w.track_popcum, artist, rng.random(n_total), len(w.track_artist))
    track, tz, replay = _replays(w, row_user, track, flow, user_first, n, rng)
    ts, bogus = _timestamps(w, track, s, rng)
    hour = (ts // 3600) % 24
    weekend = ((ts // DAY + 3) % 7) >= 5  # 1970-01-01 was a Thursday
    c_pos = np.where(s.pos == 0, k.first_in_session, np.where(s.pos == 1, k.second_in_session, 0.0))
    z = (
        tz
        + w.b_user[row_user]
        + flow * w.f_user[row_user]
        + ctx_rate[s.ctx[s.sess]]
        + 0.3 * (s.name[s.sess] == 1)
        + hour_rate[hour]
        + 0.1 * weekend
        + c_pos
        + k.repeat_effect * replay
    )
    train = {
        "user": row_user,
        "track": track,
        "album": w.track_album[track],
        "artist": w.track_artist[track],
        "genre": w.artist_genre[w.track_artist[track]],
        "ts": ts,
        "context": s.ctx[s.sess],
        "family": s.family[s.sess],
        "name": s.name[s.sess],
        "flow": flow.astype(np.int64),
        "z": z,
    }
    last = np.maximum.reduceat(np.where(bogus, 0, ts), user_first)
    return train, _test_rows(w, users, last, ctx_rate, hour_rate, rng)

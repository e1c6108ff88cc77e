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

Layout: `synth_stats` holds the real sample's shares and rates, `synth_world` the knobs, catalogue and
users, `synth_rows` the artist pools and the rows; this module calibrates, draws chunks and writes files.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from flowtui.core import events
from flowtui.core.data.schema import ANSWER_COLUMNS, DTYPES, LABEL, TEST_COLUMNS, TRAIN_COLUMNS
from flowtui.core.data.synth_rows import Rows, build_pools, gen_users
from flowtui.core.data.synth_world import Knobs, World, build_world, logit, sigmoid
from flowtui.core.events import EventCallback

#: The most users a synthetic data set may have: 50x the real DSG17 (a train file of about 24 GB).
MAX_USERS = 1_000_000

if TYPE_CHECKING:
    import pyarrow.csv as pacsv

__all__ = ["CHUNK_USERS", "Knobs", "oracle_auc", "synthesize", "synthesize_frames"]

CHUNK_USERS = 500  # users generated (and written) at a time; fixed so output does not depend on it


# ---------------------------------------------------------------------------------------------------------
# Chunks and calibration


def _full_logit(w: World, rows: Rows) -> np.ndarray:
    fam = np.asarray(w.c_family)[rows["family"]]
    return np.asarray(rows["z"] + w.mu + rows["flow"] * w.c_flow + fam)


def _chunk_rng(chunks_ss: np.random.SeedSequence, c: int) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence(chunks_ss.entropy, spawn_key=(*chunks_ss.spawn_key, c))
    )


def _chunk_users(w: World, c: int) -> np.ndarray:
    return np.arange(c * CHUNK_USERS, min((c + 1) * CHUNK_USERS, w.n_users))


def _n_chunks(n_users: int) -> int:
    return (n_users + CHUNK_USERS - 1) // CHUNK_USERS


def _calibration_rows(
    w: World,
    chunks_ss: np.random.SeedSequence,
    rng: np.random.Generator,
    on_event: EventCallback | None,
    cancel: threading.Event | None,
    max_rows: int,
) -> Rows:
    """A uniform subsample (about `max_rows`) of the logits, listen types and families of every chunk."""
    keep = min(1.0, max_rows / float(w.n_rows.sum()))
    zs, flows, fams = [], [], []
    n_chunks = _n_chunks(w.n_users)
    for c in range(n_chunks):
        events.check_cancel(cancel)
        tr, _ = gen_users(w, _chunk_users(w, c), _chunk_rng(chunks_ss, c))
        sel = rng.random(len(tr["z"])) < keep
        zs.append(tr["z"][sel])
        flows.append(tr["flow"][sel])
        fams.append(tr["family"][sel])
        events.emit(on_event, events.Progress("synth", c + 1, 2 * n_chunks, "calibrating"))
    return {"z": np.concatenate(zs), "flow": np.concatenate(flows), "family": np.concatenate(fams)}


def _calibrate(
    w: World,
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
    rows = _calibration_rows(w, chunks_ss, rng, on_event, cancel, max_rows)
    flow = rows["flow"].astype(bool)
    fam = rows["family"]
    t_flow, t_other = logit(k.flow_rate), logit(k.other_rate)
    t_fam = logit(np.asarray(k.family_rates))
    c_family = np.zeros(3)
    for _ in range(60):
        w.c_family = (float(c_family[0]), float(c_family[1]), float(c_family[2]))
        p = sigmoid(_full_logit(w, rows))
        if (~flow).any():
            w.mu += t_other - logit(float(p[~flow].mean()))
        if flow.any():
            w.c_flow += t_flow - logit(float(p[flow].mean()))
        for f in (1, 2):
            sel = fam == f
            if sel.any():
                c_family[f] += 0.8 * (t_fam[f] - logit(float(p[sel].mean())))
    w.c_family = (float(c_family[0]), float(c_family[1]), float(c_family[2]))


def _make_world(
    n_users: int,
    seed: int,
    knobs: dict[str, Any],
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> tuple[World, np.random.SeedSequence]:
    """The calibrated world of a run and the seed sequence its chunks of users are drawn from."""
    if not 1 <= n_users <= MAX_USERS:
        raise ValueError(
            f"users must be from 1 to {MAX_USERS:,} (the real DSG17 has 19,918), got {n_users:,}"
        )
    valid = {f.name for f in fields(Knobs)}
    unknown = set(knobs) - valid
    if unknown:
        raise ValueError(f"unknown synth knobs: {sorted(unknown)}")
    k = replace(Knobs(), **knobs)
    ss = np.random.SeedSequence(seed)
    world_ss, calib_ss, chunks_ss = ss.spawn(3)
    world_rng = np.random.default_rng(world_ss)
    w = build_world(n_users, world_rng, k)
    build_pools(w, world_rng)
    _calibrate(w, chunks_ss, np.random.default_rng(calib_ss), on_event, cancel)
    return w, chunks_ss


# ---------------------------------------------------------------------------------------------------------
# Tables


def _chunk_tables(w: World, c: int, chunks_ss: np.random.SeedSequence) -> tuple[Rows, Rows]:
    """Train columns (with labels) and test columns (with p_true and labels) of user chunk `c`."""
    rng = _chunk_rng(chunks_ss, c)
    tr, te = gen_users(w, _chunk_users(w, c), rng)
    p = sigmoid(_full_logit(w, tr))
    label = (rng.random(len(p)) < p).astype(np.int8)
    p_test = sigmoid(_full_logit(w, te))
    t_label = (rng.random(len(p_test)) < p_test).astype(np.int8)
    return _columns(w, tr, label), {**_columns(w, te, None), "p_true": p_test, LABEL: t_label}


def _columns(w: World, r: Rows, label: np.ndarray | None) -> dict[str, np.ndarray]:
    """DSG17 columns (real ids, compact dtypes) of generated rows."""
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


def _test_frames(w: World, parts: list[dict[str, np.ndarray]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(test, answers) frames of all chunks' test columns, in `sample_id` order."""
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


# ---------------------------------------------------------------------------------------------------------
# Public entry points


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


def _csv_options() -> pacsv.WriteOptions:
    """Plain CSV like the real files: unquoted header, big batches (pyarrow >= 17 knows quoting_header)."""
    import pyarrow.csv as pacsv

    try:
        return pacsv.WriteOptions(quoting_header="none", batch_size=1 << 16)
    except TypeError:
        return pacsv.WriteOptions(batch_size=1 << 16)


class _TrainCounts:
    """Running totals of the train rows written: rows, listened rows, Flow rows."""

    def __init__(self) -> None:
        self.rows = self.listened = self.flow_rows = 0

    def add(self, tr: dict[str, np.ndarray]) -> None:
        self.rows += len(tr[LABEL])
        self.listened += int(tr[LABEL].sum())
        self.flow_rows += int(tr["listen_type"].sum())


def _write_train(
    w: World,
    chunks_ss: np.random.SeedSequence,
    path: Path,
    on_event: EventCallback | None,
    cancel: threading.Event | None,
) -> tuple[_TrainCounts, list[dict[str, np.ndarray]]]:
    """Stream every chunk's train rows into the CSV at `path`; returns the counts and the test columns."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    n_chunks = _n_chunks(w.n_users)
    counts = _TrainCounts()
    tests: list[dict[str, np.ndarray]] = []
    writer = None
    try:
        for c in range(n_chunks):
            events.check_cancel(cancel)
            tr, te = _chunk_tables(w, c, chunks_ss)
            table = pa.table({col: tr[col] for col in TRAIN_COLUMNS})
            if writer is None:
                writer = pacsv.CSVWriter(str(path), table.schema, write_options=_csv_options())
            writer.write_table(table)
            counts.add(tr)
            tests.append(te)
            events.emit(
                on_event, events.Progress("synth", n_chunks + c + 1, 2 * n_chunks, f"{counts.rows:,} rows")
            )
    finally:
        if writer is not None:
            writer.close()
    return counts, tests


def synthesize(
    n_users: int,
    seed: int = 0,
    out_dir: str | Path = ".",
    *,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
    **knobs: Any,
) -> dict[str, Any]:
    """Write train.csv, test.csv and test_answers.csv into `out_dir`, chunk by chunk and atomically, and
    `synth.json` recording them (an existing file there that flowtui did not write is refused, DataError).

    Emits `Progress(task="synth")` per chunk of users; a cancel raises `Cancelled` and leaves no files.
    Returns {"rows", "users", "test_rows", "listen_rate", "flow_share", "oracle_auc", "seconds", "paths"}.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from flowtui.core.data.outputs import SYNTH_MANIFEST, check_synth_target, synth_manifest
    from flowtui.core.safe_files import atomic_path, atomic_write

    t0 = time.perf_counter()
    if not 1 <= n_users <= MAX_USERS:
        raise ValueError(
            f"users must be from 1 to {MAX_USERS:,} (the real DSG17 has 19,918), got {n_users:,}"
        )
    out = Path(out_dir)
    paths = {name: out / f"{name}.csv" for name in ("train", "test", "test_answers")}
    check_synth_target(out, tuple(p.name for p in paths.values()))
    out.mkdir(parents=True, exist_ok=True)
    events.check_cancel(cancel)
    w, chunks_ss = _make_world(n_users, seed, knobs, on_event, cancel)
    with contextlib.ExitStack() as stack:
        tmp = {name: stack.enter_context(atomic_path(p, make_parents=True)) for name, p in paths.items()}
        counts, tests = _write_train(w, chunks_ss, tmp["train"], on_event, cancel)
        events.check_cancel(cancel)
        test, answers = _test_frames(w, tests)
        pacsv.write_csv(
            pa.Table.from_pandas(test, preserve_index=False), str(tmp["test"]), write_options=_csv_options()
        )
        answers.to_csv(tmp["test_answers"], index=False, float_format="%.6f")
        manifest = synth_manifest({p.name: tmp[name] for name, p in paths.items()}, seed, n_users)
    # After the data files are in place: a crash before this line leaves files no record vouches for, which
    # the next run refuses to replace (safe) rather than a record of files that are not there.
    with atomic_write(out / SYNTH_MANIFEST) as fh:
        fh.write(manifest)
    return {
        "rows": counts.rows,
        "users": n_users,
        "test_rows": len(test),
        "listen_rate": counts.listened / counts.rows,
        "flow_share": counts.flow_rows / counts.rows,
        "oracle_auc": oracle_auc(answers),
        "seconds": time.perf_counter() - t0,
        "paths": {name: str(p) for name, p in paths.items()},
    }

"""Does a saved model meet the data it was trained on? `check_data` answers before any prediction.

A saved model records its training data: the content fingerprint (`fingerprint`), the row count, the file
it came from, and compact sketches of its user and media ids (`data_sketch.json` in the model folder, written
by `write_sketch` and read back by `read_training_data`).
A sketch holds every distinct id when there are at most `SKETCH_SIZE` of them, else the `SKETCH_SIZE` ids
with the smallest hash (a bottom-k sample). For any later set of ids, the ids that hash at or below the
sample's largest hash are exactly those the sample can answer for, so the share of them found in the sample
estimates the share of all later ids that the training data held (exact for small vocabularies).

The rule (`check_data(trained, frame, rows=..., allow_other=...)`):
1. `frame` has the training data's fingerprint: the same data, fine.
2. Otherwise the distinct users and media of `rows` (default: `frame`) are looked up: when at least
   `MIN_KNOWN` (50%) of each are known to the model, it is fine with a warning line giving the shares.
3. Otherwise `DataMismatchError` (a DataError naming both data sets), unless `allow_other=True`: then a
   warning with the shares.
Models saved before data sketches existed fall back on the vocabulary inside the model (rbm, dbn, hybrid);
other old models can only be used on other data with `allow_other=True`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from flowtui.core.errors import DataError
from flowtui.core.modelfiles.kind import ModelFolderError, read_json

SKETCH_FILE = "data_sketch.json"
SKETCH_FORMAT = "flowtui-data-sketch"
#: Ids kept per sketch: all of them up to this many, else a bottom-k sample of this size.
SKETCH_SIZE = 1 << 16
#: Share of the given users and media the model must know for data other than its training data.
MIN_KNOWN = 0.5
#: Fewest sampled ids an estimate from a bottom-k sample is made from (fewer: no estimate).
MIN_SAMPLE = 5


class DataMismatchError(DataError):
    """Data that is not the model's training data and shares too few users or media with it."""


def fingerprint(frame: pd.DataFrame) -> str:
    """A short content hash of a data frame: its row count and a SHA-1 of its row hashes."""
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return f"{len(frame)}:{hashlib.sha1(hashes.tobytes()).hexdigest()[:16]}"


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a fixed, well-spread 64-bit hash of each integer id (vectorised)."""
    z = np.asarray(values, dtype=np.int64).view(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return np.asarray(z ^ (z >> np.uint64(31)))


@dataclass(frozen=True)
class IdSketch:
    """The distinct ids of one column: `n` of them; `ids` all of them (`tau` None) or the bottom-k sample
    by hash, `tau` being the largest hash in it."""

    n: int
    ids: np.ndarray  # sorted int64
    tau: int | None = None

    @classmethod
    def of(cls, values: np.ndarray | pd.Series, size: int = SKETCH_SIZE) -> IdSketch:
        u = np.unique(np.asarray(values, dtype=np.int64))
        if len(u) <= size:
            return cls(len(u), u)
        h = _mix(u)
        pick = np.argpartition(h, size - 1)[:size]
        return cls(len(u), np.sort(u[pick]), int(h[pick].max()))

    def known_share(self, values: np.ndarray | pd.Series) -> float | None:
        """Share of the distinct `values` that were among the sketched ids (None: cannot tell)."""
        u = np.unique(np.asarray(values, dtype=np.int64))
        if self.tau is not None:
            u = u[_mix(u) <= np.uint64(self.tau)]
            if len(u) < MIN_SAMPLE:
                return None
        if len(u) == 0:
            return None
        return float(np.isin(u, self.ids, assume_unique=True).mean())

    def to_doc(self) -> dict[str, Any]:
        deltas = np.diff(self.ids, prepend=np.int64(0)).astype("<i8")
        packed = base64.b64encode(zlib.compress(deltas.tobytes(), 6)).decode("ascii")
        return {
            "n": self.n,
            "k": len(self.ids),
            "tau": None if self.tau is None else str(self.tau),
            "ids": packed,
        }

    @classmethod
    def from_doc(cls, doc: Any) -> IdSketch:
        """The sketch of `to_doc`; ValueError on anything malformed."""
        if not isinstance(doc, dict):
            raise ValueError("an id sketch is not an object")
        n, k, tau, packed = doc.get("n"), doc.get("k"), doc.get("tau"), doc.get("ids")
        if not (isinstance(n, int) and isinstance(k, int) and 0 <= k <= min(n, SKETCH_SIZE)):
            raise ValueError("an id sketch has bad counts")
        if not isinstance(packed, str) or not (tau is None or (isinstance(tau, str) and tau.isdigit())):
            raise ValueError("an id sketch has bad fields")
        if (tau is None) != (k == n):
            raise ValueError("an id sketch is neither complete nor a sample")
        d = zlib.decompressobj()
        raw = d.decompress(base64.b64decode(packed, validate=True), 8 * k + 1)
        if len(raw) != 8 * k or d.unconsumed_tail or not d.eof:
            raise ValueError("an id sketch holds the wrong number of ids")
        deltas = np.frombuffer(raw, dtype="<i8")
        if k > 1 and (deltas[1:] <= 0).any():
            raise ValueError("an id sketch is not sorted")
        return cls(n, np.cumsum(deltas).astype(np.int64), None if tau is None else int(tau))


@dataclass(frozen=True)
class DataDescription:
    """What a model was trained on: where from, how much, its fingerprint, and its user and media ids."""

    source: str | None
    rows: int
    fingerprint: str
    users: IdSketch
    items: IdSketch

    def label(self) -> str:
        """e.g. "/data/train.csv (7,558,834 rows, fingerprint 7558834:1a2b...)"."""
        name = self.source or "unnamed data"
        return f"{name} ({self.rows:,} rows, fingerprint {self.fingerprint or '?'})"

    def summary(self) -> dict[str, Any]:
        """The part of meta.json["data"] a person reads."""
        return {
            "source": self.source,
            "rows": self.rows,
            "users": self.users.n,
            "items": self.items.n,
            "fingerprint": self.fingerprint,
            "sketch": SKETCH_FILE,
        }

    def sketch_doc(self) -> dict[str, Any]:
        """The content of `data_sketch.json`."""
        return {
            "format": SKETCH_FORMAT,
            "version": 1,
            "hash": "splitmix64",
            "users": self.users.to_doc(),
            "items": self.items.to_doc(),
        }

    @classmethod
    def from_docs(cls, summary: dict[str, Any], doc: Any) -> DataDescription:
        """Rebuild from meta.json["data"] and the sketch file's JSON; ValueError when malformed."""
        if not isinstance(doc, dict) or doc.get("format") != SKETCH_FORMAT or doc.get("version") != 1:
            raise ValueError(f"{SKETCH_FILE} is not a flowtui data sketch of version 1")
        if doc.get("hash") != "splitmix64":
            raise ValueError(f"{SKETCH_FILE} uses an unknown hash {doc.get('hash')!r}")
        source, rows = summary.get("source"), summary.get("rows")
        if not (source is None or isinstance(source, str)) or type(rows) is not int or rows < 0:
            raise ValueError('meta.json "data" has a bad source or row count')
        users, items = IdSketch.from_doc(doc.get("users")), IdSketch.from_doc(doc.get("items"))
        for key, sketch in (("users", users), ("items", items)):
            if key in summary and summary[key] != sketch.n:
                raise ValueError(f'meta.json "data" counts {summary[key]!r} {key}; its sketch {sketch.n}')
        return cls(source, rows, str(summary.get("fingerprint", "")), users, items)


def frame_source(frame: pd.DataFrame) -> str | None:
    """The file a frame was read from, when the reader recorded it in `frame.attrs["source"]`."""
    src = frame.attrs.get("source")
    return str(src) if src else None


def describe_data(frame: pd.DataFrame, fingerprint: str, *, source: str | None = None) -> DataDescription:
    """The description of training data `frame` (`fingerprint` is `fingerprint(frame)`)."""
    source = source or frame_source(frame)
    if source is not None:
        source = os.path.abspath(source)
    empty = np.empty(0, dtype=np.int64)
    users = frame["user_id"].to_numpy() if "user_id" in frame.columns else empty
    items = frame["media_id"].to_numpy() if "media_id" in frame.columns else empty
    return DataDescription(source, len(frame), fingerprint, IdSketch.of(users), IdSketch.of(items))


def write_sketch(folder: Path, data: DataDescription) -> None:
    """Write `data`'s id sketches as `folder/data_sketch.json`, unless the model wrote its own there."""
    if not (folder / SKETCH_FILE).exists():
        (folder / SKETCH_FILE).write_text(json.dumps(data.sketch_doc()))


def read_training_data(
    folder: Path, files: dict[str, Any], summary: object, error: type[ModelFolderError]
) -> DataDescription | None:
    """The training data a model folder records: meta.json "data" (`summary`: empty when none) and the
    sketch file it names, which must be among the folder's `files`; `error` when either is damaged."""
    if not summary:
        return None
    if not isinstance(summary, dict) or summary.get("sketch") != SKETCH_FILE or SKETCH_FILE not in files:
        raise error(folder / "meta.json", f"meta.json: 'data' does not name a listed {SKETCH_FILE}")
    doc = read_json(folder / SKETCH_FILE, SKETCH_FILE, error)
    try:
        return DataDescription.from_docs(summary, doc)
    except (ValueError, TypeError, zlib.error) as exc:  # binascii.Error is a ValueError
        raise error(folder / SKETCH_FILE, f"damaged data sketch ({exc})") from None


class TrainedLike(Protocol):
    """What `check_data` reads of a loaded model (a Flow `TrainedModel`)."""

    @property
    def name(self) -> str: ...
    @property
    def model(self) -> Any: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def data(self) -> DataDescription | None: ...


@dataclass(frozen=True)
class DataMatch:
    """The answer of `check_data`: same data, or other data with the shares of it the model knows.

    `warning` is one line to show the user (None for the same data); `user_known`/`item_known` are the
    shares of the given distinct users/media known to the model (None when they could not be told)."""

    same: bool
    user_known: float | None = None
    item_known: float | None = None
    warning: str | None = None


def _vocabulary(model: Any) -> tuple[IdSketch | None, IdSketch | None]:
    """The ids inside a collaborative model (rbm, dbn, or hybrid's rbm), for models without a sketch."""
    inner = getattr(model, "rbm_", model)
    users, items = getattr(inner, "user_ids_", None), getattr(inner, "item_ids_", None)

    def as_sketch(a: object) -> IdSketch | None:
        return IdSketch.of(a, size=max(len(a), 1)) if isinstance(a, np.ndarray) and len(a) else None

    return as_sketch(users), as_sketch(items)


def _pct(share: float | None) -> str:
    return "?" if share is None else f"{100 * share:.0f}%"


def check_data(
    trained: TrainedLike,
    frame: pd.DataFrame,
    *,
    rows: pd.DataFrame | None = None,
    source: str | None = None,
    allow_other: bool = False,
) -> DataMatch:
    """May `trained` be used with `frame`? See the module docstring for the rule.

    `frame` is the data the model is about to be used with (e.g. the train history `predict` builds features
    from); `rows` the rows it will score (e.g. the test file; default `frame`), whose users and media are
    looked up; `source` names the given file in messages (default: `frame.attrs["source"]`). Returns a
    `DataMatch`; raises `DataMismatchError` when the data is not the model's and too little of it is known
    (unless `allow_other`). Call it before predicting, recommending or evaluating with a loaded model.
    """
    given = source or frame_source(frame) or "the given data"
    if trained.fingerprint and fingerprint(frame) == trained.fingerprint:
        return DataMatch(same=True, user_known=1.0, item_known=1.0)
    scored = frame if rows is None else rows
    desc = trained.data
    users: IdSketch | None
    items: IdSketch | None
    if desc is not None:
        users, items, trained_on = desc.users, desc.items, desc.label()
    else:
        users, items = _vocabulary(trained.model)
        trained_on = f"data with fingerprint {trained.fingerprint or '?'}"
    share = {
        key: None
        if sketch is None or col not in scored.columns
        else sketch.known_share(scored[col].to_numpy())
        for key, sketch, col in (("users", users, "user_id"), ("items", items, "media_id"))
    }
    u, i = share["users"], share["items"]
    known = [s for s in (u, i) if s is not None]
    head = f"not the data {trained.name} was trained on ({trained_on})"
    if len(scored) == 0:
        return DataMatch(False, u, i, f"{given}: {head}; it has no rows to compare")
    if not known:
        why = (
            "the model records no description of its training data"
            if users is None and items is None
            else "too few of its ids can be compared"
        )
        if not allow_other:
            raise DataMismatchError(given, f"{head}, and {why}")
        return DataMatch(False, u, i, f"{given}: {head}, and {why}; used anyway")
    return _share_verdict(given, head, u, i, allow_other)


def _share_verdict(given: str, head: str, u: float | None, i: float | None, allow_other: bool) -> DataMatch:
    """The verdict on other data of which the known shares `u` (users) and `i` (media) were measured (one
    at least): fine with a warning from `MIN_KNOWN` up, else DataMismatchError unless `allow_other`."""
    shares = f"{_pct(u)} of its users and {_pct(i)} of its media are known to the model"
    if min(s for s in (u, i) if s is not None) >= MIN_KNOWN:
        return DataMatch(False, u, i, f"{given}: {head}; {shares}")
    if not allow_other:
        raise DataMismatchError(given, f"{head}: only {shares} (at least {MIN_KNOWN:.0%} of each needed)")
    return DataMatch(False, u, i, f"{given}: {head}; only {shares}; used anyway")

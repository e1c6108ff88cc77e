"""The ids an imported log had before `data import` renumbered them, kept beside the data set.

`flowtui data import LOG --out OUT` writes OUT (a DSG17 train file whose user, item, artist and genre ids
are dense integers ranked by activity) and `OUT.ids.json`, which maps each internal id back to the log's
own id (a string, as the log wrote it). The two are written atomically, the map first, and the map holds a
checksum of the data it belongs to: a map that does not match its data (the data was rewritten or edited
after the import, or a crash fell between the two renames) is refused, never used to show wrong ids.

    ids = IdMap.for_dataset(path)          # None: the file was not imported, its ids are its own
    ids.user_internal("alice")             # -> 0; an unknown id is a DataError, not a KeyError
    ids.item_ids(np.array([3, 0]))         # -> array(['song-b', 'song-x'], dtype=object)

File layout (JSON, version 1): {"format": "flowtui-idmap", "version": 1, "data": {"name", "size",
"checksum"}, "log": the imported log's path, "columns": {"user", "item", "artist", "genre"}, "users",
"items": lists of original ids indexed by internal id, "artists": the same or null (artist ids are then the
item ids), "genres": the original genre of internal genre g at index g - 1 (0 is "no genre") or null}.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from flowtui.core.data.cache import file_digest
from flowtui.core.errors import DataError

__all__ = ["IDS_SUFFIX", "IdMap", "data_checksum", "ids_path"]

IDS_SUFFIX = ".ids.json"
_FORMAT = "flowtui-idmap"
_VERSION = 1

#: An internal id or an array of them.
Internal = int | np.integer[Any] | npt.ArrayLike


def ids_path(data: str | Path) -> Path:
    """Where the id map of data set `data` lives: `data` + ".ids.json", beside it."""
    p = Path(data)
    return p.with_name(p.name + IDS_SUFFIX)


def data_checksum(data: str | Path) -> str:
    """A checksum of all of a data file's bytes (CRC-32 per 4 MiB chunk under blake2b; see `cache`)."""
    return file_digest(Path(data)).hex()


def _ids(source: Path, doc: dict[str, Any], key: str) -> list[str]:
    """`doc[key]` checked: a non-empty list of distinct strings."""
    value = doc[key]
    if not isinstance(value, list) or not value:
        raise DataError(
            source,
            f"damaged id map: {key!r}",
            expected="a non-empty list of ids",
            found=type(value).__name__ if not isinstance(value, list) else "an empty list",
        )
    odd = [v for v in value if not isinstance(v, str)]
    if odd:
        raise DataError(
            source,
            f"damaged id map: {key!r}",
            expected="ids as strings",
            found=repr(odd[0])[:40],
            count=len(odd),
        )
    if len(set(value)) != len(value):
        raise DataError(
            source,
            f"damaged id map: {key!r}",
            expected="distinct ids",
            found=f"{len(value) - len(set(value))} repeated",
        )
    return value


def _check_columns(source: Path, columns: object) -> None:
    if not isinstance(columns, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in columns.items()
    ):
        raise DataError(source, "damaged id map: 'columns'", expected="an object of column names")


@dataclass(frozen=True)
class _Axis:
    """One renumbered column: the original ids in internal-id order (internal = position + offset)."""

    name: str  # "user", "item", "artist", "genre"
    column: str  # the DSG17 column it fills
    originals: np.ndarray  # object array of str
    offset: int = 0
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def to_original(self, internal: Internal, source: Path | None) -> Any:
        arr = np.asarray(internal)
        if arr.dtype.kind not in "iu":
            if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.floor(arr)):
                arr = arr.astype(np.int64)
            else:
                raise DataError(
                    source, f"not an internal {self.name} id", column=self.column, expected="integers"
                )
        pos = arr.astype(np.int64) - self.offset
        bad = (pos < 0) | (pos >= len(self.originals))
        if np.any(bad):
            first = int(arr.reshape(-1)[np.argmax(np.asarray(bad).reshape(-1))])
            raise DataError(
                source,
                f"internal {self.name} id outside the id map",
                column=self.column,
                expected=f"{self.offset}..{self.offset + len(self.originals) - 1}",
                found=str(first),
                count=int(np.count_nonzero(bad)) if arr.size > 1 else None,
            )
        out = self.originals[pos]
        return str(out) if np.ndim(out) == 0 else out

    def to_internal(self, original: object, source: Path | None) -> int:
        if not self._index:
            self._index.update({str(v): i for i, v in enumerate(self.originals)})
        key = str(original)
        i = self._index.get(key)
        if i is None:
            examples = [f"{v!r}" for v in self.originals[:3]]
            raise DataError(
                source,
                f"unknown {self.name} id: not in the imported log",
                column=self.column,
                expected=f"one of the log's {len(self.originals):,} {self.name} ids (e.g. {', '.join(examples)})",
                found=repr(key),
            )
        return i + self.offset


class IdMap:
    """Internal ids of an imported data set <-> the log's own ids (strings)."""

    def __init__(
        self,
        users: Sequence[str] | np.ndarray,
        items: Sequence[str] | np.ndarray,
        artists: Sequence[str] | np.ndarray | None = None,
        genres: Sequence[str] | np.ndarray | None = None,
        *,
        columns: dict[str, str | None] | None = None,
        source: Path | None = None,
    ) -> None:
        def obj(v: Sequence[str] | np.ndarray) -> np.ndarray:
            return np.array([str(x) for x in v], dtype=object)

        self.source = source  # the .ids.json file, for messages
        self.columns = dict(columns or {})
        self._users = _Axis("user", "user_id", obj(users))
        self._items = _Axis("item", "media_id", obj(items))
        self._artists = _Axis("artist", "artist_id", obj(artists)) if artists is not None else None
        self._genres = _Axis("genre", "genre_id", obj(genres), offset=1) if genres is not None else None

    # ----- reading ------------------------------------------------------------------------------------

    @classmethod
    def for_dataset(cls, path: str | Path) -> IdMap | None:
        """The id map kept beside data set `path`, or None when there is none (its ids are its own).

        Raises DataError when the map is unreadable, of another format, or does not belong to the data
        as it is now (it was rewritten or edited after the import)."""
        data = Path(path)
        ids = ids_path(data)
        if not ids.is_file():
            return None
        try:
            doc = json.loads(ids.read_text(encoding="utf-8"))
            if doc.get("format") != _FORMAT or doc.get("version") != _VERSION:
                raise DataError(
                    ids, "not a flowtui id map", expected=f"format {_FORMAT!r} version {_VERSION}"
                )
            want = doc["data"]["checksum"]
            columns = doc.get("columns") or {}
            users, items = _ids(ids, doc, "users"), _ids(ids, doc, "items")
            artists = None if doc.get("artists") is None else _ids(ids, doc, "artists")
            genres = None if doc.get("genres") is None else _ids(ids, doc, "genres")
        except (
            OSError,
            UnicodeError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            RecursionError,
        ) as exc:
            raise DataError(ids, f"the id map cannot be read ({type(exc).__name__})") from None
        _check_columns(ids, columns)
        try:
            have = data_checksum(data)
        except OSError as exc:
            raise DataError(data, f"cannot read file: {exc.strerror or exc}") from None
        if have != want:
            raise DataError(
                ids,
                f"this id map does not belong to {data.name} as it is now (the data changed after the "
                f"import): run `flowtui data import` again, or remove {ids.name}",
            )
        return cls(users, items, artists, genres, columns=columns, source=ids)

    # ----- internal -> original -----------------------------------------------------------------------

    @overload
    def user_ids(self, internal: int | np.integer[Any]) -> str: ...
    @overload
    def user_ids(self, internal: npt.ArrayLike) -> np.ndarray: ...
    def user_ids(self, internal: Internal) -> Any:
        """The log's user id of internal id(s) `internal` (a str, or an object array of them)."""
        return self._users.to_original(internal, self.source)

    @overload
    def item_ids(self, internal: int | np.integer[Any]) -> str: ...
    @overload
    def item_ids(self, internal: npt.ArrayLike) -> np.ndarray: ...
    def item_ids(self, internal: Internal) -> Any:
        """The log's item id of internal `media_id`(s) (`album_id` holds the same ids)."""
        return self._items.to_original(internal, self.source)

    @overload
    def artist_ids(self, internal: int | np.integer[Any]) -> str: ...
    @overload
    def artist_ids(self, internal: npt.ArrayLike) -> np.ndarray: ...
    def artist_ids(self, internal: Internal) -> Any:
        """The log's artist of internal `artist_id`(s); without an artist column, the item's id."""
        return (self._artists or self._items).to_original(internal, self.source)

    @overload
    def genre_ids(self, internal: int | np.integer[Any]) -> str: ...
    @overload
    def genre_ids(self, internal: npt.ArrayLike) -> np.ndarray: ...
    def genre_ids(self, internal: Internal) -> Any:
        """The log's genre of internal `genre_id`(s) (from 1); without a genre column every row has genre
        0, shown as "0"."""
        if self._genres is None:
            arr = np.asarray(internal)
            if np.ndim(arr) == 0:
                return str(arr.item())
            return np.array([str(x) for x in arr.reshape(-1)], dtype=object).reshape(arr.shape)
        return self._genres.to_original(internal, self.source)

    # ----- original -> internal -----------------------------------------------------------------------

    def user_internal(self, original: object) -> int:
        """The internal `user_id` of the log's user `original` (compared as text); DataError if unknown."""
        return self._users.to_internal(original, self.source)

    def item_internal(self, original: object) -> int:
        """The internal `media_id` of the log's item `original`; DataError if unknown."""
        return self._items.to_internal(original, self.source)

    def artist_internal(self, original: object) -> int:
        """The internal `artist_id` of the log's artist `original`; DataError if unknown."""
        return (self._artists or self._items).to_internal(original, self.source)

    def genre_internal(self, original: object) -> int:
        """The internal `genre_id` of the log's genre `original`; DataError if unknown (or no genres)."""
        if self._genres is None:
            raise DataError(self.source, "the imported log had no genre column", column="genre_id")
        return self._genres.to_internal(original, self.source)

    @property
    def n_users(self) -> int:
        return len(self._users.originals)

    @property
    def n_items(self) -> int:
        return len(self._items.originals)

    # ----- writing ------------------------------------------------------------------------------------

    def to_json(self, checksum: str, data_name: str, size: int, log: str | None = None) -> str:
        """The map as the JSON document `for_dataset` reads, bound to data with this checksum."""
        doc = {
            "format": _FORMAT,
            "version": _VERSION,
            "data": {"name": data_name, "size": size, "checksum": checksum},
            "log": log,
            "columns": self.columns,
            "users": self._users.originals.tolist(),
            "items": self._items.originals.tolist(),
            "artists": None if self._artists is None else self._artists.originals.tolist(),
            "genres": None if self._genres is None else self._genres.originals.tolist(),
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"

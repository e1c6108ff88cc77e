"""Imported logs keep their own ids: `OUT.ids.json` beside the data, and `IdMap` to read it.

Bad inputs tried here (class C): 3 unknown original ids, 3 internal ids outside the map, 1 edited data
file, 1 rewritten data file, 3 damaged maps, 1 crash between the two renames, 2 unsafe outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flowtui.cli import app
from flowtui.core import safe_files
from flowtui.core.data.idmap import IdMap, ids_path
from flowtui.core.data.importer import import_log_with_ids, save_import
from flowtui.core.data.io import load_dataset
from flowtui.core.errors import DataError
from flowtui.core.safe_files import write_csv
from tests.data.test_validation import train_frame

# String ids of every sort: spaces, commas in quotes, unicode, numbers that are not the internal ones.
LOG = (
    "user,track,artist,genre,plays\n"
    "alice,song-x,Radiohead,rock,4\n"
    '"smith, bob",song-y,Beck,"folk, anti",1\n'
    "alice,song-y,Beck,folk,3\n"
    "007,7,Sigur Rós,post-rock,9\n"
    "7,song-x,Radiohead,rock,0\n"
    "alice,Ünïcödé ♫,Björk,pop,2\n"
    "007,song-x,Radiohead,rock,5\n"
)


@pytest.fixture
def imported(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    log = tmp_path / "plays.csv"
    log.write_text(LOG, encoding="utf-8")
    out = tmp_path / "out" / "train.csv"
    result = import_log_with_ids(
        log, user="user", item="track", artist="artist", genre="genre", weight="plays", threshold=3
    )
    assert save_import(result, out) == ids_path(out) == tmp_path / "out" / "train.csv.ids.json"
    return out, pd.read_csv(log, dtype=str, keep_default_na=False)


def test_round_trip_every_id_is_one_of_the_logs(imported: tuple[Path, pd.DataFrame]) -> None:
    out, log = imported
    frame = load_dataset(out, use_cache=False).frame
    ids = IdMap.for_dataset(out)
    assert ids is not None and ids.n_users == 4 and ids.n_items == 4
    users = ids.user_ids(frame["user_id"].to_numpy())
    items = ids.item_ids(frame["media_id"].to_numpy())
    artists = ids.artist_ids(frame["artist_id"].to_numpy())
    genres = ids.genre_ids(frame["genre_id"].to_numpy())
    # row by row, the imported frame mapped back is the log itself
    assert users.tolist() == log["user"].tolist()
    assert items.tolist() == log["track"].tolist()
    assert ids.item_ids(frame["album_id"].to_numpy()).tolist() == log["track"].tolist()
    assert artists.tolist() == log["artist"].tolist()
    assert genres.tolist() == log["genre"].tolist()
    # and back again
    for u in set(log["user"]):
        assert ids.user_ids(ids.user_internal(u)) == u
    for t in set(log["track"]):
        assert ids.item_ids(ids.item_internal(t)) == t
    assert ids.user_internal("alice") == 0  # the most active user, as in DSG17
    assert ids.user_internal("007") != ids.user_internal("7")  # ids are compared as the log wrote them
    assert ids.genre_internal("folk, anti") >= 1 and ids.artist_internal("Björk") >= 0


def test_scalar_and_array_lookups(imported: tuple[Path, pd.DataFrame]) -> None:
    ids = IdMap.for_dataset(imported[0])
    assert ids is not None
    assert isinstance(ids.user_ids(0), str) and isinstance(ids.user_ids(np.int32(0)), str)
    arr = ids.item_ids([[0, 1], [1, 0]])
    assert arr.shape == (2, 2) and arr[0, 0] == arr[1, 1]


@pytest.mark.parametrize("unknown", ["carol", "ALICE", 42])
def test_unknown_original_id_is_a_clear_data_error(
    imported: tuple[Path, pd.DataFrame], unknown: object
) -> None:
    ids = IdMap.for_dataset(imported[0])
    assert ids is not None
    with pytest.raises(DataError) as info:
        ids.user_internal(unknown)
    err = info.value
    assert err.message == "unknown user id: not in the imported log" and err.column == "user_id"
    assert err.found == repr(str(unknown)) and "4 user ids" in (err.expected or "")


@pytest.mark.parametrize("internal", [4, -1, [0, 99]])
def test_internal_id_outside_the_map_is_a_data_error(
    imported: tuple[Path, pd.DataFrame], internal: object
) -> None:
    ids = IdMap.for_dataset(imported[0])
    assert ids is not None
    with pytest.raises(DataError, match="internal user id outside the id map"):
        ids.user_ids(internal)  # type: ignore[arg-type]


def test_no_map_means_own_ids(tmp_path: Path) -> None:
    p = tmp_path / "train.csv"
    write_csv(train_frame(), p)
    assert IdMap.for_dataset(p) is None


def test_edited_data_refuses_its_map(imported: tuple[Path, pd.DataFrame]) -> None:
    out, _ = imported
    text = out.read_text()
    out.write_text(text + text.splitlines()[-1] + "\n")  # one row more, ids unchanged
    with pytest.raises(DataError, match="does not belong to train"):
        IdMap.for_dataset(out)


def test_data_rewritten_by_another_writer_refuses_the_map(imported: tuple[Path, pd.DataFrame]) -> None:
    out, _ = imported
    write_csv(train_frame(), out)  # e.g. `data synth` or a plain write over an imported file
    with pytest.raises(DataError, match="run `flowtui data import` again"):
        IdMap.for_dataset(out)


@pytest.mark.parametrize(
    "damage",
    [
        "{not json",
        json.dumps({"format": "other", "version": 1}),
        json.dumps({"format": "flowtui-idmap", "version": 1}),
    ],
)
def test_unreadable_map_is_a_data_error(imported: tuple[Path, pd.DataFrame], damage: str) -> None:
    out, _ = imported
    ids_path(out).write_text(damage)
    with pytest.raises(DataError) as info:
        IdMap.for_dataset(out)
    assert info.value.path == str(ids_path(out))


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


TAMPER = {
    "items empty": lambda d: {**d, "items": []},
    "users empty": lambda d: {**d, "users": []},
    "users an object": lambda d: {**d, "users": {str(i): u for i, u in enumerate(d["users"])}},
    "users not strings": lambda d: {**d, "users": list(range(len(d["users"])))},
    "users repeated": lambda d: {**d, "users": [d["users"][0], *d["users"][:-1]]},
    "items repeated": lambda d: {**d, "items": [d["items"][0]] * len(d["items"])},
    "items a string": lambda d: {**d, "items": "abc"},
    "columns a list": lambda d: {**d, "columns": ["user"]},
    "users deeply nested": lambda d: {**d, "users": "NESTED"},
}


@pytest.mark.parametrize("how", list(TAMPER))
def test_tampered_map_with_its_data_checksum_kept_is_refused(
    imported: tuple[Path, pd.DataFrame], how: str
) -> None:
    """The map's checksum binds it to the data, not the map's own content: the content is checked too."""
    out, _ = imported
    doc = json.loads(ids_path(out).read_text())
    text = json.dumps(TAMPER[how](doc)).replace('"NESTED"', _nested(100_000))
    ids_path(out).write_text(text)
    with pytest.raises(DataError) as info:
        IdMap.for_dataset(out)
    assert info.value.path == str(ids_path(out)) and "\n" not in str(info.value)


def test_a_deeply_nested_map_is_one_line_in_the_cli(tmp_path: Path) -> None:
    log = tmp_path / "plays.csv"
    log.write_text("user,artist,liked\nu1,a,1\nu2,b,0\n")
    out = tmp_path / "train.csv"
    args = [
        "data",
        "import",
        str(log),
        "--user",
        "user",
        "--item",
        "artist",
        "--label",
        "liked",
        "--out",
        str(out),
    ]
    assert CliRunner().invoke(app, args).exit_code == 0
    ids_path(out).write_text(_nested(200_000))
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "Traceback" not in r.output and not isinstance(r.exception, RecursionError)


def test_crash_between_the_two_renames_never_gives_a_wrong_map(
    tmp_path: Path, imported: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The map is renamed into place first; a crash before the data's rename leaves a new map beside the
    old data, which is refused (never silently used)."""
    out, _ = imported
    log = tmp_path / "other.csv"
    log.write_text("u,i,y\nzed,t9,1\nzed,t8,0\nyan,t9,1\n")
    other = import_log_with_ids(log, user="u", item="i", label="y")
    real_replace = safe_files.os.replace

    def crash_on_data(src: str, dst: str) -> None:
        if Path(dst) == out:
            raise KeyboardInterrupt("crash")
        real_replace(src, dst)

    monkeypatch.setattr(safe_files.os, "replace", crash_on_data)
    with pytest.raises(KeyboardInterrupt):
        save_import(other, out)
    monkeypatch.undo()
    with pytest.raises(DataError, match="does not belong"):
        IdMap.for_dataset(out)
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("what", ["data is a folder", "map is a symlink"])
def test_unsafe_outputs_are_refused_before_writing(tmp_path: Path, what: str) -> None:
    log = tmp_path / "log.csv"
    log.write_text("u,i,y\na,x,1\n")
    result = import_log_with_ids(log, user="u", item="i", label="y")
    out = tmp_path / "train.csv"
    if what == "data is a folder":
        out.mkdir()
    else:
        ids_path(out).symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(DataError):
        save_import(result, out)
    assert not (tmp_path / "elsewhere.json").exists()
    assert what == "data is a folder" or not out.exists()


def test_cli_import_writes_the_map_and_names_it(tmp_path: Path) -> None:
    log = tmp_path / "plays.tsv"
    log.write_text("user\tsong\tplays\nana\tfoo bar\t5\nbo\tbaz\t1\nana\tbaz\t9\n")
    out = tmp_path / "train.csv"
    args = ["data", "import", str(log), "--user", "user", "--item", "song", "--weight", "plays"]
    r = CliRunner().invoke(app, [*args, "--threshold", "3", "--sep", "\\t", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ids"] == str(ids_path(out)) and doc["rows"] == 3
    ids = IdMap.for_dataset(out)
    assert ids is not None and ids.user_ids(0) == "ana" and set(ids.item_ids([0, 1])) == {"foo bar", "baz"}

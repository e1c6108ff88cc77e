"""Reading train rows on the workers: folders of parts, one big file in blocks, refused parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("dask.dataframe", reason="the cluster extra is not installed")
pytest.importorskip("distributed", reason="the cluster extra is not installed")

from flowtui.core.cluster.executor import compute
from flowtui.core.cluster.source import ROW, fingerprint, list_parts, read_train
from flowtui.core.data.io import from_frame
from flowtui.core.data.schema import TRAIN_COLUMNS
from flowtui.core.errors import DataError
from flowtui.core.modelfiles import fingerprint as single_fingerprint


@pytest.fixture(scope="module")
def rows(synth_train: pd.DataFrame) -> pd.DataFrame:
    """The first 6000 synthetic rows in compact dtypes (as load_dataset returns them)."""
    return from_frame(synth_train.iloc[:6000]).frame


def read_back(session: Any, path: Path, **kwargs: Any) -> pd.DataFrame:
    got = compute(session.client, read_train(path, **kwargs))
    return got.sort_values(ROW, kind="stable").drop(columns=[ROW]).reset_index(drop=True)


def write_parts(frame: pd.DataFrame, folder: Path, n: int, fmt: str) -> None:
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(frame)), n)):
        chunk = frame.iloc[part]
        if fmt == "parquet":
            pq.write_table(
                pa.Table.from_pandas(chunk, preserve_index=False), folder / f"part-{i:03d}.parquet"
            )
        else:
            chunk.to_csv(folder / f"part-{i:03d}.csv", index=False)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_folder_of_parts_in_name_order(session: Any, rows: pd.DataFrame, tmp_path: Path, fmt: str) -> None:
    write_parts(rows, tmp_path / "parts", 4, fmt)
    got = read_back(session, tmp_path / "parts")
    pd.testing.assert_frame_equal(got, rows)  # same rows, order and compact dtypes
    # The same fingerprint as one machine's for the same rows (saved models compare it with loaded data).
    fp = compute(session.client, fingerprint(read_train(tmp_path / "parts")))
    assert fp == single_fingerprint(rows)


def test_one_big_file_is_read_in_blocks(session: Any, rows: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    rows.to_csv(path, index=False)
    frame = read_train(path, blocksize=50_000)
    assert frame.npartitions > 3
    pd.testing.assert_frame_equal(read_back(session, path, blocksize=50_000), rows)
    # One parquet file: one partition per row group.
    pq.write_table(
        pa.Table.from_pandas(rows, preserve_index=False), tmp_path / "train.parquet", row_group_size=1500
    )
    assert read_train(tmp_path / "train.parquet").npartitions == 4
    pd.testing.assert_frame_equal(read_back(session, tmp_path / "train.parquet"), rows)


def test_a_refused_part_names_its_file_and_line(session: Any, rows: pd.DataFrame, tmp_path: Path) -> None:
    write_parts(rows, tmp_path / "parts", 3, "csv")
    bad = tmp_path / "parts" / "part-001.csv"
    lines = bad.read_text().splitlines()
    cells = lines[5].split(",")
    cells[TRAIN_COLUMNS.index("is_listened")] = "7"
    lines[5] = ",".join(cells)
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        read_back(session, tmp_path / "parts")
    assert info.value.path == str(bad) and info.value.line == 6 and info.value.column == "is_listened"


def test_list_parts_refuses_empty_mixed_and_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        list_parts(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no parquet or CSV parts"):
        list_parts(tmp_path / "empty")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.csv").write_text("x\n")
    (mixed / "b.parquet").write_bytes(b"")
    with pytest.raises(DataError, match="mixes parquet and CSV"):
        list_parts(mixed)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="not a parquet or CSV file"):
        list_parts(tmp_path / "notes.txt")

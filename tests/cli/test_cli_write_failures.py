"""A write that fails (a full disk, an I/O error) is one line naming the output, never the temporary file it
was written to; the previous output stays as it was and no temporary file is left behind.

Bad inputs tried here (class G, failing writes): 2 failures (the data cannot be flushed: ENOSPC; the rename
into place fails: EIO) x 6 writers (predict --out, data import --out, data synth --out, recommend --all
--out, train --out, train-recs --out), each also under --json, and x safe_files.write_csv.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from flowtui.cli import app
from flowtui.core import safe_files
from flowtui.core.errors import DataError
from tests.core.test_run import make_test
from tests.flow.test_classifiers import make_frame

runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("writes")
    frame = make_frame(n_users=20, rows_per_user=20, effect=0.4)
    files = {"train": root / "train.csv", "test": root / "test.csv", "log": root / "log.csv"}
    frame.to_csv(files["train"], index=False)
    make_test(frame).to_csv(files["test"], index=False)
    files["log"].write_text("user,item,plays\nu1,a,5\nu2,b,1\nu1,b,3\n")
    for args in (
        ["train", "--data", files["train"], "-m", "constant", "--preset", "quick", "--out", root / "models"],
        ["train-recs", "--data", files["train"], "-m", "popularity", "--out", root / "recs"],
    ):
        r = runner.invoke(app, [str(a) for a in args])
        assert r.exit_code == 0, r.output
    files["flow_model"], files["rec_model"] = root / "models" / "constant", root / "recs" / "popularity"
    return files


def _writers(w: dict[str, Path], out: Path) -> dict[str, tuple[list[str], Path]]:
    """writer -> (command line, the output it replaces)."""
    train = ["--data", str(w["train"])]
    return {
        "predict": (
            ["predict", "-m", str(w["flow_model"]), *train, "--test", str(w["test"]), "--out", str(out / "sub.csv")],
            out / "sub.csv",
        ),
        "data import": (
            ["data", "import", str(w["log"]), "--user", "user", "--item", "item", "--weight", "plays",
             "--threshold", "2", "--out", str(out / "imported.csv")],
            out / "imported.csv",
        ),
        "data synth": (["data", "synth", "--users", "3", "--out", str(out)], out / "train.csv"),
        "recommend --all": (
            ["recommend", "--model", str(w["rec_model"]), *train, "--all", "--n", "2", "--out", str(out / "r.csv")],
            out / "r.csv",
        ),
        "train": (
            ["train", *train, "-m", "constant", "--preset", "quick", "--out", str(out / "models")],
            out / "models" / "constant" / "meta.json",
        ),
        "train-recs": (
            ["train-recs", *train, "-m", "popularity", "--out", str(out / "recs")],
            out / "recs" / "popularity" / "meta.json",
        ),
    }  # fmt: skip


def _failing(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next writes fail as a full or broken disk would."""
    if kind == "fsync ENOSPC":

        def fsync(fd: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "fsync", fsync)
    elif kind == "rename EIO":
        real = os.replace

        def replace(src: Any, dst: Any, *args: Any, **kw: Any) -> None:
            if ".tmp" in str(src):
                raise OSError(errno.EIO, os.strerror(errno.EIO), str(src), None, str(dst))
            real(src, dst, *args, **kw)

        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(os, "rename", replace)  # model folders are renamed into place...
        monkeypatch.setattr(safe_files, "EXCHANGE_ENABLED", False)  # ...when they cannot be exchanged
    else:  # pragma: no cover
        raise AssertionError(kind)


FAILURES = ["fsync ENOSPC", "rename EIO"]
WRITERS = ["predict", "data import", "data synth", "recommend --all", "train", "train-recs"]


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".old-" in p.name]


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("writer", WRITERS)
def test_a_failed_write_is_one_line_and_keeps_the_old_output(
    world: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    writer: str,
    failure: str,
    as_json: bool,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    args, product = _writers(world, out)[writer]
    first = runner.invoke(app, args)  # a first, good output to keep
    assert first.exit_code == 0, first.output
    before = product.read_bytes()
    _failing(failure, monkeypatch)
    r = runner.invoke(app, [*args, "--json"] if as_json else args)
    monkeypatch.undo()
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    # piped, a finished model's "NAME: done in Xs" line may come first; the error is one line of its own
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert as_json or len(errors) == 1, r.stderr
    message = json.loads(r.stdout)["error"]["message"] if as_json else errors[0]
    assert "Traceback" not in r.output and ".tmp" not in r.output, r.output
    assert os.strerror(errno.ENOSPC if "ENOSPC" in failure else errno.EIO) in message, message
    assert product.read_bytes() == before  # the old output is whole
    assert _temporaries(out) == []


@pytest.mark.parametrize("failure", FAILURES)
def test_write_csv_names_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    target = tmp_path / "x.csv"
    target.write_text("old\n")
    failing: Callable[[str, pytest.MonkeyPatch], None] = _failing
    failing(failure, monkeypatch)
    with pytest.raises(DataError) as info:
        safe_files.write_csv(pd.DataFrame({"a": [1, 2]}), target)
    monkeypatch.undo()
    assert info.value.path == str(target) and ".tmp" not in str(info.value)
    assert target.read_text() == "old\n" and _temporaries(tmp_path) == []

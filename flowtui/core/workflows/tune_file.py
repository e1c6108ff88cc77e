"""The tuned-parameters file `tune-recs` writes and `train-recs --params` reads: JSON holding each model's
best parameters, its default and tuned validation scores and the trial history.

flowtui replaces only a file it wrote (one whose `format` is `FORMAT`); anything else at the path is
refused, so `--out` never destroys a user's file. Writes are atomic (`safe_files.atomic_write`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flowtui.core import registry, safe_files
from flowtui.core.errors import DataError
from flowtui.core.workflows.tune import TuneResult

__all__ = ["FORMAT", "SUFFIX", "check_target", "default_path", "read_tuned", "save_tuned", "with_tuned"]

FORMAT = "flowtui-tuned-params"
VERSION = 1
#: The file's name beside a train file `DATA.csv`: `DATA.tuned.json`.
SUFFIX = ".tuned.json"


def default_path(data: Path | None) -> Path:
    """Where tune-recs writes by default: beside the train file (`DATA.tuned.json`), or `tuned.json` in
    the current folder for the bundled sample."""
    if data is None:
        return Path("tuned.json")
    name = data.name
    for ext in (".csv.gz", ".csv", ".parquet", ".gz"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return data.with_name(name + SUFFIX)


def check_target(path: Path) -> Path:
    """`path` may be written: nothing there, or a file this module wrote (else UnsafePathError)."""
    safe_files.check_output_path(path)
    if safe_files.describe(path) is None:
        return path
    try:
        ours = _read_json(path).get("format") == FORMAT
    except (DataError, ValueError, OSError):
        ours = False
    if not ours:
        raise safe_files.UnsafePathError(
            path, "exists and was not written by flowtui tune-recs; flowtui will not replace it"
        )
    return path


def save_tuned(result: TuneResult, path: Path, *, source: str | None, fingerprint: str | None) -> Path:
    """Write `result` to `path` atomically (checked first by `check_target`); returns the path."""
    check_target(path)
    record: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "data": {"source": source, "fingerprint": fingerprint},
        **result.to_dict(),
    }
    with safe_files.atomic_write(path) as fh:
        json.dump(record, fh, indent=2, allow_nan=False)
        fh.write("\n")
    return path


def _read_json(path: Path) -> dict[str, Any]:
    safe_files.check_input_file(path, "tuned-parameters file")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"is not a JSON file ({exc})") from None
    if not isinstance(record, dict):
        raise DataError(path, "is not a tuned-parameters file (expected a JSON object)")
    return record


def read_tuned(path: Path, names: Sequence[str], preset: str = "full") -> dict[str, dict[str, object]]:
    """The parameters `path` holds for the models in `names` (the others ignored), each checked like
    `--set` values (ParamError); DataError when the file is not one tune-recs wrote."""
    record = _read_json(path)
    if record.get("format") != FORMAT:
        raise DataError(path, "is not a tuned-parameters file written by flowtui tune-recs")
    version = record.get("version")
    if version != VERSION:
        raise DataError(path, f"has version {version!r}; this flowtui reads version {VERSION}")
    params = record.get("params")
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise DataError(path, "has no 'params' object of model -> parameters")
    out: dict[str, dict[str, object]] = {}
    for name in names:
        if name in params:
            spec = registry.get_recommender(name)
            spec.params(params[name], preset)  # ParamError, as a --set value would give
            out[name] = dict(params[name])
    return out


def with_tuned(
    path: Path | None,
    names: Sequence[str],
    given: Mapping[str, Mapping[str, object]],
    preset: str = "full",
) -> dict[str, dict[str, object]]:
    """Each model's parameters from the tuned file at `path` (none when None), the `given` ones (`--set`)
    over them."""
    tuned = read_tuned(path, names, preset) if path is not None else {}
    out = {n: dict(p) for n, p in tuned.items()}
    for name, over in given.items():
        out[name] = {**out.get(name, {}), **over}
    return out

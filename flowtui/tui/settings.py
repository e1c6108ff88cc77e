"""What the app remembers between sessions, in a small JSON file under the user's config folder.

The last data paths, the ticked models, the edited parameters, the preset, the run options and the model
chosen for recommendations live in `settings.json` of `$FLOWTUI_CONFIG_DIR`, else `$XDG_CONFIG_HOME/flowtui`,
else `~/.config/flowtui`. Under pytest, without `$FLOWTUI_CONFIG_DIR`, memory is off: a test never reads or
writes a person's real settings.

Reading never fails: a damaged or foreign file is ignored with a note (and kept aside as `settings.json.bad`
when the app next saves); each value is checked again, with the models' parameter schemas and
`RunConfig.validate`, in a worker (`check`: it loads the model registry). Writing is atomic (a temporary
file, then `os.replace`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowtui.core.registry import ModelSpec
    from flowtui.core.run_config import RunConfig
    from flowtui.tui.state import AppState

ENV = "FLOWTUI_CONFIG_DIR"
FILE_NAME = "settings.json"
KIND = "flowtui-settings"
VERSION = 1
MAX_BYTES = 256 * 1024
SAMPLE = "sample"  # the bundled sample, wherever the package lies
#: Models ticked when nothing is remembered (when registered): one fast learner and the strongest one.
DEFAULT_PICK = ("logreg", "lightgbm")
#: The run options remembered, as RunConfig attributes.
RUN_OPTION_KEYS = ("rounds", "smoothing", "flow_only", "target_contexts", "top_k")


def config_dir() -> Path | None:
    """The folder of the settings file; None when memory is off (under pytest without FLOWTUI_CONFIG_DIR)."""
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser()
    if "PYTEST_CURRENT_TEST" in os.environ:
        return None
    xdg = os.environ.get("XDG_CONFIG_HOME")
    try:
        base = Path(xdg) if xdg else Path.home() / ".config"
    except RuntimeError:  # no home folder
        return None
    return base / "flowtui"


def settings_file() -> Path | None:
    """The settings file (it may not exist yet); None when memory is off."""
    folder = config_dir()
    return folder / FILE_NAME if folder is not None else None


@dataclass
class Remembered:
    """The settings as read from the file, type-checked but not yet checked against the model schemas."""

    data: dict[str, str | None] | None = None  # {"train": SAMPLE or a path, "test": SAMPLE, a path or None}
    models: list[str] | None = None  # None: nothing ticked yet (the defaults apply)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    preset: str | None = None
    run_options: dict[str, Any] = field(default_factory=dict)
    rec_model: str | None = None
    rec_ticked: list[str] | None = None  # the recommenders ticked on screen 7
    ignored: str = ""  # why the whole file was ignored ("" when it was read or absent)


@dataclass
class Checked:
    """Remembered values that passed the schemas: ready for the app's state."""

    selected: list[str]
    params: dict[str, dict[str, Any]]
    preset: str
    run_options: RunConfig
    rec_model: str | None


def _is_str_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)


def read(path: Path | None) -> tuple[Remembered, list[str]]:
    """The settings in `path` and notes on what was refused; never raises."""
    if path is None:
        return Remembered(), []
    try:
        if not path.exists():
            return Remembered(), []
        if not path.is_file():
            raise ValueError("not a regular file")
        if path.stat().st_size > MAX_BYTES:
            raise ValueError(f"larger than {MAX_BYTES // 1024} KiB")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:  # JSON nested thousands deep: damaged or hostile, never a flowtui file
        reason = "JSON nested too deeply"
        return Remembered(ignored=reason), [f"settings file {path} ignored ({reason})"]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = "not valid JSON" if isinstance(exc, json.JSONDecodeError) else str(exc) or type(exc).__name__
        return Remembered(ignored=reason), [f"settings file {path} ignored ({reason})"]
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        reason = "not a flowtui settings file"
        return Remembered(ignored=reason), [f"settings file {path} ignored ({reason})"]
    if doc.get("version") != VERSION:
        reason = f"version {doc.get('version')!r}, this flowtui reads {VERSION}"
        return Remembered(ignored=reason), [f"settings file {path} ignored ({reason})"]
    return _fields(doc)


def _fields(doc: Mapping[str, Any]) -> tuple[Remembered, list[str]]:
    """Each field of a settings document whose type is right; a note for each one that is not."""
    out, notes = Remembered(), []
    data = doc.get("data")
    if isinstance(data, dict) and isinstance(data.get("train"), str) and _is_str_or_none(data.get("test")):
        out.data = {"train": data["train"], "test": data.get("test")}
    elif data is not None:
        notes.append("remembered data paths ignored (damaged)")
    models = doc.get("models")
    if isinstance(models, list) and all(isinstance(m, str) for m in models):
        out.models = list(dict.fromkeys(models))
    elif models is not None:
        notes.append("remembered model ticks ignored (damaged)")
    params = doc.get("params")
    if isinstance(params, dict) and all(isinstance(v, dict) for v in params.values()):
        out.params = {str(k): dict(v) for k, v in params.items()}
    elif params is not None:
        notes.append("remembered parameters ignored (damaged)")
    preset = doc.get("preset")
    if isinstance(preset, str):
        out.preset = preset
    options = doc.get("run_options")
    if isinstance(options, dict):
        out.run_options = {k: v for k, v in options.items() if k in RUN_OPTION_KEYS}
    elif options is not None:
        notes.append("remembered run options ignored (damaged)")
    if isinstance(doc.get("rec_model"), str):
        out.rec_model = doc["rec_model"]
    ticked = doc.get("recommenders")
    if isinstance(ticked, list) and all(isinstance(m, str) for m in ticked):
        out.rec_ticked = list(dict.fromkeys(ticked))
    elif ticked is not None:
        notes.append("remembered recommender ticks ignored (damaged)")
    return out, notes


def choose_data(remembered: Remembered) -> tuple[Path, Path | None, list[str]]:
    """The train and test files to open when none is given: the remembered ones that still exist, else the
    bundled sample; notes say what was forgotten."""
    from flowtui.core import paths

    def resolve(text: str) -> Path:
        return paths.sample_train() if text == SAMPLE else Path(text)

    data = remembered.data
    if data is None or data["train"] is None:
        return paths.sample_train(), paths.sample_test(), []
    train = resolve(data["train"])
    if not train.is_file():
        return (
            paths.sample_train(),
            paths.sample_test(),
            [f"the last train file {train} is gone: sample loaded"],
        )
    test_text = data.get("test")
    if test_text is None:
        return train, None, []
    test = paths.sample_test() if test_text == SAMPLE else Path(test_text)
    if not test.is_file():
        return train, None, [f"the last test file {test} is gone: no test file loaded"]
    return train, test, []


def check(remembered: Remembered, specs: Mapping[str, ModelSpec]) -> tuple[Checked, list[str]]:
    """The remembered ticks, parameters, preset and run options that the models' schemas accept; a note
    for each value refused (it is forgotten). Loads the registry through `specs`: call it in a worker."""
    from flowtui.core.errors import ParamError
    from flowtui.core.params import PRESETS
    from flowtui.core.run_config import RunConfig

    notes: list[str] = []
    preset = remembered.preset if remembered.preset in PRESETS else "quick"
    if remembered.preset is not None and remembered.preset != preset:
        notes.append(f"remembered preset {remembered.preset!r} refused")
    if remembered.models is None:
        selected = [n for n in DEFAULT_PICK if n in specs]
    else:
        selected = [n for n in remembered.models if n in specs]
        unknown = [n for n in remembered.models if n not in specs]
        if unknown:
            notes.append(f"remembered model(s) {', '.join(unknown)} no longer exist")
    params: dict[str, dict[str, Any]] = {}
    for name, overrides in remembered.params.items():
        spec = specs.get(name)
        if spec is None:
            notes.append(f"parameters of unknown model {name} forgotten")
            continue
        kept: dict[str, Any] = {}
        for key, value in overrides.items():
            try:
                resolved = spec.params({**kept, key: value}, preset)
            except ParamError as err:
                notes.append(f"forgotten: {err}")
                continue
            kept[key] = resolved[key]
        if kept:
            params[name] = kept
    options = RunConfig(preset=preset)
    if remembered.run_options:
        try:
            changes = dict(remembered.run_options)
            if isinstance(changes.get("target_contexts"), list):
                changes["target_contexts"] = tuple(changes["target_contexts"])
            candidate = dataclasses.replace(options, **changes)
            _check_types(candidate)
            candidate.validate()
        except (ParamError, TypeError, ValueError) as err:
            notes.append(f"remembered run options forgotten: {err}")
        else:
            options = candidate
    return Checked(selected, params, preset, options, remembered.rec_model), notes


def _check_types(options: RunConfig) -> None:
    """RunConfig does not check the types of its fields: a file could hold "rounds": "3"."""
    ok = (
        isinstance(options.rounds, int)
        and not isinstance(options.rounds, bool)
        and isinstance(options.smoothing, int | float)
        and not isinstance(options.smoothing, bool)
        and isinstance(options.flow_only, bool)
        and (
            options.top_k is None or (isinstance(options.top_k, int) and not isinstance(options.top_k, bool))
        )
        and (
            options.target_contexts is None
            or all(isinstance(c, int) and not isinstance(c, bool) for c in options.target_contexts)
        )
    )
    if not ok:
        raise TypeError("a value has the wrong type")


def _path_text(path: Path | None, sample: Path) -> str | None:
    if path is None:
        return None
    try:
        resolved = path.expanduser().resolve()
        return SAMPLE if resolved == sample.resolve() else str(resolved)
    except OSError:
        return str(path)


def document(state: AppState, remembered: Remembered) -> dict[str, Any]:
    """The settings document of `state`. Until the start-up check has run (`state.specs` is None), the
    model settings are the remembered ones, so quitting early forgets nothing."""
    from flowtui.core import paths

    doc: dict[str, Any] = {"kind": KIND, "version": VERSION}
    if state.train_path is not None:
        doc["data"] = {
            "train": _path_text(state.train_path, paths.sample_train()),
            "test": _path_text(state.test_path, paths.sample_test()),
        }
    if state.specs is None:
        if remembered.models is not None:
            doc["models"] = remembered.models
        doc["params"] = remembered.params
        if remembered.preset is not None:
            doc["preset"] = remembered.preset
        doc["run_options"] = remembered.run_options
        doc["rec_model"] = remembered.rec_model
        doc["recommenders"] = list(state.rec_selected)
        return doc
    options = state.run_options
    doc["models"] = list(state.selected)
    doc["params"] = {name: dict(values) for name, values in state.params.items() if values}
    doc["preset"] = state.preset
    doc["run_options"] = {
        k: list(v) if isinstance(v := getattr(options, k), tuple) else v for k in RUN_OPTION_KEYS
    }
    doc["rec_model"] = state.rec_model
    doc["recommenders"] = list(state.rec_selected)
    return doc


def dumps(doc: Mapping[str, Any]) -> str:
    """The file's text."""
    return json.dumps(doc, indent=2, sort_keys=True, default=_json_value) + "\n"


def _json_value(value: object) -> object:
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "item"):  # a numpy scalar
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write(path: Path, text: str, *, keep_old: bool = False) -> None:
    """Write `text` to `path` atomically (a temporary file beside it, then `os.replace`); with `keep_old`,
    the file there first moves to `NAME.bad`. OSError when the folder cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if keep_old and (path.exists() or path.is_symlink()):
        os.replace(path, path.with_name(path.name + ".bad"))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)

"""Fuzz every command's file inputs, output paths and `--set` values: never a traceback, never exit 1 or 134,
always exit 0 or 2 with one `error:` line (indented examples below it), or one JSON object under --json.

The commands (`flowtui --help`): evaluate, train, predict, score, params, recommend, evaluate-recs,
train-recs, recommenders, data validate, data info, data import, data synth. `tui` opens the app and is
tested by tests/tui. Every file slot of every command gets paths that are not regular files and
generated contents (binary garbage, mangled and truncated versions of a good file of that slot's kind);
every output slot gets paths it must refuse; every command with `--set` gets generated values; `params`
and `recommenders` get generated model names. The in-process runner cannot see an abort, so a last test
runs each command as a real process on a refused input and checks the exit status itself (134 = abort).

Bad inputs tried here (class F, whole-CLI fuzz): 13 commands, 20 slots (12 input files, 2 model folders,
3 output files, 3 output folders); 148 fixed paths a slot cannot take (7 per input slot, 11 per model slot,
8 per output file, 6 per output folder), each plain and under --json (296 runs); 300 generated file
contents (150 binary garbage, 150 mangled or truncated good files); 120 generated --set values over the
4 commands that take --set; 60 generated model names; 12 unreadable inputs; 13 real processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flowtui.cli import app
from flowtui.core import registry
from tests.core.test_run import make_test
from tests.data.test_fuzz_inputs import MANGLE, _mangle
from tests.flow.test_classifiers import make_frame

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

# ----- the commands and their slots -----------------------------------------------------------------------

#: slot -> what a good value is: an input file of a kind, a model folder, or an output path.
SLOT_KIND = {
    "train": "input",
    "test": "input",
    "sub": "input",
    "answers": "input",
    "log": "input",
    "flow_model": "model",
    "rec_model": "model",
    "out_file": "out_file",
    "out_dir": "out_dir",
}

#: command -> its arguments, slots in braces (filled with good files unless a case replaces one).
COMMANDS: dict[str, list[str]] = {
    "evaluate": ["evaluate", "--data", "{train}", "-m", "constant", "--preset", "quick"],
    "train": ["train", "--data", "{train}", "-m", "constant", "--preset", "quick", "--out", "{out_dir}"],
    "predict": ["predict", "-m", "{flow_model}", "--data", "{train}", "--test", "{test}", "--out", "{out_file}"],
    "score": ["score", "{sub}", "--answers", "{answers}"],
    "recommend": [
        "recommend", "--model", "{rec_model}", "--data", "{train}", "--all", "--n", "3", "--out", "{out_file}",
    ],
    "evaluate-recs": ["evaluate-recs", "--data", "{train}", "-m", "popularity", "--seeds", "1", "--preset", "quick"],
    "train-recs": ["train-recs", "--data", "{train}", "-m", "popularity", "--out", "{out_dir}"],
    "tune-recs": ["tune-recs", "--data", "{train}", "-m", "ease", "--trials", "2", "--out", "{out_file}"],
    "data validate": ["data", "validate", "{train}", "--no-cache"],
    "data info": ["data", "info", "{train}", "--no-cache"],
    "data import": [
        "data", "import", "{log}", "--user", "user", "--item", "item", "--weight", "plays", "--threshold", "2",
        "--out", "{out_file}",
    ],
    "data synth": ["data", "synth", "--users", "3", "--out", "{out_dir}"],
    "params": ["params", "logreg"],
    "recommenders": ["recommenders", "popularity"],
}  # fmt: skip

SLOTS = [(c, s) for c, args in COMMANDS.items() for s in SLOT_KIND if "{" + s + "}" in args]
INPUT_SLOTS = [(c, s) for c, s in SLOTS if SLOT_KIND[s] == "input"]
MODEL_SLOTS = [(c, s) for c, s in SLOTS if SLOT_KIND[s] == "model"]
OUT_FILE_SLOTS = [(c, s) for c, s in SLOTS if SLOT_KIND[s] == "out_file"]
OUT_DIR_SLOTS = [(c, s) for c, s in SLOTS if SLOT_KIND[s] == "out_dir"]


def test_every_command_is_fuzzed() -> None:
    """A command added to the CLI without a line in COMMANDS fails here."""
    import typer.main

    root = typer.main.get_command(app)
    found: set[str] = set()
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        sub = getattr(cmd, "commands", None)
        found |= {f"{name} {s}" for s in sub} if sub else {name}
    assert found - {"tui"} == set(COMMANDS), found ^ set(COMMANDS)


# ----- the good files ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Good files for every slot: a small train and test, answers, a submission, a log, trained models."""
    root = tmp_path_factory.mktemp("fuzz-world")
    frame = make_frame(n_users=30, rows_per_user=20, effect=0.4)
    test = make_test(frame)
    files = {
        "train": root / "train.csv",
        "test": root / "test.csv",
        "answers": root / "answers.csv",
        "sub": root / "sub.csv",
        "log": root / "log.csv",
    }
    frame.to_csv(files["train"], index=False)
    test.to_csv(files["test"], index=False)
    answers = test[["sample_id"]].assign(is_listened=(test["sample_id"] % 2), p_true=0.5)
    answers.to_csv(files["answers"], index=False)
    answers[["sample_id"]].assign(is_listened=0.25).to_csv(files["sub"], index=False)
    files["log"].write_text("user,item,plays\nu1,a,5\nu2,b,1\nu1,b,3\nu3,a,2\nu2,c,4\n")
    for args in (
        ["train", "--data", files["train"], "-m", "constant", "--preset", "quick", "--out", root / "models"],
        ["train-recs", "--data", files["train"], "-m", "popularity", "--out", root / "recs"],
    ):
        r = runner.invoke(app, [str(a) for a in args])
        assert r.exit_code == 0, r.output
    files["flow_model"] = root / "models" / "constant"
    files["rec_model"] = root / "recs" / "popularity"
    return files


def _args(command: str, world: dict[str, Path], tmp: Path, replace: dict[str, str]) -> list[str]:
    good = {
        **{k: str(v) for k, v in world.items()},
        "out_file": str(tmp / "out.csv"),
        "out_dir": str(tmp / "out"),
    }
    good.update(replace)
    return [a.format(**good) if "{" in a else a for a in COMMANDS[command]]


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail instead of hanging (e.g. a blocking open of a named pipe)."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check(args: list[str], as_json: bool) -> int:
    """Run one command line in process; assert the contract; return its exit status (0 or 2)."""
    args = [*args, "--json"] if as_json else args
    with time_limit(60):
        r = runner.invoke(app, args)
    detail = f"{' '.join(args)}: exit {r.exit_code}\nstdout: {r.stdout[-1500:]}\nstderr: {r.stderr[-1500:]}"
    assert r.exit_code in (0, 2), detail
    assert r.exception is None or isinstance(r.exception, SystemExit), f"{detail}\n{r.exception!r}"
    assert "Traceback" not in r.output and "Exception ignored" not in r.output, detail
    if as_json:
        doc = json.loads(r.stdout)  # exactly one JSON document, nothing else on stdout
        if r.exit_code == 2:
            assert isinstance(doc, dict) and set(doc) == {"error"}, detail
            assert doc["error"]["message"] and "\n" not in doc["error"]["message"], detail
    elif r.exit_code == 2:
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert lines and lines[0].startswith("error:"), detail
        assert all(line.startswith("  ") for line in lines[1:]), detail
        assert "error:" not in r.stdout, detail
    return r.exit_code


# ----- paths that are not what a slot needs ---------------------------------------------------------------


def _special(name: str, tmp: Path, world: dict[str, Path]) -> Path:
    """A path of kind `name` under `tmp` (made on demand)."""
    p = tmp / "special.csv"
    if name == "missing":
        return tmp / "missing" / "nothing.csv"
    if name == "folder":
        p.mkdir()
    elif name == "named pipe":
        os.mkfifo(p)
    elif name == "device":
        return Path("/dev/null")
    elif name == "full device":
        return Path("/dev/full")
    elif name == "symlink loop":
        p.symlink_to(tmp / "loop2")
        (tmp / "loop2").symlink_to(p)
    elif name == "broken symlink":
        p.symlink_to(tmp / "nowhere.csv")
    elif name == "empty":
        p.write_bytes(b"")
    elif name == "symlink to a file":
        (tmp / "target.csv").write_text("keep me\n")
        p.symlink_to(tmp / "target.csv")
    elif name == "read-only file":
        p.write_text("keep me\n")
        p.chmod(0o444)
    elif name == "under a file":
        p.write_text("keep me\n")
        return p / "child.csv"
    elif name == "a file":
        p.write_text("keep me\n")
    elif name == "empty folder":
        p.mkdir()
    elif name == "garbage meta":
        shutil.copytree(world["flow_model"], p)
        (p / "meta.json").write_bytes(b"\x00{not json")
    elif name == "other kind of model":
        shutil.copytree(world["rec_model"] if "flow" in str(tmp) else world["flow_model"], p)
    elif name == "foreign folder at NAME":
        p.mkdir()
        for name_ in ("constant", "popularity", "train.csv"):
            (p / name_).mkdir(exist_ok=True)
            (p / name_ / "important.txt").write_text("keep me\n")
    else:  # pragma: no cover
        raise AssertionError(name)
    return p


SPECIAL_IN = ["missing", "folder", "named pipe", "device", "symlink loop", "broken symlink", "empty"]
SPECIAL_MODEL = [*SPECIAL_IN, "a file", "empty folder", "garbage meta", "other kind of model"]
SPECIAL_OUT_FILE = [
    "folder", "named pipe", "device", "full device", "symlink to a file", "read-only file", "under a file",
    "symlink loop",
]  # fmt: skip
SPECIAL_OUT_DIR = ["a file", "named pipe", "device", "under a file", "symlink loop", "foreign folder at NAME"]

FIXED = (
    [(c, s, n) for c, s in INPUT_SLOTS for n in SPECIAL_IN]
    + [(c, s, n) for c, s in MODEL_SLOTS for n in SPECIAL_MODEL]
    + [(c, s, n) for c, s in OUT_FILE_SLOTS for n in SPECIAL_OUT_FILE]
    + [(c, s, n) for c, s in OUT_DIR_SLOTS for n in SPECIAL_OUT_DIR]
)


def _snapshot(tmp: Path) -> dict[str, bytes]:
    """Every regular file under `tmp` and its bytes (what a refusal must leave as it was)."""
    return {str(p): p.read_bytes() for p in tmp.rglob("*") if p.is_file() and not p.is_symlink()}


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize(("command", "slot", "name"), FIXED)
def test_paths_a_slot_cannot_take_are_refused(
    world: dict[str, Path], tmp_path: Path, command: str, slot: str, name: str, as_json: bool
) -> None:
    case = tmp_path / ("flow" if slot == "flow_model" else "case")
    case.mkdir()
    p = _special(name, case, world)
    before = _snapshot(case)
    status = check(_args(command, world, tmp_path, {slot: str(p)}), as_json)
    assert status == 2, (command, slot, name)
    assert _snapshot(case) == before  # nothing of the user's was changed, deleted or replaced
    if name in ("symlink to a file", "symlink loop", "broken symlink"):
        assert p.is_symlink()
    if name == "named pipe":
        assert stat.S_ISFIFO(os.lstat(p).st_mode)


# ----- generated contents ---------------------------------------------------------------------------------

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)


def _good_text(world: dict[str, Path], slot: str, max_lines: int) -> str:
    lines = world[slot].read_text().splitlines(keepends=True)
    return "".join(lines[:max_lines])


@SETTINGS
@given(
    which=st.sampled_from(INPUT_SLOTS),
    data=st.binary(max_size=300),
    as_json=st.booleans(),
)
def test_garbage_in_any_input(
    world: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    which: tuple[str, str],
    data: bytes,
    as_json: bool,
) -> None:
    command, slot = which
    tmp = tmp_path_factory.mktemp("garbage")
    p = tmp / "input.csv"
    p.write_bytes(data)
    check(_args(command, world, tmp, {slot: str(p)}), as_json)


@SETTINGS
@given(
    which=st.sampled_from(INPUT_SLOTS),
    max_lines=st.integers(1, 400),
    as_json=st.booleans(),
    **MANGLE,
)
def test_mangled_good_files_in_any_input(
    world: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    which: tuple[str, str],
    max_lines: int,
    as_json: bool,
    cuts: list[tuple[int, int]],
    inserts: list[tuple[int, str]],
    junk: bytes,
) -> None:
    command, slot = which
    tmp = tmp_path_factory.mktemp("mangled")
    p = tmp / "input.csv"
    p.write_bytes(_mangle(_good_text(world, slot, max_lines), cuts, inserts, junk))
    check(_args(command, world, tmp, {slot: str(p)}), as_json)


# ----- generated --set values and names ---------------------------------------------------------------------

SET_COMMANDS = {
    "evaluate": ("flow", ["evaluate", "--data", "{missing}", "-m", "{model}"]),
    "train": ("flow", ["train", "--data", "{missing}", "-m", "{model}", "--out", "{out_dir}"]),
    "evaluate-recs": ("recs", ["evaluate-recs", "--data", "{missing}", "-m", "{model}"]),
    "train-recs": ("recs", ["train-recs", "--data", "{missing}", "-m", "{model}", "--out", "{out_dir}"]),
}


def _recommender_keys() -> list[tuple[str, str]]:
    names = registry.recommender_names()
    return [(n, p.key) for n in names for p in registry.get_recommender(n).schema.params]


def _flow_keys() -> list[tuple[str, str]]:
    return [(n, p.key) for n in registry.model_names() for p in registry.get_spec(n).schema.params]


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
@given(
    command=st.sampled_from(list(SET_COMMANDS)),
    index=st.integers(min_value=0),
    value=st.text(max_size=12).filter(lambda s: "\x00" not in s),
    whole=st.booleans(),
    as_json=st.booleans(),
)
def test_generated_set_values(
    tmp_path_factory: pytest.TempPathFactory, command: str, index: int, value: str, whole: bool, as_json: bool
) -> None:
    """A good value gets as far as the (missing) data file, exit 2; a bad one is refused first, exit 2."""
    family, template = SET_COMMANDS[command]
    keys = _flow_keys() if family == "flow" else _recommender_keys()
    model, key = keys[index % len(keys)]
    tmp = tmp_path_factory.mktemp("set")
    fill = {"missing": str(tmp / "missing.csv"), "model": model, "out_dir": str(tmp / "out")}
    args = [a.format(**fill) if "{" in a else a for a in template]
    assignment = f"{model}.{key}={value}" if whole else f"{key}={value}"
    assert check([*args, "--set", assignment], as_json) == 2


@settings(max_examples=60, deadline=None, database=None)
@given(
    command=st.sampled_from(["params", "recommenders"]),
    name=st.text(max_size=16).filter(lambda s: "\x00" not in s and not s.startswith("-")),
    as_json=st.booleans(),
)
def test_generated_model_names(command: str, name: str, as_json: bool) -> None:
    check([command, name], as_json)


@pytest.mark.parametrize("breaker", ["\n", "\r", "\x0b", "\x1c", "\x85", "\u2028", "\u2029", "\x1b[31m"])
@pytest.mark.parametrize("command", ["params", "recommenders"])
def test_names_with_any_line_breaker_stay_on_one_line(command: str, breaker: str) -> None:
    """Every character str.splitlines() breaks on (C0, C1, Unicode separators) is echoed escaped."""
    assert check([command, f"bad{breaker}name"], as_json=False) == 2
    r = runner.invoke(app, [command, f"bad{breaker}name"])
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert check([command, f"bad{breaker}name"], as_json=True) == 2
    message = json.loads(runner.invoke(app, [command, f"bad{breaker}name", "--json"]).stdout)["error"][
        "message"
    ]
    assert len(message.splitlines()) == 1, message


# ----- unreadable files and real processes ----------------------------------------------------------------

_UNREADABLE_PROBE = r"""
import json, sys
from typer.testing import CliRunner
from flowtui.cli import app
out = []
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(app, args)
    out.append([r.exit_code, r.exception is None or isinstance(r.exception, SystemExit), r.output[-400:]])
print(json.dumps(out))
"""


def test_unreadable_inputs_are_refused(world: dict[str, Path], tmp_path: Path) -> None:
    """Every input slot given a file it may not read: as a user (root reads anything, so as root the probe
    runs without the capability to bypass file permissions)."""
    secret = tmp_path / "secret.csv"
    shutil.copy(world["train"], secret)
    secret.chmod(0)
    cases = [_args(c, world, tmp_path, {s: str(secret)}) for c, s in INPUT_SLOTS]
    cmd = [sys.executable, "-c", _UNREADABLE_PROBE, json.dumps(cases)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot drop the right to read any file")
        caps = "-dac_override,-dac_read_search"
        cmd = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", *cmd]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    probe = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert probe.returncode == 0, probe.stderr[-2000:]
    for args, (code, clean, output) in zip(cases, json.loads(probe.stdout), strict=True):
        assert code == 2 and clean and "Traceback" not in output, (args, output)
        assert "permission denied" in output.lower() or "not readable" in output.lower(), (args, output)


def test_refusals_in_real_processes_exit_2(world: dict[str, Path], tmp_path: Path) -> None:
    """One refused input per command as a real process: the exit status is 2, never 1 or 134 (abort)."""
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    header_only = tmp_path / "header.csv"
    header_only.write_text(world["train"].read_text().splitlines()[0] + "\n")
    replace = {
        "params": ["params", "no_such_model"],
        "recommenders": ["recommenders", "no_such_model"],
        "data synth": ["data", "synth", "--users", "0", "--out", str(tmp_path / "s")],
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for command in COMMANDS:
        slots = [s for c, s in SLOTS if c == command]
        args = replace.get(command) or _args(
            command, world, tmp_path, {slots[0]: str(header_only if slots[0] == "train" else empty)}
        )
        p = subprocess.run(
            [sys.executable, "-m", "flowtui", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            env=env,
        )
        assert p.returncode == 2, (command, p.returncode, p.stderr[-1500:])
        assert p.stderr.startswith("error:") and "Traceback" not in p.stderr, (command, p.stderr[-1500:])

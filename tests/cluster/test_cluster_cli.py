"""`flowtui evaluate|train --cluster ...` and `train --nproc N`: what runs, what is refused, cancel."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from flowtui.cli import app

runner = CliRunner()


def invoke(*args: object) -> Any:
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def parts(synth_train: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic train rows as a folder of three parquet parts (users split across parts)."""
    folder = tmp_path_factory.mktemp("parts")
    n = len(synth_train)
    for i, lo in enumerate(range(0, n, n // 3 + 1)):
        synth_train.iloc[lo : lo + n // 3 + 1].to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def small_csv(synth_train: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("csv") / "train.csv"
    synth_train.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "--cluster", "local:0"], "--cluster: cluster local:N needs N from 1"),
        (["evaluate", "--cluster", "http://x:1"], "tcp://HOST:PORT"),
        (["evaluate", "--cluster", "local:2", "-m", "logreg"], "logreg runs on one machine"),
        (["evaluate", "--cluster", "local:2", "--top-k", "3", "-m", "lightgbm"], "top_k"),
        (["evaluate", "--cluster", "local:2", "--nproc", "2"], "do not go together"),
        (["train", "--out", "{tmp}/m", "-m", "lightgbm", "--nproc", "2"], "add --model rbm"),
        (["train", "--out", "{tmp}/m", "-m", "knn", "--cluster", "local:2"], "knn runs on one machine"),
    ],
)
def test_refusals_exit_2_in_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    """Refused before anything starts: one line on stderr, or one JSON object under --json; exit 2;
    no output folder made."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert "Traceback" not in r.output
    j = invoke(*args, "--json")
    assert j.exit_code == 2
    assert message in json.loads(j.stdout)["error"]["message"]
    assert not (tmp_path / "m").exists()


def test_missing_dask_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    r = invoke("evaluate", "--cluster", "local:2", "-m", "lightgbm")
    assert r.exit_code == 2
    assert 'pip install -e ".[cluster]"' in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_help_states_what_a_cluster_trains() -> None:
    command: Any = typer.main.get_command(app)
    for name in ("evaluate", "train"):
        helps = {p.name: p.help for p in command.commands[name].params}
        assert "Only lightgbm and the baselines train on a cluster" in helps["cluster"]
        assert "Train the rbm with N torch.distributed processes" in helps["nproc"]
        assert invoke(name, "--help").exit_code == 0


def test_evaluate_on_a_running_cluster_from_parquet_parts(session: Any, parts: Path) -> None:
    """`--cluster tcp://...` (the test session's scheduler) on a folder of parts: the leaderboard, the
    dashboard line on stderr, and the scheduler left running."""
    address = session.client.scheduler.address
    r = invoke(
        "evaluate", "--cluster", address, "--data", parts, "-m", "lightgbm", "--preset", "quick", "--json"
    )
    assert r.exit_code == 0, r.output
    records = {rec["model"]: rec for rec in json.loads(r.stdout)}
    assert set(records) == {"lightgbm", "constant", "user_flow_rate"}
    assert 0.55 < records["lightgbm"]["auc"] < 1.0
    assert "cluster of 2 workers" in r.stderr and "scheduler tcp://" in r.stderr
    assert session.client.submit(sum, [1, 2]).result(timeout=30) == 3


def test_cancelled_cluster_run_exits_130_and_saves_nothing(session: Any, tmp_path: Path, parts: Path) -> None:
    from flowtui.cli.cluster_opts import EXIT_CANCELLED, run_on_cluster
    from flowtui.core.run_config import RunConfig

    cancel = threading.Event()
    cancel.set()
    config = RunConfig(models=("lightgbm",), preset="quick", models_dir=tmp_path / "models")
    with pytest.raises(typer.Exit) as info:
        run_on_cluster(parts, config, session.client.scheduler.address, True, cancel=cancel)
    assert info.value.exit_code == EXIT_CANCELLED
    assert not (tmp_path / "models").exists()


def test_train_rbm_on_two_processes_saves_one_model(small_csv: Path, tmp_path: Path) -> None:
    """`train --model rbm --nproc 2`: one ordinary rbm folder, saved once, loadable, with the holdout of a
    one-process run (k = 1: the same model, see test_rbm_ddp)."""
    from flowtui.core.flow.store import load_model

    args = ["-m", "rbm", "--preset", "quick", "--set", "exposure_weight=0", "--data", small_csv, "--json"]
    r = invoke("train", "--out", tmp_path / "two", "--nproc", "2", *args)
    assert r.exit_code == 0, r.output
    (two,) = json.loads(r.stdout)
    assert two["notes"] == ["trained on 2 torch.distributed processes"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two"]
    loaded = load_model(tmp_path / "two" / "rbm")
    assert loaded.name == "rbm" and type(loaded.model).__name__ == "RBMModel"
    one = json.loads(invoke("train", "--out", tmp_path / "one", *args).stdout)[0]
    assert abs(two["logloss"] - one["logloss"]) < 1e-5 and two["auc"] == pytest.approx(one["auc"], abs=1e-6)


def test_cancelled_nproc_run_exits_130(small_csv: Path) -> None:
    from flowtui.cli.cluster_opts import EXIT_CANCELLED, run_with_nproc
    from flowtui.core.data.io import load_dataset
    from flowtui.core.run import run
    from flowtui.core.run_config import RunConfig

    frame = load_dataset(small_csv, kind="train").frame
    config = RunConfig(models=("rbm",), preset="quick")

    def cancelled_run(cancel: threading.Event) -> Any:
        cancel.set()  # as the first ctrl-c does
        return run(frame, config, cancel=cancel)

    with pytest.raises(typer.Exit) as info:
        run_with_nproc(cancelled_run, 2)
    assert info.value.exit_code == EXIT_CANCELLED


@pytest.mark.slow  # a fresh `python -m flowtui` process: ~10-20 s of imports and start-up
def test_ctrl_c_in_the_terminal_cancels_every_rank(small_csv: Path, tmp_path: Path) -> None:
    """SIGINT to the whole process group (what a terminal's ctrl-c sends) while the ranks train: exit 130,
    one line, no traceback from any process, no model folder, no process left."""
    psutil = pytest.importorskip("psutil")
    import os
    import signal
    import subprocess
    import time

    cmd = [
        sys.executable,
        "-m",
        "flowtui",
        "train",
        "-m",
        "rbm",
        "--nproc",
        "2",
        "--out",
        str(tmp_path / "m"),
    ]
    cmd += ["--data", str(small_csv), "--preset", "quick", "--set", "rbm.n_iter=100000"]
    p = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # wait until a rank (a fork server's child) runs
            me = psutil.Process(p.pid)
            if any(c.ppid() != p.pid for c in me.children(recursive=True)):
                break
            time.sleep(0.2)
        time.sleep(1.0)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, err
    assert "cancelled by the user: nothing was saved" in err and "Traceback" not in err
    assert not (tmp_path / "m" / "rbm").exists()
    time.sleep(1.0)
    left = [q for q in psutil.process_iter(["pid"]) if _group(q) == p.pid and q.status() != "zombie"]
    assert left == []


def _group(q: Any) -> int:
    import os

    try:
        return os.getpgid(q.pid)
    except OSError:
        return -1

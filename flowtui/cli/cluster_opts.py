"""`--cluster` and `--nproc` of `flowtui evaluate` and `flowtui train`: their options and what they run.

`--cluster local:N | tcp://HOST:PORT` runs the whole run on Dask (`core/cluster/run.cluster_run`): the
data come from a folder of parquet/CSV parts or one file, read by the workers; only lightgbm (and the
baselines) train there. `--nproc N` trains the rbm with N torch.distributed processes
(`core/cluster/rbm_ddp`). Both turn every refusal into one line (JSON under --json) and exit 2, and the
first ctrl-c into a cancel (the cluster's or the processes' work stops, nothing is saved; exit 130).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn

import typer

from flowtui.cli.common import err_console, fail, fail_data, progress_events
from flowtui.core import events as ev
from flowtui.core import paths
from flowtui.core.errors import DataError, ParamError
from flowtui.core.run import RunResult
from flowtui.core.run_config import RunConfig

__all__ = ["ClusterOpt", "NprocOpt", "check_placement", "cluster_or_none", "run_on_cluster", "run_with_nproc"]

ClusterOpt = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        help="Run on Dask: local:N (N worker processes here) or tcp://HOST:PORT (a running scheduler); "
        "--data may then be a folder of parquet/CSV parts. Only lightgbm and the baselines train on a "
        'cluster (other models are refused). Needs pip install -e ".\\[cluster]".',
    ),
]
NprocOpt = Annotated[
    int,
    typer.Option(
        "--nproc",
        min=1,
        max=64,
        help="Train the rbm with N torch.distributed processes (gloo on CPU, nccl on CUDA; users sharded, "
        "updates all-reduced); other models train as usual.",
    ),
]
EXIT_CANCELLED = 130
#: A command's ordinary run, called with the cancel flag.
RunFn = Callable[[threading.Event], RunResult]


def cluster_or_none(text: str | None, nproc: int) -> str | None:
    """The --cluster text checked (exit 2 on a bad value, or with --nproc), None without --cluster."""
    if text is None:
        return None
    from flowtui.core.cluster.spec import ClusterSpec

    if nproc > 1:
        fail("--cluster and --nproc do not go together: --nproc trains the rbm, a cluster trains lightgbm")
    try:
        return str(ClusterSpec.parse(text))
    except ParamError as exc:
        fail(f"--cluster: {exc}")


def check_placement(config: RunConfig, cluster: str | None, nproc: int) -> None:
    """Before any data is read or folder made: exit 2 when the run cannot go where it is sent (a model a
    cluster does not train, the cluster extra missing, --nproc without the rbm)."""
    if cluster is not None:
        from flowtui.core.cluster.run import check_cluster_config
        from flowtui.core.cluster.spec import ClusterError, require_dask

        try:
            check_cluster_config(config)
            require_dask()
        except (ParamError, ClusterError) as exc:
            fail(str(exc))
    if nproc > 1 and "rbm" not in config.chosen():
        fail(f"--nproc {nproc} trains the rbm with torch.distributed: add --model rbm")


@contextlib.contextmanager
def _ctrl_c_cancels(cancel: threading.Event) -> Iterator[None]:
    """The first ctrl-c sets `cancel` (the run stops cleanly); a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        err_console.print("[yellow]cancelling (ctrl-c again to interrupt at once)...[/]", highlight=False)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _cancelled() -> NoReturn:
    err_console.print("cancelled by the user: nothing was saved", highlight=False)
    raise typer.Exit(EXIT_CANCELLED)


def _with_log_lines(on_event: ev.EventCallback | None) -> ev.EventCallback:
    """`on_event`, or (without a progress bar) one that prints the run's Log lines (the cluster, its
    dashboard link) on stderr: stdout stays the command's output (JSON under --json)."""
    if on_event is not None:
        return on_event

    def log(e: ev.Event) -> None:
        if isinstance(e, ev.Log):
            err_console.print(e.message, highlight=False, soft_wrap=True)

    return log


def run_on_cluster(
    data: Path | None,
    config: RunConfig,
    cluster: str,
    as_json: bool,
    *,
    cancel: threading.Event | None = None,
) -> RunResult:
    """`cluster_run` of the command line's run on `cluster`; every refusal exits 2, a cancel 130."""
    from flowtui.core.cluster.run import cluster_run
    from flowtui.core.cluster.spec import ClusterError

    check_placement(config, cluster, 1)
    source = data or paths.sample_train()
    cancel = cancel or threading.Event()
    with progress_events(as_json) as bar, _ctrl_c_cancels(cancel):
        try:
            return cluster_run(source, config, cluster=cluster, on_event=_with_log_lines(bar), cancel=cancel)
        except ev.Cancelled:
            _cancelled()
        except DataError as err:
            fail_data(err)
        except (ParamError, ClusterError) as exc:
            fail(str(exc))
        except (ValueError, OSError) as exc:
            fail(" ".join(str(exc).split()))


def run_with_nproc(frame_run: RunFn, nproc: int) -> RunResult:
    """`frame_run(cancel)` (the command's ordinary run) with the rbm trained by `nproc` processes."""
    from flowtui.core.cluster.rbm_ddp import DistributedError, data_parallel_rbm

    cancel = threading.Event()
    with _ctrl_c_cancels(cancel):
        try:
            with data_parallel_rbm(nproc):
                return frame_run(cancel)
        except ev.Cancelled:
            _cancelled()
        except DistributedError as exc:
            fail(str(exc))

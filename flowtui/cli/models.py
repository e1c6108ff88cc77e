"""`flowtui evaluate | train | predict | score`: the holdout leaderboard, model files and submissions."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from flowtui.cli import app
from flowtui.cli.cluster_opts import (
    ClusterOpt,
    NprocOpt,
    check_placement,
    cluster_or_none,
    run_on_cluster,
    run_with_nproc,
)
from flowtui.cli.common import (
    DataOpt,
    JsonOpt,
    PresetOpt,
    allow_other_data_option,
    console,
    err_console,
    fail,
    fail_data,
    model_option,
    or_warnings,
    out_option,
    print_json,
    print_params,
    print_warnings,
    progress_events,
    reserve_targets,
)
from flowtui.cli.run_opts import (
    FlowOnlyOpt,
    ModelOpt,
    RoundsOpt,
    SetOpt,
    SmoothingOpt,
    TargetContextOpt,
    TopKOpt,
    run_config,
)
from flowtui.core import events as ev
from flowtui.core import paths, registry, safe_files
from flowtui.core.data import io
from flowtui.core.errors import DataError
from flowtui.core.run import RunResult, run
from flowtui.core.run_config import RunConfig

if TYPE_CHECKING:
    from flowtui.core.data.schema import DataWarning
    from flowtui.core.flow.store import TrainedModel
    from flowtui.core.modelfiles.data_match import DataMatch


def _load(path: Path | None, kind: str, on_event: ev.EventCallback | None) -> pd.DataFrame:
    p = path or (paths.sample_train() if kind == "train" else paths.sample_test())
    try:
        ds = io.load_dataset(p, kind=kind, on_event=on_event)  # type: ignore[arg-type]
    except DataError as err:
        fail_data(err)
    print_warnings(ds.warnings, err_console)  # as `data validate` words them, on stderr
    ds.frame.attrs["source"] = str(p)  # a saved model records the file it was trained on
    return ds.frame


def _dispatch(
    data: Path | None, config: RunConfig, as_json: bool, cluster: str | None, nproc: int
) -> RunResult:
    """The run on one machine, on a Dask cluster (--cluster) or with the rbm on N processes (--nproc)."""
    if cluster is not None:
        return run_on_cluster(data, config, cluster, as_json)
    if nproc > 1:
        return run_with_nproc(lambda cancel: _run(data, config, as_json, cancel), nproc)
    return _run(data, config, as_json)


def _fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _run(
    data: Path | None, config: RunConfig, as_json: bool, cancel: threading.Event | None = None
) -> RunResult:
    with progress_events(as_json) as bar:
        on_event = or_warnings(bar, as_json)
        frame = _load(data, "train", on_event)
        try:
            return run(frame, config, on_event=on_event, cancel=cancel)
        except DataError as err:
            fail_data(err)
        except (ValueError, OSError) as exc:
            fail(" ".join(str(exc).split()))


@app.command("evaluate")
def evaluate_cmd(
    data: DataOpt = None,
    model: ModelOpt = None,
    rounds: RoundsOpt = 1,
    preset: PresetOpt = "full",
    set_: SetOpt = None,
    top_k: TopKOpt = None,
    smoothing: SmoothingOpt = 10.0,
    flow_only: FlowOnlyOpt = False,
    target_context: TargetContextOpt = None,
    cluster: ClusterOpt = None,
    nproc: NprocOpt = 1,
    as_json: JsonOpt = False,
) -> None:
    """Holdout leaderboard: each user's last Flow row held out, the baselines always shown.

    With --cluster only lightgbm (and the baselines) run, on Dask; --nproc N trains the rbm on N processes."""
    where = cluster_or_none(cluster, nproc)
    config = run_config(
        model or [], set_, preset, rounds, smoothing, flow_only, target_context, top_k, baselines=True
    )
    check_placement(config, where, nproc)
    board = _dispatch(data, config, as_json, where, nproc).leaderboard
    assert board is not None  # an evaluate-only run without a holdout raises DataError
    if as_json:
        print_json(board.to_records())
        return
    table = Table(
        title=f"Holdout leaderboard: {board.n_targets:,} held-out Flow rows, {board.rounds} round(s)"
    )
    for col in ("model", "AUC", "log loss", "accuracy", "fit s", "predict s", "notes"):
        table.add_column(col, justify="left" if col in ("model", "notes") else "right")
    for r in board.rows:
        name = f"{r.model} [dim](baseline)[/]" if r.baseline else r.model
        style = "red" if r.failed else None
        table.add_row(
            name,
            _fmt(r.auc),
            _fmt(r.logloss),
            _fmt(r.accuracy),
            f"{r.fit_seconds:.2f}",
            f"{r.predict_seconds:.2f}",
            "; ".join(r.notes),
            style=style,
        )
    console.print(table)
    if board.selected_features:
        console.print(f"top-{len(board.selected_features)} features: {', '.join(board.selected_features)}")
    if board.leak_warning:
        console.print(f"[yellow]warning: {board.leak_warning}[/]", highlight=False)


@app.command("train")
def train_cmd(
    out: Annotated[Path, out_option("Folder; each model is saved to OUT/NAME.")],
    model: ModelOpt = None,
    data: DataOpt = None,
    set_: SetOpt = None,
    preset: PresetOpt = "full",
    rounds: RoundsOpt = 1,
    top_k: TopKOpt = None,
    smoothing: SmoothingOpt = 10.0,
    flow_only: FlowOnlyOpt = False,
    target_context: TargetContextOpt = None,
    cluster: ClusterOpt = None,
    nproc: NprocOpt = 1,
    as_json: JsonOpt = False,
) -> None:
    """Score each model on the holdout, then train it on all of TRAIN and save it to OUT/NAME.

    With --cluster only lightgbm (and the baselines) train, on Dask; --nproc N trains the rbm on N
    torch.distributed processes (one model saved, by rank 0)."""
    where = cluster_or_none(cluster, nproc)
    if not model:
        fail("name at least one model with --model (known: " + ", ".join(registry.model_names()) + ")")
    config = run_config(
        model,
        set_,
        preset,
        rounds,
        smoothing,
        flow_only,
        target_context,
        top_k,
        baselines=False,
        models_dir=out,
    )
    check_placement(config, where, nproc)
    from flowtui.core.flow.store import check_model_target

    with reserve_targets(out, config.chosen(), check_model_target):
        result = _dispatch(data, config, as_json, where, nproc)
    if result.failed:
        fail("; ".join(f"{name}: {why}" for name, why in result.failed.items()))
    results = _trained_rows(result)
    if as_json:
        print_json(results)
        return
    _print_trained(results)


def _trained_rows(result: RunResult) -> list[dict[str, Any]]:
    """One row per trained model: its holdout scores and the folder it was saved to."""
    results: list[dict[str, Any]] = []
    for name, trained in result.trained.items():
        h = trained.holdout
        results.append(
            {
                "model": name,
                "path": str(result.saved[name]),
                "auc": h.get("auc"),
                "logloss": h.get("logloss"),
                "accuracy": h.get("accuracy"),
                "n": h.get("n"),
                "notes": trained.notes,
            }
        )
    return results


def _print_trained(results: list[dict[str, Any]]) -> None:
    table = Table(title="Trained models (holdout scores)")
    for col in ("model", "AUC", "log loss", "accuracy", "n", "saved to", "notes"):
        table.add_column(col, justify="right" if col in ("AUC", "log loss", "accuracy", "n") else "left")
    for r in results:
        table.add_row(
            r["model"],
            _fmt(r["auc"]),
            _fmt(r["logloss"]),
            _fmt(r["accuracy"]),
            str(r["n"] or "-"),
            r["path"],
            "; ".join(r["notes"]),
        )
    console.print(table)


@app.command("predict")
def predict_cmd(
    model: Annotated[Path, model_option("A saved model folder (DIR/NAME).")],
    out: Annotated[Path, out_option("Submission CSV to write (sample_id,is_listened).")],
    data: DataOpt = None,
    test: Annotated[
        Path | None, typer.Option("--test", help="Test file; default: the bundled sample.")
    ] = None,
    allow_other_data: Annotated[
        bool,
        allow_other_data_option(
            "Predict even when the data shares few users and media with the model's training data."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a submission: one listen probability per test row, features from the whole train history.

    The model must meet its own training data, or data whose test users and media it mostly knows (a warning
    gives the shares); other data is refused unless --allow-other-data. OUT is replaced atomically and only
    when it is a regular file (never a link, pipe or device)."""
    from flowtui.core.flow.store import load_model

    try:
        safe_files.check_output_path(out)
        trained = load_model(model)
    except DataError as err:
        fail_data(err)
    sub, match, cold = _predict(trained, data, test, out, allow_other_data, as_json)
    summary: dict[str, Any] = {
        "model": trained.name,
        "out": str(out),
        "rows": len(sub),
        "mean": float(sub["is_listened"].mean()) if len(sub) else None,
    }
    if cold:
        summary["test_users_without_history"] = cold[0].count
    if match.warning:
        summary["data_warning"] = match.warning
    if as_json:
        print_json(summary)
        return
    if match.warning:
        err_console.print(f"[yellow]warning:[/] {escape(match.warning)}", highlight=False)
    for w in cold:
        err_console.print(
            f"[yellow]warning:[/] {escape(w.one_line())} (population fallbacks used)", highlight=False
        )
    console.print(
        f"wrote {len(sub):,} predictions of {trained.name} to {out} (mean {_fmt(summary['mean'], 3)})",
        highlight=False,
    )


def _predict(
    trained: TrainedModel,
    data: Path | None,
    test: Path | None,
    out: Path,
    allow_other_data: bool,
    as_json: bool,
) -> tuple[pd.DataFrame, DataMatch, list[DataWarning]]:
    """Check the data against the model, predict the test rows and write OUT (exit 2 on any refusal):
    the submission, the data match and the warnings on test users without history."""
    from flowtui.core.flow.evaluate import predict
    from flowtui.core.flow.store import DataMismatchError, check_data

    with progress_events(as_json) as bar:
        on_event = or_warnings(bar, as_json)
        train = _load(data, "train", on_event)
        test_frame = _load(test, "test", on_event)
        try:
            match = check_data(trained, train, rows=test_frame, allow_other=allow_other_data)
        except DataMismatchError as err:
            fail(f"{err.one_line()}; pass --allow-other-data to use it anyway", error=err)
        cold = io.check_test_users(io.Dataset(train, "train"), io.Dataset(test_frame, "test"))
        try:
            sub = predict(trained, train, test_frame, on_event=on_event)
            safe_files.write_csv(sub, out)
        except DataError as err:
            fail_data(err)
        except (ValueError, OSError) as exc:
            fail(f"{trained.name}: {' '.join(str(exc).split())}")
    return sub, match, cold


def _read_scored(path: Path, role: Literal["submission", "answers"]) -> pd.DataFrame:
    from flowtui.core.data.scored import read_scored

    try:
        return read_scored(path, role)
    except DataError as err:
        fail_data(err)


@app.command("score")
def score_cmd(
    submission: Annotated[Path, typer.Argument(help="Submission CSV (sample_id,is_listened).")],
    answers: Annotated[Path, typer.Option("--answers", help="Answers CSV (sample_id,is_listened[,p_true]).")],
    as_json: JsonOpt = False,
) -> None:
    """ROC AUC of a submission against answers (and the oracle AUC when the answers carry p_true)."""
    from flowtui.core import metrics

    sub = _read_scored(submission, "submission")
    ans = _read_scored(answers, "answers")
    missing = np.setdiff1d(ans["sample_id"].to_numpy(), sub["sample_id"].to_numpy())
    extra = np.setdiff1d(sub["sample_id"].to_numpy(), ans["sample_id"].to_numpy())
    if missing.size or extra.size:
        examples = [f"e.g. missing {missing[:5].tolist()}"] if missing.size else []
        examples += [f"e.g. not in the answers {extra[:5].tolist()}"] if extra.size else []
        fail(
            f"{submission}: sample ids do not match {answers}: "
            f"{missing.size} missing from the submission, {extra.size} not in the answers",
            examples,
        )
    merged = ans.merge(sub, on="sample_id", suffixes=("_true", ""))
    y = merged["is_listened_true"].to_numpy()
    result: dict[str, Any] = {
        "auc": float(metrics.auc(y, merged["is_listened"].to_numpy())),
        "n": len(merged),
    }
    if "p_true" in merged.columns:
        result["oracle_auc"] = float(metrics.auc(y, merged["p_true"].to_numpy()))
    if as_json:
        print_json(result)
        return
    line = f"AUC {result['auc']:.4f} on {result['n']:,} rows"
    if "oracle_auc" in result:
        line += f" (oracle AUC from p_true: {result['oracle_auc']:.4f})"
    console.print(line, highlight=False)


@app.command("params")
def params_cmd(
    model: Annotated[str, typer.Argument(help="A registered model name.")],
    preset: PresetOpt = "full",
    as_json: JsonOpt = False,
) -> None:
    """List a model's parameters: value under the preset, what each accepts, and what it does."""
    if model not in registry.model_names():
        fail(f"unknown model {model!r}; known: {', '.join(registry.model_names())}")
    print_params(registry.get_spec(model), model, preset, as_json)

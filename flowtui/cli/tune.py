"""`flowtui tune-recs`: search each recommender's parameters on a validation split of the data's training
entries (`flowtui.core.workflows.tune`), print the default-against-tuned table and write the best
parameters with the trial history (JSON) for `flowtui train-recs --params FILE`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from flowtui.cli import app
from flowtui.cli.common import (
    DataOpt,
    JsonOpt,
    console,
    err_console,
    fail,
    fail_data,
    print_json,
    print_warnings,
    progress_events,
)
from flowtui.core import events as ev
from flowtui.core import registry
from flowtui.core.errors import DataError, ParamError
from flowtui.core.params import show_value
from flowtui.core.workflows import tune_file
from flowtui.core.workflows.recs import FEEDBACK, check_names, check_overrides, load_train_dataset
from flowtui.core.workflows.tune import Budget, TuneRequest, TuneResult, parse_duration, tune
from flowtui.core.workflows.tune_space import parse_spaces

#: Trials per model when no budget is given.
DEFAULT_TRIALS = 10

ModelsOpt = Annotated[
    list[str] | None,
    typer.Option("--model", "-m", help="A registered recommender (repeat; default: all of them)."),
]
TrialsOpt = Annotated[
    int | None,
    typer.Option(
        "--trials", help=f"Fits in all, shared between the models (default {DEFAULT_TRIALS} a model)."
    ),
]
BudgetOpt = Annotated[
    str | None, typer.Option("--budget", help="Wall time in all, shared between the models: 90s, 10m, 1h.")
]
SeedOpt = Annotated[
    int,
    typer.Option(
        "--seed",
        help="Seed of the splits (evaluate-recs' test split of this seed is never seen) and of the sampler.",
    ),
]
TunedOutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="JSON file to write (default: DATA.tuned.json beside the data; tuned.json for the sample).",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Fix a parameter, MODEL.KEY=VALUE (not searched; repeat)."),
]
SpaceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--space",
        help="Search MODEL.KEY over LOW:HIGH, LOW:HIGH:log or A,B,C instead of its declared space (repeat).",
    ),
]
ShowSpaceOpt = Annotated[
    bool, typer.Option("--show-space", help="Print each model's search space and stop (no data is read).")
]
FeedbackOpt = Annotated[str, typer.Option("--feedback", help="labels, plays or auto (as train-recs).")]
#: train-recs --params FILE
ParamsFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--params", help="Train with the parameters tune-recs wrote to this file (--set wins over it)."
    ),
]


def with_tuned(
    path: Path | None, names: list[str], given: dict[str, dict[str, str]], preset: str
) -> dict[str, dict[str, object]]:
    """`train-recs --params FILE`: the file's parameters for `names` with `given` over them; exit 2 with
    one line on a file that is not tune-recs' or a value the model refuses."""
    try:
        return tune_file.with_tuned(path, names, given, preset)
    except DataError as err:
        fail_data(err)
    except ParamError as exc:
        fail(f"--params {path}: {exc}")


def _budget(trials: int | None, budget: str | None, n_models: int) -> Budget:
    if trials is not None and budget is not None:
        fail("give --trials or --budget, not both")
    if trials is not None and trials < 1:
        fail(f"--trials {trials}: expected an integer >= 1")
    if trials is not None and trials < n_models:
        fail(f"--trials {trials}: expected at least one trial per model ({n_models})")
    if budget is None:
        return Budget(trials=trials if trials is not None else DEFAULT_TRIALS * n_models)
    try:
        return Budget(seconds=parse_duration(budget))
    except ParamError as exc:
        fail(f"--{exc}")


def _request(
    names: list[str],
    budget: Budget,
    seed: int,
    set_: list[str] | None,
    space: list[str] | None,
    feedback: str,
) -> TuneRequest:
    if feedback not in FEEDBACK:
        fail(f"--feedback {feedback!r}: expected auto, labels or plays")
    try:
        request = TuneRequest(
            tuple(names),
            budget,
            seed=seed,
            params=check_overrides(set_ or [], names, "full"),
            spaces=parse_spaces(space or [], names),
            implicit=FEEDBACK[feedback],
        )
        request.validate()
    except ParamError as exc:
        fail(str(exc))
    return request


@app.command("tune-recs")
def tune_recs_cmd(
    data: DataOpt = None,
    model: ModelsOpt = None,
    trials: TrialsOpt = None,
    budget: BudgetOpt = None,
    seed: SeedOpt = 0,
    out: TunedOutOpt = None,
    set_: SetOpt = None,
    space: SpaceOpt = None,
    feedback: FeedbackOpt = "auto",
    show_space: ShowSpaceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Tune recommenders on a validation split of TRAIN's training entries; write the best parameters."""
    try:
        names = check_names(model)
    except ParamError as exc:
        fail(str(exc))
    request = _request(names, _budget(trials, budget, len(names)), seed, set_, space, feedback)
    if show_space:
        print_spaces(request, as_json)
        return
    target = out or tune_file.default_path(data)
    try:
        tune_file.check_target(target)
        ds = load_train_dataset(data)
    except DataError as err:
        fail_data(err)
    print_warnings(ds.warnings, err_console)
    with progress_events(as_json) as on_event:
        try:
            result = _tune_until_ctrl_c(ds.frame, request, on_event)
        except ParamError as exc:
            fail(str(exc))
        except ValueError as exc:
            fail(" ".join(str(exc).split()))
    try:
        from flowtui.core.modelfiles import fingerprint

        source = str(data) if data is not None else None
        tune_file.save_tuned(result, target, source=source, fingerprint=fingerprint(ds.frame))
    except DataError as err:
        fail_data(err)
    if as_json:
        print_json({**result.to_dict(), "out": str(target)})
        return
    print_tuned(result, target)


def print_spaces(request: TuneRequest, as_json: bool) -> None:
    """`--show-space`: each parameter searched, its default and where the tuner looks."""
    rows = [
        {"model": name, "key": key, "default": registry.get_recommender(name).schema.defaults()[key],
         "search": str(s), **s.to_dict()}
        for name, space in request.validate().items()
        for key, s in space.items()
    ]  # fmt: skip
    if as_json:
        print_json(rows)
        return
    t = Table(title="search spaces (declared with each model's parameters; replace with --space)")
    for col in ("model", "key", "default", "search"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["model"], r["key"], show_value(r["default"]), r["search"])
    console.print(t)


def _tune_until_ctrl_c(
    frame: pd.DataFrame, request: TuneRequest, on_event: ev.EventCallback | None
) -> TuneResult:
    """`tune` in a worker thread; ctrl-c sets its cancel event, and what was found is kept."""
    cancel, done = threading.Event(), threading.Event()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = tune(frame, request, on_event=on_event, cancel=cancel)
        except BaseException as exc:  # handed to the main thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="tune-recs", daemon=True).start()
    while not done.is_set():  # not Thread.join: a ctrl-c inside join can mark the thread stopped (3.11)
        try:
            done.wait(0.2)
        except KeyboardInterrupt:
            cancel.set()
            err_console.print("cancelling: the best parameters found so far are kept", highlight=False)
    if "error" in box:
        raise box["error"]
    result: TuneResult = box["result"]
    return result


def _shown(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else show_value(v)


def _score(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def print_tuned(result: TuneResult, target: Path) -> None:
    """The table: each model's default and tuned NDCG@k, its best parameters and its trials."""
    k = result.setup["k"]
    t = Table(title=f"tuned on a validation split of the training entries (seed {result.setup['seed']})")
    for col in ("model", f"default NDCG@{k}", f"tuned NDCG@{k}", "best parameters", "trials"):
        t.add_column(col)
    for m in result.models.values():
        best = ", ".join(f"{key}={_shown(v)}" for key, v in m.best.items()) or "the defaults"
        row: list[Any] = [m.model, _score(m.default_score), _score(m.best_score), best, str(len(m.history))]
        t.add_row(*(escape(str(c)) for c in row))
    console.print(t)
    for name, why in result.skipped.items():
        console.print(f"{escape(name)}: skipped ({escape(why)})", highlight=False)
    if result.cancelled:
        console.print("cancelled: the best found so far is kept", highlight=False)
    console.print(
        f"wrote {escape(str(target))}; train with: flowtui train-recs --params {escape(str(target))} ...",
        highlight=False,
        soft_wrap=True,
    )

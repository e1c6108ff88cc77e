"""Tune recommenders on the user's own data: Optuna's TPE search over each model's declared search space,
scored by NDCG@k on a validation split carved from the TRAINING entries only.

Protocol. The data becomes the recommender matrix; `evaluation.holdout(..., validation=True)` with the
request's seed puts aside the test entries that `evaluate-recs --seed S` holds out (no trial fits or
scores on them) and holds out a share of the remaining entries as the validation set. Each model is
fitted on what is left: first with its defaults (trial 0, the default's score), then with the values
Optuna's TPE sampler (seeded) proposes, until its share of the budget is spent: `trials` or `seconds`
shared fairly between the models (what a model leaves unused passes to the next ones). A failed trial
(a fit that raises ValueError) is recorded and the search goes on. `cancel` stops between trials (a trial
in flight is dropped) and keeps what was found; `on_event` hears `Progress("tune", ...)` per trial with
the best score so far.

`OptunaTuner` is the `Tuner` of `workflows.recs.train`: `train_and_save(..., tuner=OptunaTuner(...))`
trains each model with the parameters it found.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from flowtui.core import events as ev
from flowtui.core import registry
from flowtui.core.errors import ParamError
from flowtui.core.params import Value
from flowtui.core.recs.evaluation import evaluate_model, holdout
from flowtui.core.recs.interactions import MAX_ITEMS, InteractionMatrix, recommender_matrix
from flowtui.core.search import Search
from flowtui.core.workflows.recs.settings import check_names
from flowtui.core.workflows.tune_space import Space, as_values, distributions, space_of

if TYPE_CHECKING:
    from flowtui.core.registry import RecommenderSpec

__all__ = ["Budget", "ModelTuning", "OptunaTuner", "TuneRequest", "TuneResult", "parse_duration", "tune"]

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smh]?)")


def parse_duration(text: str) -> float:
    """Seconds of a duration written `90`, `90s`, `10m` or `1.5h` (ParamError otherwise, or when not > 0)."""
    m = _DURATION.fullmatch(text)
    seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)] if m else math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ParamError(f"budget {text!r}: expected a duration > 0 such as 90s, 10m or 1h")
    return seconds


@dataclass(frozen=True)
class Budget:
    """How much searching: `trials` fits in all, or `seconds` of wall time, shared between the models."""

    trials: int | None = None
    seconds: float | None = None

    def check(self, n_models: int) -> Budget:
        """ParamError unless exactly one of trials (at least one per model) and seconds (> 0) is given."""
        if (self.trials is None) == (self.seconds is None):
            raise ParamError("give a budget of trials or of seconds, not both or neither")
        if self.trials is not None and self.trials < max(1, n_models):
            raise ParamError(
                f"trials must be at least 1 per model tuned ({max(1, n_models)}), got {self.trials}"
            )
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ParamError(f"seconds must be a number > 0, got {self.seconds}")
        return self


@dataclass(frozen=True)
class TuneRequest:
    """What to tune: `models` within `budget`; `params` are fixed overrides (never searched), `spaces`
    replace parts of the declared search spaces; `k`, `fraction` and `seed` define the validation split."""

    models: tuple[str, ...]
    budget: Budget
    seed: int = 0
    preset: str = "full"
    params: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    spaces: Mapping[str, Mapping[str, Search]] = field(default_factory=dict)
    k: int = 10
    fraction: float = 0.2
    implicit: bool | None = None
    max_items: int = MAX_ITEMS

    def validate(self) -> dict[str, Space]:
        """Every setting checked before any data is read (ParamError); each model's search space."""
        names = check_names(self.models)
        self.budget.check(len(names))
        if self.k < 1:
            raise ParamError(f"k must be an integer >= 1, got {self.k}")
        if not 0.0 < self.fraction < 0.5:
            raise ParamError(f"fraction must be a number between 0 and 0.5, got {self.fraction}")
        stray = sorted((set(self.params) | set(self.spaces)) - set(names))
        if stray:
            raise ParamError(f"parameters given for {', '.join(stray)}, which this run does not tune")
        spaces = {}
        for name in names:
            registry.get_recommender(name).params(self.params.get(name), self.preset)
            fixed = set(self.params.get(name, {}))
            both = sorted(fixed & set(self.spaces.get(name, {})))
            if both:
                raise ParamError(f"{name}: {', '.join(both)} is both set and searched; drop one")
            # a parameter given a value is not searched
            spaces[name] = {k: s for k, s in space_of(name, self.spaces.get(name)).items() if k not in fixed}
        return spaces


@dataclass
class ModelTuning:
    """One model's search: the default's and the best score, the best searched values ({}: the defaults
    were best) and every trial (number, params, score, seconds, error)."""

    model: str
    space: Space
    default_score: float | None = None
    best_score: float | None = None
    best: dict[str, Value] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "default_ndcg": self.default_score,
            "tuned_ndcg": self.best_score,
            "best": self.best,
            "trials": len(self.history),
            "space": {k: s.to_dict() for k, s in self.space.items()},
            "history": self.history,
        }


@dataclass
class TuneResult:
    """Each model's search, in order; models skipped (with why); whether a cancel stopped the search."""

    setup: dict[str, Any]
    given: dict[str, dict[str, object]] = field(default_factory=dict)
    models: dict[str, ModelTuning] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    cancelled: bool = False

    def best_params(self) -> dict[str, dict[str, object]]:
        """Each tuned model's overrides to train with: the fixed ones and the best searched values."""
        return {n: {**self.given.get(n, {}), **t.best} for n, t in self.models.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "setup": self.setup,
            "params": self.best_params(),
            "models": [t.to_dict() for t in self.models.values()],
            "skipped": self.skipped,
            "cancelled": self.cancelled,
        }


class _Clock:
    """The budget shared between the models with something to search: each gets an equal share of what
    is left when it starts (a model with nothing to search spends one trial, its defaults)."""

    def __init__(self, budget: Budget, n_searched: int, n_fixed: int) -> None:
        self.left = n_searched
        self.trials_left = budget.trials - n_fixed if budget.trials is not None else None
        self.end = time.monotonic() + budget.seconds if budget.seconds is not None else None

    def share(self, searched: bool) -> tuple[int | None, float | None]:
        """(the trials, the deadline) of the next model."""
        if not searched:
            return 1, None
        left, self.left = max(1, self.left), self.left - 1
        trials = self.trials_left // left if self.trials_left is not None else None
        deadline = None
        if self.end is not None:
            now = time.monotonic()
            deadline = now + max(0.0, self.end - now) / left
        return trials, deadline

    def spent(self, trials: int, searched: bool) -> None:
        if self.trials_left is not None and searched:
            self.trials_left -= trials


def tune(
    data: pd.DataFrame | InteractionMatrix,
    request: TuneRequest,
    *,
    on_event: ev.EventCallback | None = None,
    cancel: threading.Event | None = None,
) -> TuneResult:
    """Search each model of `request` (see the module's protocol); ParamError before any work on a bad
    setting, ValueError when the data leaves nothing to hold out. A cancel returns what was found, with
    `cancelled` set."""
    spaces = request.validate()
    matrix = (
        data
        if isinstance(data, InteractionMatrix)
        else recommender_matrix(data, implicit=request.implicit, max_items=request.max_items)
    )
    train, val = holdout(matrix, request.fraction, "random", request.seed, validation=True)
    setup = {
        "k": request.k,
        "seed": request.seed,
        "fraction": request.fraction,
        "preset": request.preset,
        "trials": request.budget.trials,
        "seconds": request.budget.seconds,
        "implicit": matrix.is_implicit,
        "n_train": train.nnz,
        "n_validation": val.nnz,
    }
    result = TuneResult(setup, given={n: dict(p) for n, p in request.params.items()})
    specs = {n: registry.get_recommender(n) for n in spaces}
    for n, spec in specs.items():
        if matrix.is_implicit and getattr(spec.factory, "needs_labels", False):
            result.skipped[n] = "needs listen/skip labels; this data holds plays only"
    names = [n for n in specs if n not in result.skipped]
    n_searched = sum(1 for n in names if spaces[n])
    clock = _Clock(request.budget, n_searched, len(names) - n_searched)
    search = _Search(request, train, val, on_event, cancel)
    for n in names:
        tuning = result.models[n] = ModelTuning(n, spaces[n])
        try:
            search.run(specs[n], tuning, *clock.share(bool(spaces[n])))
        except ev.Cancelled:
            result.cancelled = True
            break
        finally:
            clock.spent(len(tuning.history), bool(spaces[n]))
    end = "cancelled" if result.cancelled else "done"
    ev.emit(on_event, ev.Progress("tune", search.done, request.budget.trials, end))
    return result


class _Search:
    """The trials of one tuning run: fits on `train`, scores on `val`."""

    def __init__(
        self,
        request: TuneRequest,
        train: InteractionMatrix,
        val: InteractionMatrix,
        on_event: ev.EventCallback | None,
        cancel: threading.Event | None,
    ) -> None:
        self.request, self.train, self.val = request, train, val
        self.on_event, self.cancel = on_event, cancel
        self.done = 0

    def run(self, spec: RecommenderSpec, t: ModelTuning, trials: int | None, deadline: float | None) -> None:
        """The default, then TPE's proposals until `trials` or `deadline` is reached (or a cancel)."""
        import optuna

        self._trial(spec, t, {})
        if not t.space:
            return
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # else it logs every trial to stderr
        try:
            sampler = optuna.samplers.TPESampler(seed=self.request.seed)
            study = optuna.create_study(direction="maximize", sampler=sampler)
            dists = distributions(spec.name, t.space)
            while (trials is None or len(t.history) < trials) and (
                deadline is None or time.monotonic() < deadline
            ):
                ev.check_cancel(self.cancel)
                trial = study.ask(dists)
                score = self._trial(spec, t, as_values(trial.params))
                if score is None:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, score)
        finally:
            optuna.logging.set_verbosity(verbosity)

    def _trial(self, spec: RecommenderSpec, t: ModelTuning, values: dict[str, Value]) -> float | None:
        """Fit and score one setting; record it in `t` (a ValueError is a failed trial, score None)."""
        ev.check_cancel(self.cancel)
        given = self.request.params.get(spec.name, {})
        t0 = time.perf_counter()
        record: dict[str, Any] = {"trial": len(t.history), "params": values}
        score: float | None = None
        try:
            model = spec.build({**given, **values}, self.request.preset)
            metrics = evaluate_model(model, self.train, self.val, self.request.k, cancel=self.cancel)
            score = metrics["ndcg_at_k"]
        except (ValueError, TypeError, ArithmeticError) as exc:
            record["error"] = " ".join(str(exc).split())
        record.update(ndcg=score, seconds=round(time.perf_counter() - t0, 3))
        t.history.append(record)
        if not values:
            t.default_score = score
        if score is not None and (t.best_score is None or score > t.best_score):
            t.best_score, t.best = score, dict(values)
        self.done += 1
        shown = "failed" if score is None else f"{score:.4f}"
        best = "none" if t.best_score is None else f"{t.best_score:.4f}"
        message = f"{spec.name} trial {record['trial']}: NDCG@{self.request.k} {shown}, best {best}"
        ev.emit(self.on_event, ev.Progress("tune", self.done, self.request.budget.trials, message))
        return score


class OptunaTuner:
    """The `Tuner` of `train_and_save`: tunes the chosen models on the data within `budget` and returns
    their best overrides; the last search is kept in `result`."""

    def __init__(
        self,
        budget: Budget,
        *,
        seed: int = 0,
        spaces: Mapping[str, Mapping[str, Search]] | None = None,
        k: int = 10,
        implicit: bool | None = None,
        max_items: int = MAX_ITEMS,
    ) -> None:
        self.budget, self.seed, self.spaces, self.k = budget, seed, dict(spaces or {}), k
        self.implicit, self.max_items = implicit, max_items
        self.result: TuneResult | None = None

    def __call__(
        self,
        frame: pd.DataFrame,
        names: Sequence[str],
        given: Mapping[str, Mapping[str, object]],
        *,
        preset: str,
        on_event: ev.EventCallback | None,
        cancel: threading.Event | None,
    ) -> Mapping[str, Mapping[str, object]]:
        request = TuneRequest(
            tuple(names),
            self.budget,
            seed=self.seed,
            preset=preset,
            params=given,
            spaces={n: s for n, s in self.spaces.items() if n in names},
            k=self.k,
            implicit=self.implicit,
            max_items=self.max_items,
        )
        self.result = tune(frame, request, on_event=on_event, cancel=cancel)
        return self.result.best_params()

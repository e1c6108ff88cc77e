"""Train recommenders and save each to OUT/NAME with the data it learnt; the seam where a tuner gives the
parameters."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from flowtui.core import events as ev
from flowtui.core import registry
from flowtui.core.errors import DataError, ParamError
from flowtui.core.modelfiles import fingerprint as fingerprint_of
from flowtui.core.recs import store
from flowtui.core.recs.interactions import MAX_ITEMS
from flowtui.core.workflows.recs.settings import check_names


# -- the tuner seam ----------------------------------------------------------------------------------
class Tuner(Protocol):
    """What a tuner provides: each chosen model's parameter overrides, searched on the data's validation
    splits (`evaluate(..., validation=True)`), starting from the `given` overrides. `train_and_save`
    calls it before any fit and trains with what it returns (checked like `--set` values)."""

    def __call__(
        self,
        frame: pd.DataFrame,
        names: Sequence[str],
        given: Mapping[str, Mapping[str, object]],
        *,
        preset: str,
        on_event: ev.EventCallback | None,
        cancel: threading.Event | None,
    ) -> Mapping[str, Mapping[str, object]]: ...


# -- train and save ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainRequest:
    """What to train and where: each of `models` is saved to OUT/NAME.

    `params` holds each model's overrides (from `--set`, a form, or a tuner); `implicit` is the feedback
    kind (`FEEDBACK`); `source` names the data file recorded beside each model. With `keep_going`, a model
    that fails (or whose folder is refused) is recorded and the others go on; else the run stops there."""

    models: tuple[str, ...]
    out: Path
    params: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    preset: str = "full"
    implicit: bool | None = None
    max_items: int = MAX_ITEMS
    source: str | None = None
    keep_going: bool = False

    def validate(self) -> TrainRequest:
        """Check names, parameters and (unless `keep_going`) every output folder before any work:
        ParamError, or DataError for a folder flowtui will not replace. Returns the request."""
        check_names(self.models)
        if self.max_items < 1:
            raise ParamError(f"max_items must be an integer >= 1, got {self.max_items}")
        stray = sorted(set(self.params) - set(self.models))
        if stray:
            raise ParamError(f"parameters given for {', '.join(stray)}, which this run does not train")
        for name in self.models:
            registry.get_recommender(name).params(self.params.get(name), self.preset)
        if not self.keep_going:
            for name in self.models:
                store.check_recommender_target(self.out / name)
        return self


@dataclass(frozen=True)
class Trained:
    """One recommender fitted and saved to `path`."""

    model: str
    path: Path
    n_items: int
    n_users: int
    implicit: bool
    fit_seconds: float
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        """The record `flowtui train-recs --json` prints."""
        return {
            "model": self.model,
            "path": str(self.path),
            "n_items": self.n_items,
            "n_users": self.n_users,
            "implicit": self.implicit,
            "fit_seconds": round(self.fit_seconds, 3),
            "notes": self.notes,
        }


@dataclass
class TrainResult:
    """The models saved, in order, and those that failed with their error (a DataError, ValueError,
    TypeError or OSError, for the front end to word)."""

    saved: list[Trained] = field(default_factory=list)
    failed: dict[str, Exception] = field(default_factory=dict)


def train_and_save(
    frame: pd.DataFrame,
    request: TrainRequest,
    *,
    tuner: Tuner | None = None,
    fingerprint: str | None = None,
    on_event: ev.EventCallback | None = None,
    cancel: threading.Event | None = None,
    on_model: Callable[[str, Trained | Exception], None] | None = None,
) -> TrainResult:
    """Fit each model of `request` on every row of `frame` and save it to OUT/NAME with the data it learnt
    (source, fingerprint, id sketches). `fingerprint`: the frame's, when the caller has it already.

    Emits `Progress("train-recs", ...)` per model and `Saved` after each save; `on_model(name, outcome)`
    hears each model's `Trained` record or exception as soon as it has one. A model that fails is recorded in `failed`; the run stops
    there unless `keep_going`. Raises ParamError/DataError from `validate` (before any fit) and
    `events.Cancelled` (models saved before it stay)."""
    from flowtui.core.modelfiles.data_match import describe_data

    if tuner is not None:
        tuned = tuner(
            frame, request.models, request.params, preset=request.preset, on_event=on_event, cancel=cancel
        )
        request = replace(request, params={**request.params, **tuned})
    request.validate()
    fp = fingerprint or fingerprint_of(frame)
    described = describe_data(frame, fp, source=request.source)
    result = TrainResult()
    total = len(request.models)

    def tell(name: str, outcome: Trained | Exception) -> None:
        if on_model is not None:
            on_model(name, outcome)

    for i, name in enumerate(request.models):
        ev.check_cancel(cancel)
        ev.emit(on_event, ev.Progress("train-recs", i, total, name))
        try:
            trained = _fit_and_save(frame, name, request, fp, described, on_event, cancel)
        except (DataError, ValueError, TypeError, OSError) as exc:
            result.failed[name] = exc
            tell(name, exc)
            if not request.keep_going:
                return result
            ev.emit(on_event, ev.Log(f"{name} failed: {' '.join(str(exc).split())}", level="warning"))
            continue
        result.saved.append(trained)
        ev.emit(on_event, ev.Saved(name, str(trained.path)))
        tell(name, trained)
    ev.emit(on_event, ev.Progress("train-recs", total, total, "done"))
    return result


def _fit_and_save(
    frame: pd.DataFrame,
    name: str,
    request: TrainRequest,
    fingerprint: str,
    described: Any,
    on_event: ev.EventCallback | None,
    cancel: threading.Event | None,
) -> Trained:
    folder = request.out / name
    store.check_recommender_target(folder)
    rec = store.train_recommender(
        frame,
        name,
        request.params.get(name),
        request.preset,
        implicit=request.implicit,
        max_items=request.max_items,
        on_event=on_event,
        cancel=cancel,
    )
    ev.check_cancel(cancel)  # nothing is saved once cancelled
    path = store.save_recommender(rec, folder, fingerprint=fingerprint, data=described)
    return Trained(
        name, path, len(rec.item_ids_), rec.n_users_, rec.implicit_, rec.fit_seconds_, list(rec.notes)
    )

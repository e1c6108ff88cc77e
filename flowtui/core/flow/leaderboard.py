"""The holdout leaderboard: one row of pooled scores per model, and the tally the rounds fill in.

`Tally` collects each round's fits (`Fit`: the model, its probabilities of the round's targets, timings)
and turns them into a `Leaderboard` sorted by AUC, failed models last, with a warning when a score is
too good to be honest. One machine's `evaluate.holdout_leaderboard` and the cluster's run fill the same tally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from flowtui.core import metrics, registry
from flowtui.core.registry import FlowModel

__all__ = ["LEAK_AUC", "RECORD_KEYS", "Fit", "Leaderboard", "LeaderboardRow", "Tally"]

#: A holdout AUC above this is almost certainly a leak (honest DSG17 holdouts score 0.62-0.72).
LEAK_AUC = 0.8
RECORD_KEYS = ("model", "auc", "logloss", "accuracy", "fit_seconds", "predict_seconds")


@dataclass
class LeaderboardRow:
    """Scores of one model, pooled over the holdout rounds (None where the model failed)."""

    model: str
    auc: float | None
    logloss: float | None
    accuracy: float | None
    fit_seconds: float
    predict_seconds: float
    notes: list[str] = field(default_factory=list)
    baseline: bool = False
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def record(self) -> dict[str, Any]:
        """The row as a JSON-ready dict with exactly the keys of `RECORD_KEYS`."""
        return {k: getattr(self, k) for k in RECORD_KEYS}


@dataclass
class Leaderboard:
    """A holdout leaderboard: rows sorted by AUC (failed models last) and what the charts need."""

    rows: list[LeaderboardRow]
    #: Per model, the pooled holdout labels and predicted probabilities (for ROC curves).
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    #: Per model, feature importances of its round-0 fit where the model has them.
    importances: dict[str, pd.Series] = field(default_factory=dict)
    leak_warning: str | None = None
    n_targets: int = 0
    rounds: int = 0
    #: The features kept by `top_k` selection (None when all features were used).
    selected_features: list[str] | None = None

    def to_records(self) -> list[dict[str, Any]]:
        """The rows as dicts with keys `model, auc, logloss, accuracy, fit_seconds, predict_seconds`."""
        return [r.record() for r in self.rows]

    def row(self, name: str) -> LeaderboardRow:
        """The row of model `name`."""
        for r in self.rows:
            if r.model == name:
                return r
        raise KeyError(name)


def _scores(y: np.ndarray, p: np.ndarray) -> tuple[float | None, float | None, float | None]:
    if len(y) == 0:
        return None, None, None
    auc = float(metrics.auc(y, p)) if len(np.unique(y)) == 2 else None
    return auc, float(metrics.logloss(y, p)), float(metrics.accuracy(y, p))


@dataclass
class Fit:
    """One model's fit of one holdout round: the model, its probabilities of the round's targets, timings."""

    model: FlowModel
    p: np.ndarray
    fit_seconds: float
    predict_seconds: float


@dataclass
class Tally:
    """What the rounds of a holdout collect per model, turned into a `Leaderboard` at the end."""

    names: list[str]
    ys: list[np.ndarray] = field(default_factory=list)
    ps: dict[str, list[np.ndarray]] = field(default_factory=dict)
    fit_s: dict[str, float] = field(default_factory=dict)
    pred_s: dict[str, float] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    importances: dict[str, pd.Series] = field(default_factory=dict)

    def add(self, name: str, fit: Fit, *, first_round: bool) -> None:
        """Record one model's fit of one round."""
        self.fit_s[name] = self.fit_s.get(name, 0.0) + fit.fit_seconds
        self.pred_s[name] = self.pred_s.get(name, 0.0) + fit.predict_seconds
        self.ps.setdefault(name, []).append(fit.p)
        notes = self.notes.setdefault(name, [])
        notes.extend(n for n in fit.model.notes if n not in notes)
        if first_round:
            imp = fit.model.feature_importances()
            if imp is not None:
                self.importances[name] = imp

    def leaderboard(self, *, rounds: int, selected: list[str] | None) -> Leaderboard:
        """The pooled scores, sorted by AUC (failed models last), with the leak warning."""
        y_all = np.concatenate(self.ys)
        rows: list[LeaderboardRow] = []
        predictions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in self.names:
            base = registry.get_spec(name).baseline
            fit_s, pred_s = self.fit_s.get(name, 0.0), self.pred_s.get(name, 0.0)
            error = self.errors.get(name)
            if error is not None:
                rows.append(
                    LeaderboardRow(name, None, None, None, fit_s, pred_s, [f"failed: {error}"], base, error)
                )
                continue
            p_all = np.concatenate(self.ps[name])
            predictions[name] = (y_all, p_all)
            auc, ll, acc = _scores(y_all, p_all)
            rows.append(LeaderboardRow(name, auc, ll, acc, fit_s, pred_s, self.notes.get(name, []), base))
        rows.sort(key=lambda r: (r.auc is None, -(r.auc or 0.0)))
        leaks = [r for r in rows if r.auc is not None and r.auc > LEAK_AUC]
        leak = None
        if leaks:
            which = ", ".join(f"{r.model} {r.auc:.3f}" for r in leaks)
            leak = f"holdout AUC above {LEAK_AUC} ({which}): probably a leak; honest DSG17 holdouts score 0.62-0.72"
        return Leaderboard(
            rows=rows,
            predictions=predictions,
            importances=self.importances,
            leak_warning=leak,
            n_targets=len(y_all),
            rounds=rounds,
            selected_features=selected,
        )

"""LightGBM for the Flow question, early-stopped on each user's latest Flow rows; saved as LightGBM text.

LightGBM's own log lines never reach stdout (they would break `--json`): `lightgbm()` routes them to the
Python logger "flowtui.lightgbm" (silent unless configured). A saved `model.txt` is checked by
`check_model_text` (lightgbm_text.py) before LightGBM parses it: LightGBM aborts the whole process on
some malformed trees, and silently accepts others that would crash or mislead later.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from flowtui.core import events as ev
from flowtui.core.flow.classifiers.base import (
    MAX_ROWS,
    BaseFlowModel,
    FitContext,
    SeedParams,
    feature_array,
    sample_index,
)
from flowtui.core.flow.classifiers.lightgbm_text import LGB_FILE, check_model_text
from flowtui.core.params import param

#: Where LightGBM's messages go (its native log lines included) instead of stdout.
LOGGER = logging.getLogger("flowtui.lightgbm")
_logger_lock = threading.Lock()
_logger_set = False


def lightgbm() -> Any:
    """The lightgbm module, its log routed to `LOGGER` (once per process) so nothing reaches stdout."""
    global _logger_set
    import lightgbm as lgb

    with _logger_lock:
        if not _logger_set:
            lgb.register_logger(LOGGER)
            _logger_set = True
    return lgb


# Tuned on synthetic holdouts (3000 users): lr 0.1 with bagging 0.5 matched lr 0.05 with bagging 0.8 in AUC
# (0.795) at 40% of the time; a row sample costs little AUC (300k of 1M rows: -0.0014) and keeps full-scale
# training (7M rows) within the pipeline's 5-minute budget on 2 cores.
@dataclass(frozen=True)
class LightGBMParams(SeedParams):
    max_rows: int | None = param(
        1_500_000, "train on a random sample of at most this many rows (null: all)", low=1, high=MAX_ROWS
    )
    n_estimators: int = param(
        1000, "boosting rounds at most (early stopping keeps the best)", low=1, high=100_000
    )
    learning_rate: float = param(0.1, "shrinkage", low=0.0, low_open=True, high=1.0)
    num_leaves: int = param(15, "leaves per tree", low=2, high=131_072)
    max_depth: int = param(5, "depth of each tree (-1: unlimited)", low=-1, high=1000)
    min_child_samples: int = param(100, "rows a leaf holds at least", low=1, high=MAX_ROWS)
    feature_fraction: float = param(0.8, "share of features each tree sees", low=0.0, low_open=True, high=1.0)
    bagging_fraction: float = param(0.5, "share of rows each tree sees", low=0.0, low_open=True, high=1.0)
    l2: float = param(10.0, "L2 penalty on leaf values", low=0.0, high=1e6)
    early_stopping_rounds: int = param(
        30, "rounds without validation gain before stopping", low=1, high=100_000
    )
    valid_fraction: float = param(
        0.1, "share of each user's latest Flow rows used for early stopping (0: none)", low=0.0, high=0.9
    )
    num_threads: int = param(0, "threads (0: LightGBM's default)", low=0, high=1024)
    max_bin: int = param(255, "histogram bins per feature", low=2, high=65_535)


class LightGBMModel(BaseFlowModel):
    """LightGBM with early stopping on a time-based validation split of the training rows.

    The validation rows are each user's latest `valid_fraction` of Flow rows (as the test holds each user's
    next Flow track); the booster keeps its best iteration. Subclasses (the hybrid model) may add feature
    columns and call `fit`/`predict_proba` of this class; `save` writes `model.txt` (LightGBM's text format).
    """

    name = "lightgbm"
    params_cls: ClassVar[type] = LightGBMParams
    params: LightGBMParams

    def n_epochs(self) -> int | None:
        return self.params.n_estimators

    def lgb_params(self) -> dict[str, Any]:
        """The LightGBM parameter dict used for training."""
        seed = self.random_state if self.random_state is not None else 0
        return {
            "objective": "binary",
            "metric": "auc",
            "learning_rate": self.params.learning_rate,
            "num_leaves": self.params.num_leaves,
            "max_depth": self.params.max_depth,
            "min_child_samples": self.params.min_child_samples,
            "feature_fraction": self.params.feature_fraction,
            "bagging_fraction": self.params.bagging_fraction,
            "bagging_freq": 1 if self.params.bagging_fraction < 1.0 else 0,
            "lambda_l2": self.params.l2,
            "num_threads": self.params.num_threads,
            "max_bin": self.params.max_bin,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    def valid_mask(self, rows: pd.DataFrame, n: int) -> np.ndarray | None:
        """Each user's latest Flow rows (a `valid_fraction` of them) as the early-stopping set."""
        frac = self.params.valid_fraction
        if frac <= 0 or not {"user_id", "ts_listen"} <= set(rows.columns) or len(rows) != n:
            return None
        rank = rows.groupby("user_id", sort=False)["ts_listen"].rank(method="first", pct=True).to_numpy()
        mask = rank > 1.0 - frac
        if "listen_type" in rows.columns:
            mask &= rows["listen_type"].to_numpy() == 1
        return mask

    def _fit(self, X: pd.DataFrame, y: np.ndarray, rows: pd.DataFrame, ctx: FitContext) -> None:
        lgb = lightgbm()

        features = self._check_fitted()
        Xa = feature_array(X, features)
        idx = sample_index(len(Xa), self.params.max_rows, self.random_state)
        if idx is not None:
            self._note(
                ctx.on_event, f"trained on a random sample of {len(idx):,} of {len(Xa):,} rows (max_rows)"
            )
            Xa, y, rows = Xa[idx], y[idx], rows.iloc[idx]
        total = self.n_epochs() or 1
        mask = self.valid_mask(rows, len(Xa))
        valid_ok = (
            mask is not None
            and mask.sum() >= 50
            and (~mask).sum() >= 50
            and len(np.unique(y[mask])) == 2
            and len(np.unique(y[~mask])) == 2
        )
        params = self.lgb_params()
        if params["num_threads"] <= 0 and len(Xa) < 100_000:
            params["num_threads"] = (
                1  # threads only add OpenMP overhead on small data (and hurt on busy CPUs)
            )
        callbacks: list[Any] = [self._progress_callback(total, ctx)]
        if valid_ok:
            assert mask is not None
            train_set = lgb.Dataset(Xa[~mask], y[~mask], feature_name=features, free_raw_data=True)
            valid_set = lgb.Dataset(Xa[mask], y[mask], reference=train_set)
            valid_sets, names = [valid_set], ["valid"]
            callbacks.append(lgb.early_stopping(self.params.early_stopping_rounds, verbose=False))
        else:
            train_set = lgb.Dataset(Xa, y, feature_name=features, free_raw_data=True)
            valid_sets, names = [], []
            self._note(ctx.on_event, "too few rows for a validation split: no early stopping")
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=total,
            valid_sets=valid_sets,
            valid_names=names,
            callbacks=callbacks,
        )
        if valid_ok and booster.best_iteration > 0:
            self.notes.append(
                f"early stopping: best iteration {booster.best_iteration} of {total} "
                f"(validation AUC {booster.best_score['valid']['auc']:.4f} on each user's latest Flow rows)"
            )
        self.booster_ = booster
        self.best_iteration_ = int(booster.best_iteration) if booster.best_iteration > 0 else None

    def _progress_callback(self, total: int, ctx: FitContext) -> Any:
        name = self.name

        def callback(env: Any) -> None:
            ev.check_cancel(ctx.cancel)
            metric = None
            for item in env.evaluation_result_list or []:
                if item[1] == "auc":
                    metric = float(item[2])
            ctx.epoch(name, env.iteration + 1, total, metric=metric)

        callback.order = 5  # type: ignore[attr-defined]  # before early stopping (order 30)
        return callback

    def _predict(self, X: pd.DataFrame, features: list[str]) -> np.ndarray:
        return np.asarray(
            self.booster_.predict(feature_array(X, features), num_iteration=self.best_iteration_)
        )

    def feature_importances(self) -> pd.Series | None:
        if self.features_ is None:
            return None
        gain = self.booster_.feature_importance(importance_type="gain", iteration=self.best_iteration_)
        return pd.Series(gain, index=self.booster_.feature_name(), name=self.name).sort_values(
            ascending=False
        )

    def _save_files(self, folder: Path) -> None:
        self.booster_.save_model(str(folder / LGB_FILE), num_iteration=self.best_iteration_)

    def _state(self) -> dict[str, Any]:
        return {"best_iteration": self.best_iteration_}

    def _load_files(self, folder: Path, state: dict[str, Any]) -> None:
        lgb = lightgbm()
        path = folder / LGB_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing")
        text = check_model_text(path.read_bytes(), self.features_, where=str(path))
        self.booster_ = lgb.Booster(model_str=text)  # the checked text, not the file again
        if self.booster_.num_trees() == 0 or self.booster_.feature_name() != self.features_:
            raise ValueError(f"{path}: model does not match model.json (truncated or replaced?)")
        self.best_iteration_ = None  # the file holds only the kept iterations

"""The two baselines every leaderboard shows: the training listen rate and the user's own Flow rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flowtui.core.flow.classifiers.base import BaseFlowModel, FitContext, SeedParams, feature_array

#: The smoothed per-user Flow listen rate column of `features.py` (the strong baseline).
USER_FLOW_RATE = "user_flow_rate"


class ConstantModel(BaseFlowModel):
    """Predicts the training listen rate for every row (AUC 0.5: the floor)."""

    name = "constant"
    params_cls = SeedParams

    def _fit(self, X: pd.DataFrame, y: np.ndarray, rows: pd.DataFrame, ctx: FitContext) -> None:
        self.rate_ = float(np.mean(y))

    def _predict(self, X: pd.DataFrame, features: list[str]) -> np.ndarray:
        return np.full(len(X), self.rate_)

    def _state(self) -> dict[str, Any]:
        return {"rate": self.rate_}

    def _load_files(self, folder: Path, state: dict[str, Any]) -> None:
        self.rate_ = float(state["rate"])


class UserFlowRateModel(BaseFlowModel):
    """The smoothed per-user Flow listen rate, read from the `user_flow_rate` feature: the strong baseline."""

    name = "user_flow_rate"
    params_cls = SeedParams

    def _fit(self, X: pd.DataFrame, y: np.ndarray, rows: pd.DataFrame, ctx: FitContext) -> None:
        if USER_FLOW_RATE not in X.columns:
            raise ValueError(f"user_flow_rate needs the {USER_FLOW_RATE!r} feature column")
        self.features_ = [USER_FLOW_RATE]
        self.fallback_ = float(np.mean(y))

    def _predict(self, X: pd.DataFrame, features: list[str]) -> np.ndarray:
        p = feature_array(X, features)[:, 0].astype(np.float64)
        return np.where(np.isnan(p), self.fallback_, p)

    def _state(self) -> dict[str, Any]:
        return {"fallback": self.fallback_}

    def _load_files(self, folder: Path, state: dict[str, Any]) -> None:
        self.fallback_ = float(state["fallback"])

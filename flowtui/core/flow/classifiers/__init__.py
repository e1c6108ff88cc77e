"""The classifier zoo for the Flow-track question: two baselines and eight learners, one interface.

Each model implements `registry.FlowModel` on the feature matrix of `features.py` and declares its
parameters once, in a params dataclass; importing this package registers them all. Adding a classifier:
a class (with its params dataclass) in one of these modules, and one `register(...)` line below.
"""

from __future__ import annotations

from flowtui.core.flow.classifiers.base import BaseFlowModel, load_skops
from flowtui.core.flow.classifiers.baselines import ConstantModel, UserFlowRateModel
from flowtui.core.flow.classifiers.lightgbm_model import LightGBMModel, LightGBMParams
from flowtui.core.flow.classifiers.sklearn_models import (
    DecisionTreeModel,
    HistGBModel,
    KNNModel,
    LinearSVMModel,
    LogRegModel,
    RandomForestModel,
    SGDModel,
)
from flowtui.core.params import Value
from flowtui.core.registry import ModelSpec, register

__all__ = ["BaseFlowModel", "LightGBMModel", "LightGBMParams", "load_skops"]


def _register(
    cls: type[BaseFlowModel],
    description: str,
    quick: dict[str, Value] | None = None,
    *,
    baseline: bool = False,
) -> None:
    register(
        ModelSpec(
            name=cls.name,
            description=description,
            params_cls=cls.params_cls,
            factory=cls,
            loader=cls.load,
            quick=quick or {},
            baseline=baseline,
            family="baseline" if baseline else "classifier",
        )
    )


_register(ConstantModel, "the training listen rate for every row (AUC 0.5)", baseline=True)
_register(UserFlowRateModel, "smoothed per-user Flow listen rate (the strong baseline)", baseline=True)
_register(LogRegModel, "logistic regression, standardised features", {"max_rows": 50_000})
_register(
    KNNModel,
    "k nearest neighbours on a random sample of at most 50k rows",
    {"n_neighbors": 25, "max_rows": 5_000},
)
_register(
    LinearSVMModel,
    "linear SVM with sigmoid calibration on a sample of at most 200k rows",
    {"max_rows": 20_000},
)
_register(SGDModel, "logistic loss by SGD, partial_fit per epoch", {"n_epochs": 2})
_register(DecisionTreeModel, "one decision tree (depth 8)", {"max_depth": 5, "min_samples_leaf": 20})
_register(
    RandomForestModel,
    "random forest grown 10 trees a step, at most 1M rows",
    {"n_estimators": 30, "max_depth": 8, "min_samples_leaf": 5, "step": 10},
)
_register(
    HistGBModel,
    "scikit-learn histogram gradient boosting with early stopping",
    {"max_iter": 50, "learning_rate": 0.1, "min_samples_leaf": 10},
)
_register(
    LightGBMModel,
    "LightGBM (at most 1.5M rows), early stopping on each user's latest Flow rows",
    {"n_estimators": 100, "learning_rate": 0.1, "min_child_samples": 10, "early_stopping_rounds": 20},
)

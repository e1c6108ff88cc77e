"""scikit-learn classifiers: logistic regression, kNN, linear SVM, SGD, decision tree, random forest and
histogram gradient boosting, each a pipeline (imputer, scaler where needed, estimator) on an optional
row sample. Each declares its parameters once, in its params dataclass."""

from __future__ import annotations

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
    load_skops,
    sample_index,
)
from flowtui.core.params import param

SKOPS_FILE = "model.skops"


def _max_rows(default: int | None) -> Any:
    return param(
        default, "train on a random sample of at most this many rows (null: all)", low=1, high=MAX_ROWS
    )


@dataclass(frozen=True)
class SampledParams(SeedParams):
    max_rows: int | None = _max_rows(None)


class SklearnModel(BaseFlowModel):
    """A scikit-learn pipeline (imputer, scaler when needed, estimator) on an optional row sample."""

    params_cls: ClassVar[type] = SampledParams
    params: SampledParams
    #: Standardise features (linear and distance-based models need it).
    scale: ClassVar[bool] = False

    def _estimator(self) -> Any:
        raise NotImplementedError  # abstract hook (or override _fit_estimator)

    def _preprocess(self, Xa: np.ndarray) -> tuple[list[tuple[str, Any]], np.ndarray]:
        """Fit the imputer (and scaler) on `Xa`; returns the fitted steps and the transformed array."""
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import StandardScaler

        steps: list[tuple[str, Any]] = []
        imputer = SimpleImputer(strategy="median", keep_empty_features=True)
        Xa = imputer.fit_transform(Xa).astype(np.float32, copy=False)
        steps.append(("impute", imputer))
        if self.scale:
            scaler = StandardScaler()
            Xa = scaler.fit_transform(Xa).astype(np.float32, copy=False)
            steps.append(("scale", scaler))
        return steps, Xa

    def _fit(self, X: pd.DataFrame, y: np.ndarray, rows: pd.DataFrame, ctx: FitContext) -> None:
        from sklearn.pipeline import Pipeline

        Xa = feature_array(X, self._check_fitted())
        idx = sample_index(len(Xa), self.params.max_rows, self.random_state)
        if idx is not None:
            self._note(
                ctx.on_event,
                f"trained on a random sample of {len(idx):,} of {len(Xa):,} rows (max_rows); "
                "this method does not scale to all rows",
            )
            Xa, y = Xa[idx], y[idx]
        if len(np.unique(y)) < 2:
            raise ValueError(f"{self.name}: training labels hold a single class")
        steps, Xt = self._preprocess(Xa)
        ev.check_cancel(ctx.cancel)
        est = self._fit_estimator(Xt, y, ctx)
        self.pipeline_ = Pipeline([*steps, ("model", est)])

    def _fit_estimator(self, Xt: np.ndarray, y: np.ndarray, ctx: FitContext) -> Any:
        est = self._estimator()
        est.fit(Xt, y)
        return est

    def _predict(self, X: pd.DataFrame, features: list[str]) -> np.ndarray:
        return np.asarray(self.pipeline_.predict_proba(feature_array(X, features))[:, 1])

    def feature_importances(self) -> pd.Series | None:
        if self.features_ is None:
            return None
        est = self.pipeline_.named_steps["model"]
        if hasattr(est, "feature_importances_"):
            values = np.asarray(est.feature_importances_, dtype=float)
        elif hasattr(est, "coef_"):
            values = np.abs(np.asarray(est.coef_, dtype=float)).ravel()  # on standardised features
        else:
            return None
        return pd.Series(values, index=self.features_, name=self.name).sort_values(ascending=False)

    def _save_files(self, folder: Path) -> None:
        import skops.io as sio

        sio.dump(self.pipeline_, folder / SKOPS_FILE)

    def _load_files(self, folder: Path, state: dict[str, Any]) -> None:
        self.pipeline_ = load_skops(folder / SKOPS_FILE)


# ---- linear and distance-based models ----------------------------------------------------------


@dataclass(frozen=True)
class LogRegParams(SampledParams):
    C: float = param(1.0, "inverse regularisation strength", low=0.0, low_open=True, high=1e6)
    max_iter: int = param(300, "solver iterations", low=1, high=100_000)


class LogRegModel(SklearnModel):
    """Logistic regression on standardised features."""

    name = "logreg"
    params_cls = LogRegParams
    params: LogRegParams
    scale = True

    def _estimator(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        p = self.params
        return LogisticRegression(C=p.C, max_iter=p.max_iter, random_state=self.random_state)


@dataclass(frozen=True)
class KNNParams(SampledParams):
    max_rows: int | None = _max_rows(50_000)
    n_neighbors: int = param(100, "neighbours that vote", low=1, high=10_000)


class KNNModel(SklearnModel):
    """k nearest neighbours on standardised features, trained on a random sample (it does not scale)."""

    name = "knn"
    params_cls = KNNParams
    params: KNNParams
    scale = True

    def _estimator(self) -> Any:
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=self.params.n_neighbors, weights="uniform")


@dataclass(frozen=True)
class LinearSVMParams(SampledParams):
    max_rows: int | None = _max_rows(200_000)
    C: float = param(0.1, "inverse regularisation strength", low=0.0, low_open=True, high=1e6)
    cv: int = param(3, "folds of the sigmoid calibration", low=2, high=20)


class LinearSVMModel(SklearnModel):
    """Linear SVM with sigmoid-calibrated probabilities (3-fold), trained on a random sample."""

    name = "linear_svm"
    params_cls = LinearSVMParams
    params: LinearSVMParams
    scale = True

    def _estimator(self) -> Any:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import LinearSVC

        svc = LinearSVC(C=self.params.C, dual=False, random_state=self.random_state)
        return CalibratedClassifierCV(svc, method="sigmoid", cv=self.params.cv)


@dataclass(frozen=True)
class SGDParams(SampledParams):
    # alpha 1e-2: holdout AUC 0.751 on the real sample (1e-4: 0.665, saturated probabilities), 0.791 synthetic.
    alpha: float = param(1e-2, "L2 regularisation strength", low=0.0, low_open=True, high=1e3)
    n_epochs: int = param(5, "passes over the shuffled rows", low=1, high=10_000)
    batch_size: int = param(100_000, "rows per partial_fit call", low=1, high=MAX_ROWS)


class SGDModel(SklearnModel):
    """Logistic loss by stochastic gradient descent, one `partial_fit` pass over shuffled rows per epoch."""

    name = "sgd"
    params_cls = SGDParams
    params: SGDParams
    scale = True

    def n_epochs(self) -> int | None:
        return self.params.n_epochs

    def _fit_estimator(self, Xt: np.ndarray, y: np.ndarray, ctx: FitContext) -> Any:
        from sklearn.linear_model import SGDClassifier

        est = SGDClassifier(loss="log_loss", alpha=self.params.alpha, random_state=self.random_state)
        rng = np.random.default_rng(self.random_state)
        n_epochs = self.params.n_epochs
        batch = self.params.batch_size
        classes = np.array([0, 1], dtype=y.dtype)
        for epoch in range(1, n_epochs + 1):
            order = rng.permutation(len(y))
            for lo in range(0, len(order), batch):
                ev.check_cancel(ctx.cancel)
                sel = order[lo : lo + batch]
                est.partial_fit(Xt[sel], y[sel], classes=classes)
            ctx.epoch(self.name, epoch, n_epochs)
        return est


# ---- trees -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionTreeParams(SampledParams):
    max_depth: int | None = param(8, "depth of the tree (null: unlimited)", low=1, high=1000)
    min_samples_leaf: int = param(200, "rows a leaf holds at least", low=1, high=MAX_ROWS)


class DecisionTreeModel(SklearnModel):
    """One shallow decision tree."""

    name = "decision_tree"
    params_cls = DecisionTreeParams
    params: DecisionTreeParams

    def _estimator(self) -> Any:
        from sklearn.tree import DecisionTreeClassifier

        p = self.params
        return DecisionTreeClassifier(
            max_depth=p.max_depth, min_samples_leaf=p.min_samples_leaf, random_state=self.random_state
        )


@dataclass(frozen=True)
class RandomForestParams(SampledParams):
    max_rows: int | None = _max_rows(1_000_000)
    n_estimators: int = param(200, "trees", low=1, high=100_000)
    max_depth: int | None = param(12, "depth of each tree (null: unlimited)", low=1, high=1000)
    min_samples_leaf: int = param(50, "rows a leaf holds at least", low=1, high=MAX_ROWS)
    max_samples: float | None = param(
        0.3, "share of rows each tree sees (null: a bootstrap of all)", low=0.0, low_open=True, high=1.0
    )
    max_features: float | str = param(
        "sqrt",
        "features tried per split: a share, or sqrt / log2",
        low=0.0,
        low_open=True,
        high=1.0,
        choices=("sqrt", "log2"),
    )
    step: int = param(10, "trees grown between progress events and cancel checks", low=1, high=100_000)
    n_jobs: int = param(-1, "threads (-1: every core)", low=-1, high=1024)


class RandomForestModel(SklearnModel):
    """Random forest grown in steps (`warm_start`), with a progress event and a cancel check per step."""

    name = "random_forest"
    params_cls = RandomForestParams
    params: RandomForestParams

    def n_epochs(self) -> int | None:
        return self.params.n_estimators

    def _fit_estimator(self, Xt: np.ndarray, y: np.ndarray, ctx: FitContext) -> Any:
        from sklearn.ensemble import RandomForestClassifier

        p = self.params
        if p.n_jobs == 0:
            raise ValueError("random_forest.n_jobs must not be 0 (use -1 for every core)")
        est = RandomForestClassifier(
            n_estimators=0,
            max_depth=p.max_depth,
            min_samples_leaf=p.min_samples_leaf,
            max_features=p.max_features,
            max_samples=p.max_samples,
            n_jobs=p.n_jobs,
            warm_start=True,
            random_state=self.random_state,
        )
        grown = 0
        while grown < p.n_estimators:
            ev.check_cancel(ctx.cancel)
            grown = min(p.n_estimators, grown + p.step)
            est.set_params(n_estimators=grown)
            est.fit(Xt, y)
            ctx.epoch(self.name, grown, p.n_estimators)
        return est


@dataclass(frozen=True)
class HistGBParams(SampledParams):
    max_iter: int = param(300, "boosting iterations at most", low=1, high=100_000)
    learning_rate: float = param(0.05, "shrinkage", low=0.0, low_open=True, high=1.0)
    max_depth: int | None = param(5, "depth of each tree (null: unlimited)", low=1, high=1000)
    max_leaf_nodes: int = param(15, "leaves per tree", low=2, high=100_000)
    min_samples_leaf: int = param(100, "rows a leaf holds at least", low=1, high=MAX_ROWS)
    l2_regularization: float = param(1.0, "L2 penalty on leaf values", low=0.0, high=1e6)
    early_stopping: bool = param(True, "stop when 10% held-out rows stop improving")
    step: int = param(25, "iterations between progress events and cancel checks", low=1, high=100_000)


class HistGBModel(SklearnModel):
    """scikit-learn's histogram gradient boosting, grown in steps with internal early stopping."""

    name = "hist_gb"
    params_cls = HistGBParams
    params: HistGBParams

    def n_epochs(self) -> int | None:
        return self.params.max_iter

    def _preprocess(self, Xa: np.ndarray) -> tuple[list[tuple[str, Any]], np.ndarray]:
        return [], Xa  # handles missing values itself

    def _fit_estimator(self, Xt: np.ndarray, y: np.ndarray, ctx: FitContext) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier

        p = self.params
        est = HistGradientBoostingClassifier(
            max_iter=0,
            learning_rate=p.learning_rate,
            max_depth=p.max_depth,
            max_leaf_nodes=p.max_leaf_nodes,
            min_samples_leaf=p.min_samples_leaf,
            l2_regularization=p.l2_regularization,
            early_stopping=p.early_stopping,
            validation_fraction=0.1,
            n_iter_no_change=20,
            warm_start=True,
            # a fixed integer keeps the early-stopping split the same across warm-started calls
            random_state=self.random_state if self.random_state is not None else 0,
        )
        done = 0
        while done < p.max_iter:
            ev.check_cancel(ctx.cancel)
            target = min(p.max_iter, done + p.step)
            est.set_params(max_iter=target)
            est.fit(Xt, y)
            stopped = est.n_iter_ < target
            done = target
            ctx.epoch(self.name, est.n_iter_, p.max_iter)
            if stopped:
                self.notes.append(f"early stopping after {est.n_iter_} iterations")
                break
        return est

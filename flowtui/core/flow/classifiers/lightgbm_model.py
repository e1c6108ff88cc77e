"""LightGBM for the Flow question, early-stopped on each user's latest Flow rows; saved as LightGBM text.

LightGBM's own log lines never reach stdout (they would break `--json`): `lightgbm()` routes them to the
Python logger "flowtui.lightgbm" (silent unless configured). A saved `model.txt` is checked by
`check_model_text` before LightGBM parses it: LightGBM aborts the whole process (SIGABRT from its parallel
tree parser) on some malformed trees, and silently accepts others (a truncated file, a child index out of
range) that would crash or mislead later.
"""

from __future__ import annotations

import logging
import math
import re
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
from flowtui.core.params import param

LGB_FILE = "model.txt"
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

    def _valid_mask(self, rows: pd.DataFrame, n: int) -> np.ndarray | None:
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
        mask = self._valid_mask(rows, len(Xa))
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


# ---------------------------------------------------------------------------------------------------------
# Checking LightGBM's text format before LightGBM parses it

_HEADER_KEYS = frozenset(
    {
        "version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx", "objective",
        "average_output", "feature_names", "feature_infos", "monotone_constraints", "tree_sizes",
    }
)  # fmt: skip
_INT_ARRAYS = ("split_feature", "decision_type", "left_child", "right_child", "internal_count")
_FLOAT_ARRAYS = ("split_gain", "threshold", "internal_value", "internal_weight")
_LEAF_ARRAYS = ("leaf_value", "leaf_weight", "leaf_count")
_TREE_KEYS = frozenset(
    {"num_leaves", "num_cat", "shrinkage", "is_linear", "cat_boundaries", "cat_threshold"}
    | set(_INT_ARRAYS) | set(_FLOAT_ARRAYS) | set(_LEAF_ARRAYS)
)  # fmt: skip
_INT = re.compile(r"-?[0-9]{1,10}")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?|[-+]?inf")
_MAX_LEAVES = 131_072
_MAX_TREE_LINES = 22  # LightGBM's tree parser reads at most this many lines


class _Bad(ValueError):
    pass


def _ints(key: str, value: str, n: int) -> list[int]:
    parts = value.split(" ") if value else []
    if len(parts) != n or not all(_INT.fullmatch(p) for p in parts):
        raise _Bad(f"{key} must hold {n} integer(s)")
    return [int(p) for p in parts]


def _floats(key: str, value: str, n: int, *, finite: bool = False) -> list[float]:
    parts = value.split(" ") if value else []
    if len(parts) != n or not all(_FLOAT.fullmatch(p) for p in parts):
        raise _Bad(f"{key} must hold {n} number(s)")
    out = [float(p) for p in parts]
    if finite and not all(math.isfinite(x) for x in out):
        raise _Bad(f"{key} must hold finite numbers")
    return out


def _check_tree(i: int, block: str, n_features: int) -> None:
    """One `Tree=i` block: the fields LightGBM's parser needs, with the right counts, and a proper tree."""
    lines = block.split("\n")
    if lines[0] != f"Tree={i}":
        raise _Bad(f"tree {i} does not start where tree_sizes says")
    kv: dict[str, str] = {}
    end = lines.index("", 1) if "" in lines[1:] else len(lines)
    if any(line for line in lines[end:]):
        raise _Bad(f"tree {i} has text after its blank line")
    body = lines[1:end]
    if len(body) > _MAX_TREE_LINES:
        raise _Bad(f"tree {i} has too many lines")
    for line in body:
        key, eq, value = line.partition("=")
        if not eq or key not in _TREE_KEYS or key in kv:
            raise _Bad(f"tree {i} has a bad line {line[:40]!r}")
        kv[key] = value
    for key in ("num_leaves", "num_cat", "leaf_value"):
        if key not in kv:
            raise _Bad(f"tree {i} lacks {key}")
    (n,) = _ints("num_leaves", kv["num_leaves"], 1)
    (n_cat,) = _ints("num_cat", kv["num_cat"], 1)
    if not 1 <= n <= _MAX_LEAVES or not 0 <= n_cat < max(n, 1):
        raise _Bad(f"tree {i} has a bad num_leaves or num_cat")
    if kv.get("is_linear", "0") != "0":
        raise _Bad(f"tree {i} is a linear tree (flowtui never trains those)")
    if "shrinkage" in kv:
        _floats("shrinkage", kv["shrinkage"], 1, finite=True)
    _floats("leaf_value", kv["leaf_value"], n, finite=True)
    if n == 1:
        return  # LightGBM reads nothing else of a one-leaf tree
    for key in ("split_feature", "threshold", "decision_type", "left_child", "right_child"):
        if key not in kv:
            raise _Bad(f"tree {i} lacks {key}")
    ints = {k: _ints(k, kv[k], n - 1) for k in _INT_ARRAYS if k in kv}
    for k in _FLOAT_ARRAYS:
        if k in kv:
            _floats(k, kv[k], n - 1)
    if "leaf_weight" in kv:
        _floats("leaf_weight", kv["leaf_weight"], n)
    if "leaf_count" in kv:
        _ints("leaf_count", kv["leaf_count"], n)
    if any(not 0 <= f < n_features for f in ints["split_feature"]):
        raise _Bad(f"tree {i} splits on a feature the model does not have")
    decision = ints["decision_type"]
    if any(not 0 <= d <= 11 for d in decision):
        raise _Bad(f"tree {i} has a bad decision_type")
    if n_cat:
        bounds = _ints("cat_boundaries", kv.get("cat_boundaries", ""), n_cat + 1)
        if bounds[0] != 0 or any(b > a for a, b in zip(bounds[1:], bounds, strict=False)):
            raise _Bad(f"tree {i} has bad cat_boundaries")
        cats = _ints("cat_threshold", kv.get("cat_threshold", ""), bounds[-1])
        if any(c < 0 for c in cats):
            raise _Bad(f"tree {i} has a bad cat_threshold")
    thresholds = kv["threshold"].split(" ")
    for node, d in enumerate(decision):
        if d & 1 and not (n_cat and _INT.fullmatch(thresholds[node]) and 0 <= int(thresholds[node]) < n_cat):
            raise _Bad(f"tree {i} has a categorical split without its categories")
    # a proper binary tree: from node 0, every other node and every leaf reached exactly once
    seen_nodes, seen_leaves, todo = {0}, set(), [0]
    while todo:
        node = todo.pop()
        for child in (ints["left_child"][node], ints["right_child"][node]):
            if child >= 0:
                if child >= n - 1 or child in seen_nodes:
                    raise _Bad(f"tree {i} is not a tree (node {child})")
                seen_nodes.add(child)
                todo.append(child)
            else:
                leaf = ~child
                if leaf >= n or leaf in seen_leaves:
                    raise _Bad(f"tree {i} is not a tree (leaf {leaf})")
                seen_leaves.add(leaf)
    if len(seen_nodes) != n - 1 or len(seen_leaves) != n:
        raise _Bad(f"tree {i} leaves nodes unreachable")


_PARAMETER = re.compile(r"\[[A-Za-z0-9_]+: [^:\[\]]*\]")


def _check_parameters(lines: list[str]) -> None:
    """The `parameters:` section (LightGBM's own parser of it reads out of bounds on a malformed line)."""
    inside = done = False
    for line in lines:
        if inside:
            if line == "end of parameters":
                inside, done = False, True
            elif line and not _PARAMETER.fullmatch(line):
                raise _Bad(f"bad parameter line {line[:40]!r}")
        elif line == "parameters:" and not done:
            inside = True
    if not done:
        raise _Bad("no complete parameters section (truncated?)")


def check_model_text(data: bytes, features: list[str] | None, *, where: str = LGB_FILE) -> str:
    """The text of a binary-objective LightGBM model file, checked well enough that LightGBM's parser will
    neither abort nor read past the end; ValueError naming `where` and the first problem otherwise.

    `features`: the feature names the file must declare (None: any)."""
    try:
        text = data.decode("ascii")
        if "\r" in text or "\x00" in text:
            raise _Bad("unexpected control characters")
        start = text.find("\nTree=")
        header = (text if start < 0 else text[:start]).split("\n")
        if header[0] != "tree":
            raise _Bad("not a LightGBM text model")
        kv: dict[str, str] = {}
        for line in header[1:]:
            if not line:
                continue
            key, eq, value = line.partition("=")
            if key not in _HEADER_KEYS or key in kv or (key != "average_output" and not eq):
                raise _Bad(f"bad header line {line[:40]!r}")
            kv[key] = value
        for key in ("num_class", "num_tree_per_iteration", "max_feature_idx", "feature_names", "tree_sizes"):
            if key not in kv:
                raise _Bad(f"header lacks {key}")
        if (
            _ints("num_class", kv["num_class"], 1) != [1]
            or _ints("num_tree_per_iteration", kv["num_tree_per_iteration"], 1) != [1]
            or not kv.get("objective", "binary").startswith("binary")
        ):
            raise _Bad("not a binary classifier")
        (max_idx,) = _ints("max_feature_idx", kv["max_feature_idx"], 1)
        names = kv["feature_names"].split(" ")
        if max_idx < 0 or len(names) != max_idx + 1:
            raise _Bad("feature_names does not match max_feature_idx")
        if features is not None and names != list(features):
            raise _Bad("its features differ from model.json's")
        if len(kv.get("feature_infos", "").split(" ")) != max_idx + 1:
            raise _Bad("feature_infos does not match max_feature_idx")
        if "monotone_constraints" in kv:
            _ints("monotone_constraints", kv["monotone_constraints"], max_idx + 1)
        size_parts = kv["tree_sizes"].split(" ") if kv["tree_sizes"] else []
        if not size_parts or not all(_INT.fullmatch(x) for x in size_parts):
            raise _Bad("tree_sizes lists no trees")
        sizes = [int(x) for x in size_parts]
        if min(sizes) <= 0:
            raise _Bad("tree_sizes has a size that is not positive")
        pos = start + 1
        if start < 0 or pos + sum(sizes) > len(text):
            raise _Bad("the file ends before its last tree (truncated?)")
        for i, size in enumerate(sizes):
            _check_tree(i, text[pos : pos + size], max_idx + 1)
            pos += size
        if not text[pos:].lstrip("\n").startswith("end of trees"):
            raise _Bad("no 'end of trees' after the last tree")
        _check_parameters(text[pos:].split("\n"))
        if not text.rstrip("\n").rpartition("\n")[2].startswith("pandas_categorical:"):
            raise _Bad("the file does not end as LightGBM ends it (truncated?)")
    except (_Bad, UnicodeDecodeError) as exc:
        reason = "not plain ASCII text" if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise ValueError(f"{where}: damaged LightGBM model ({reason})") from None
    return text

"""One contract test over every registered model, plus what specific classifiers promise."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from flowtui.core import events as ev
from flowtui.core import registry
from flowtui.core.data.schema import DTYPES, TRAIN_COLUMNS
from flowtui.core.flow import classifiers
from flowtui.core.flow.features import target_matrix, training_matrix


def make_frame(
    n_users: int = 40, rows_per_user: int = 25, seed: int = 0, effect: float = 1.0
) -> pd.DataFrame:
    """A small DSG17-like train frame where each user has a listening propensity (`effect` sets its spread)."""
    rng = np.random.default_rng(seed)
    n = n_users * rows_per_user
    user = np.repeat(np.arange(n_users), rows_per_user)
    ts = 1_478_000_000 + np.sort(rng.integers(0, 30 * 86_400, (n_users, rows_per_user)), axis=1).ravel()
    taste = rng.normal(size=n_users)[user]
    flow = rng.uniform(size=n) < 0.4
    p = 1 / (1 + np.exp(-(0.6 + effect * taste - 0.5 * flow)))
    media = rng.integers(0, 150, n)
    df = pd.DataFrame(
        {
            "genre_id": media % 5,
            "ts_listen": ts,
            "media_id": media,
            "album_id": media // 2,
            "context_type": rng.integers(0, 4, n),
            "release_date": 20100101 + (media % 6) * 10_000,
            "platform_name": rng.integers(0, 3, n),
            "platform_family": rng.integers(0, 3, n),
            "media_duration": rng.integers(120, 300, n),
            "listen_type": flow.astype(int),
            "user_gender": user % 2,
            "user_id": user,
            "artist_id": media // 4,
            "user_age": 18 + user % 12,
            "is_listened": (rng.uniform(size=n) < p).astype(int),
        }
    )
    return df[list(TRAIN_COLUMNS)].astype({c: DTYPES[c] for c in TRAIN_COLUMNS})


@pytest.fixture(scope="module")
def matrices() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    frame = make_frame()
    X, y, rows = training_matrix(frame)
    test = frame.groupby("user_id").tail(1).assign(ts_listen=lambda d: d["ts_listen"] + 1000)
    Xt, rows_t = target_matrix(frame, test)
    return X, y, rows, Xt, rows_t


def _fit(name: str, X, y, rows, **params):  # type: ignore[no-untyped-def]
    return registry.get_spec(name).build(params, preset="quick").fit(X, y, rows)


@pytest.mark.parametrize("name", registry.model_names())
def test_model_contract(name: str, matrices, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    X, y, rows, Xt, rows_t = matrices
    spec = registry.get_spec(name)
    events: list[ev.Event] = []
    model = spec.build(preset="quick").fit(X, y, rows, on_event=events.append)
    assert isinstance(model, registry.FlowModel)
    fits = [e for e in events if isinstance(e, ev.BeforeFit | ev.AfterFit)]
    assert isinstance(fits[0], ev.BeforeFit) and isinstance(fits[-1], ev.AfterFit)
    assert not fits[-1].cancelled and name in (fits[0].model, fits[-1].model)

    p = model.predict_proba(Xt, rows_t)
    assert p.shape == (len(Xt),)
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()

    # save -> load gives the same predictions
    folder = tmp_path / name
    folder.mkdir()
    model.save(folder)
    again = spec.load(folder, spec.params(preset="quick"))
    np.testing.assert_allclose(again.predict_proba(Xt, rows_t), p, rtol=0, atol=1e-9)

    # same random_state -> same predictions
    twin = spec.build(preset="quick").fit(X, y, rows)
    np.testing.assert_allclose(twin.predict_proba(Xt, rows_t), p, rtol=0, atol=1e-9)

    # a set cancel event stops fit with Cancelled
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ev.Cancelled):
        spec.build(preset="quick").fit(X, y, rows, cancel=cancel)


@pytest.mark.parametrize("name", ["sgd", "random_forest", "hist_gb", "lightgbm"])
def test_iterative_models_report_epochs_and_cancel_midway(name: str, matrices) -> None:  # type: ignore[no-untyped-def]
    X, y, rows, _, _ = matrices
    cancel = threading.Event()
    seen: list[ev.Event] = []

    def on_event(e: ev.Event) -> None:
        seen.append(e)
        if isinstance(e, ev.AfterEpoch):
            cancel.set()  # stop after the first epoch / step / tree

    with pytest.raises(ev.Cancelled):
        registry.get_spec(name).build(preset="quick").fit(X, y, rows, on_event=on_event, cancel=cancel)
    epochs = [e for e in seen if isinstance(e, ev.AfterEpoch)]
    assert len(epochs) == 1 and epochs[0].epoch < epochs[0].n_epochs
    assert isinstance(seen[-1], ev.AfterFit) and seen[-1].cancelled


def test_registration_order_and_baselines() -> None:
    names = registry.model_names()
    expected = [
        "constant",
        "user_flow_rate",
        "logreg",
        "knn",
        "linear_svm",
        "sgd",
        "decision_tree",
        "random_forest",
        "hist_gb",
        "lightgbm",
    ]
    assert names[: len(expected)] == expected
    assert registry.baseline_names()[:2] == ["constant", "user_flow_rate"]


def test_user_flow_rate_predicts_its_feature(matrices) -> None:  # type: ignore[no-untyped-def]
    X, y, rows, Xt, rows_t = matrices
    p = _fit("user_flow_rate", X, y, rows).predict_proba(Xt, rows_t)
    np.testing.assert_allclose(p, Xt["user_flow_rate"].to_numpy(), rtol=1e-6)


def test_sampled_models_say_so(matrices) -> None:  # type: ignore[no-untyped-def]
    X, y, rows, _, _ = matrices
    events: list[ev.Event] = []
    model = registry.get_spec("knn").build({"max_rows": 300}).fit(X, y, rows, on_event=events.append)
    assert any("300" in n for n in model.notes)
    assert any(isinstance(e, ev.Log) and "sample" in e.message for e in events)


def test_forest_ranks_the_informative_feature() -> None:
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(600, 4)), columns=["noise1", "signal", "noise2", "user_flow_rate"])
    y = (X["signal"] + 0.3 * rng.normal(size=600) > 0).astype(np.int8).to_numpy()
    rows = pd.DataFrame({"user_id": np.arange(600), "ts_listen": np.arange(600)})
    for name in ("random_forest", "lightgbm", "decision_tree"):
        imp = _fit(name, X, y, rows).feature_importances()
        assert imp is not None and imp.index[0] == "signal", name


def test_predict_before_fit_and_unknown_parameter(matrices) -> None:  # type: ignore[no-untyped-def]
    X, _, rows, _, _ = matrices
    with pytest.raises(NotFittedError):
        registry.get_spec("logreg").build().predict_proba(X, rows)
    with pytest.raises(ValueError, match="unknown parameter"):
        registry.get_spec("lightgbm").build({"depth": 3})
    failed = registry.get_spec("logreg").build()
    with pytest.raises(ValueError, match="single class"):
        failed.fit(X, np.ones(len(X), dtype=np.int8), rows)
    with pytest.raises(NotFittedError):
        failed.predict_proba(X, rows)


def test_untrusted_skops_types_are_refused(matrices, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    X, y, rows, _, _ = matrices
    model = _fit("decision_tree", X, y, rows)
    model.save(tmp_path)
    monkeypatch.setattr(classifiers.base, "TRUSTED_TYPES", ())
    with pytest.raises(ValueError, match="untrusted"):
        registry.get_spec("decision_tree").load(tmp_path, {})

"""The one registry: a table keyed by kind, one `register`, lazy module loading, and the kind views."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from flowtui.core import registry
from flowtui.core.errors import ParamError
from flowtui.core.registry import ModelSpec, RecommenderSpec


def test_each_spec_says_its_kind() -> None:
    assert ModelSpec.kind == "classifier"
    assert RecommenderSpec.kind == "recommender"
    assert all(registry.get_spec(n).kind == "classifier" for n in registry.model_names())
    assert all(registry.get_recommender(n).kind == "recommender" for n in registry.recommender_names())


def test_the_kind_views_list_their_own_kind_in_module_order() -> None:
    models = registry.model_names()
    assert models[:2] == ["constant", "user_flow_rate"] == registry.baseline_names()
    assert models[-3:] == ["rbm", "dbn", "hybrid"]
    assert registry.recommender_names()[:3] == ["rbm", "dbn", "ease"]
    # rbm and dbn are both a Flow model and a recommender: one name in each kind, two specs
    assert type(registry.get_spec("rbm")) is ModelSpec
    assert type(registry.get_recommender("rbm")) is RecommenderSpec


def test_register_replaces_a_spec_of_its_own_kind_only() -> None:
    flow, rec = registry.get_spec("dbn"), registry.get_recommender("dbn")
    names = registry.model_names()
    try:
        swapped = registry.register(dataclasses.replace(flow, description="swapped"))
        assert registry.get_spec("dbn") is swapped
        assert registry.model_names() == names  # the listing keeps its order
        assert registry.get_recommender("dbn") is rec
    finally:
        registry.register(flow)
    assert registry.get_spec("dbn") is flow


def test_register_checks_the_quick_preset() -> None:
    spec = registry.get_recommender("ease")
    with pytest.raises(ParamError, match="no_such_parameter"):
        registry.register(dataclasses.replace(spec, name="ease_bad", quick={"no_such_parameter": 1}))
    assert "ease_bad" not in registry.recommender_names()


def test_unknown_names_say_the_kind_and_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown model 'nope'; known: constant, user_flow_rate"):
        registry.get_spec("nope")
    with pytest.raises(KeyError, match="unknown recommender 'svd'; known: rbm, dbn, ease"):
        registry.get_recommender("svd")


def test_each_kind_loads_its_own_modules_lazily() -> None:
    code = (
        "import sys\n"
        "from flowtui.core import registry\n"
        "assert 'flowtui.core.recs.ease' not in sys.modules\n"
        "registry.recommender_names()\n"
        "assert 'flowtui.core.recs.ease' in sys.modules\n"
        "assert not any(m.startswith('flowtui.core.flow') for m in sys.modules), 'recs imported flow'\n"
        "registry.model_names()\n"
        "assert 'flowtui.core.flow.rbm_classifier' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

"""The parameter schema: one declaration per parameter, one parser, plain-sentence errors."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from flowtui.cli import app
from flowtui.core import registry
from flowtui.core.errors import ParamError
from flowtui.core.params import Param, param, parse_assignments, parse_overrides, schema_of


@dataclass(frozen=True)
class Inner:
    depth: int = param(3, "depth", low=1, high=10)


@dataclass(frozen=True)
class Outer:
    rate: float = param(0.5, "a rate", low=0.0, low_open=True, high=1.0)
    flag: bool = param(True, "a flag")
    kind: str = param("a", "a kind", choices=("a", "b"))
    sizes: tuple[int, ...] = param((4, 2), "layer sizes", low=1, high=100)
    cap: int | None = param(None, "a cap", low=1, high=1000)
    inner: Inner = Inner(depth=5)


def test_schema_flattens_nested_params_with_their_defaults() -> None:
    schema = schema_of(Outer)
    assert schema.keys == ["rate", "flag", "kind", "sizes", "cap", "inner_depth"]
    assert schema.defaults()["inner_depth"] == 5  # the nesting field's default instance wins
    built = schema.build({"inner_depth": "7", "sizes": "[8, 1]"})
    assert built == Outer(sizes=(8, 1), inner=Inner(depth=7))
    assert schema.flatten(built)["inner_depth"] == 7


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("rate", "0.25", 0.25),
        ("rate", "1", 1.0),
        ("flag", "false", False),
        ("flag", "yes", True),
        ("kind", "b", "b"),
        ("kind", '"b"', "b"),
        ("sizes", "[3]", (3,)),
        ("cap", "null", None),
        ("cap", "12", 12),
        ("inner_depth", "1e0", 1),
    ],
)
def test_good_values_parse(key: str, text: str, value: object) -> None:
    p = schema_of(Outer).get(key)
    assert p is not None and p.parse(text) == value


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        ("rate", "0", "rate must be a number > 0 and <= 1, got '0'"),
        ("rate", "abc", "got 'abc'"),
        ("rate", "nan", "got 'nan'"),
        ("rate", "inf", "got 'inf'"),
        ("cap", "0x16", "got '0x16'"),
        ("cap", "+22", "got '+22'"),
        ("cap", "1e12", "from 1 to 1000 or null"),
        ("cap", "2.5", "an integer"),
        ("flag", "2", "true or false"),
        ("kind", "c", "one of a, b"),
        ("sizes", "[]", "a list of integers"),
        ("sizes", "[1, 0]", "from 1 to 100"),
        ("sizes", "[true]", "a list of integers"),
        ("inner_depth", "", "an integer"),
    ],
)
def test_bad_values_are_one_plain_sentence(key: str, text: str, message: str) -> None:
    p = schema_of(Outer).get(key)
    assert p is not None
    with pytest.raises(ParamError) as err:
        p.parse(text, "m")
    assert str(err.value).startswith(f"m.{key} must be ") and message in str(err.value)
    assert "\n" not in str(err.value) and "np." not in str(err.value)


def test_unknown_keys_name_the_known_ones() -> None:
    with pytest.raises(ParamError, match="unknown parameter 'depth'; known: rate, flag"):
        schema_of(Outer).check({"depth": 3}, "m")


def test_override_syntax() -> None:
    known = ["logreg", "rbm"]
    assert parse_overrides(["rbm.n_iter=3", "logreg.C=0.5"], [], known) == {
        "rbm": {"n_iter": "3"},
        "logreg": {"C": "0.5"},
    }
    assert parse_overrides(["n_iter=3"], ["rbm"], known) == {"rbm": {"n_iter": "3"}}
    for bad, message in [
        (["n_iter"], "expected MODEL.KEY=VALUE"),
        (["nope.n_iter=3"], "unknown model 'nope'"),
        (["n_iter=3"], "name the model"),
    ]:
        with pytest.raises(ParamError, match=message):
            parse_overrides(bad, [], known)
    assert parse_assignments(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}


def test_override_syntax_spread_over_the_models_that_have_the_key() -> None:
    known = ["ease", "als", "popularity"]
    keys = {"ease": {"l2"}, "als": {"factors", "num_threads"}, "popularity": {"num_threads"}}

    def has_key(name: str, key: str) -> bool:
        return key in keys[name]

    chosen = ["ease", "als", "popularity"]
    assert parse_overrides(["num_threads=2", "ease.l2=5"], chosen, known, has_key=has_key) == {
        "als": {"num_threads": "2"},
        "popularity": {"num_threads": "2"},
        "ease": {"l2": "5"},
    }
    assert parse_overrides(["l2=9"], ["ease"], known, has_key=has_key) == {"ease": {"l2": "9"}}
    for bad, message in [
        (["factors=3"], "no chosen model has a parameter 'factors'"),
        (["als.factors=3"], "model 'als' is not among the chosen models"),
        (["nope.k=3"], "unknown model 'nope'"),
    ]:
        with pytest.raises(ParamError, match=message):
            parse_overrides(bad, ["ease", "popularity"], known, has_key=has_key)


def _all_params() -> list[tuple[str, Param]]:
    return [(n, p) for n in registry.model_names() for p in registry.get_spec(n).schema.params]


def test_every_registered_parameter_is_declared_with_help_and_a_valid_default() -> None:
    for name, p in _all_params():
        assert p.help, f"{name}.{p.key} has no help"
        assert p.parse(p.default, name) == p.default  # the default passes its own check
        if p.kind in ("int", "float"):
            assert p.low is not None and p.high is not None, f"{name}.{p.key} has no range"


@settings(max_examples=300, deadline=None)
@given(index=st.integers(min_value=0), text=st.text(max_size=12))
def test_fuzz_any_text_is_a_value_or_a_param_error(index: int, text: str) -> None:
    pairs = _all_params()
    name, p = pairs[index % len(pairs)]
    try:
        value = p.parse(text, name)
    except ParamError as err:
        assert str(err).startswith(f"{name}.{p.key} must be ")
        return
    if isinstance(value, float):
        assert math.isfinite(value)
    registry.get_spec(name).params({p.key: value})  # a parsed value passes the whole-model check


runner = CliRunner()


@settings(max_examples=40, deadline=None)
@given(index=st.integers(min_value=0), text=st.text(max_size=10).filter(lambda s: "\x00" not in s))
def test_fuzz_cli_set_values_never_crash(index: int, text: str) -> None:
    pairs = _all_params()
    name, p = pairs[index % len(pairs)]
    # a missing data file: a good --set gets as far as the data (exit 2), a bad one is refused first
    result = runner.invoke(
        app, ["evaluate", "-m", name, "--set", f"{name}.{p.key}={text}", "--data", "/nonexistent/x.csv"]
    )
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.stderr.strip().splitlines()) >= 1 and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        (
            "rbm.exposure_lr_schedule=cubic",
            "rbm.exposure_lr_schedule must be one of constant, linear, got 'cubic'",
        ),
        ("rbm.lr_schedule=", "rbm.lr_schedule must be one of constant, linear"),
        ("rbm.exposure_learning_rate=0", "rbm.exposure_learning_rate must be a number > 0"),
        ("rbm.validation_fraction=0.9", "rbm.validation_fraction must be a number from 0 to 0.5"),
        ("dbn.patience=0", "dbn.patience must be an integer from 1"),
    ],
)
def test_rbm_schedule_and_early_stopping_values_are_refused_in_one_line(
    assignment: str, message: str
) -> None:
    r = CliRunner().invoke(app, ["evaluate-recs", "-m", assignment.split(".")[0], "--set", assignment])
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.stderr.split()), r.stderr

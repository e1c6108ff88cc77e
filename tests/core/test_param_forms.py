"""One written form of a parameter value: a script's typo fails loudly instead of being read leniently."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flowtui.cli import app
from flowtui.core.errors import ParamError
from flowtui.core.params import schema_of
from flowtui.core.recs.rbm_params import RBMParams


@pytest.mark.parametrize("text", ["1_000", " 5", "5 ", "\t5", "５", "٥", "1 000", "5\n", "0b101", "1e3_0"])
def test_integers_in_any_other_form_are_refused(text: str) -> None:
    p = schema_of(RBMParams).get("n_iter")
    assert p is not None
    with pytest.raises(ParamError, match=r"rbm\.n_iter must be an integer"):
        p.parse(text, "rbm")


@pytest.mark.parametrize(("text", "value"), [("5", 5), ("40", 40), ("1e2", 100), ("3.0", 3)])
def test_the_documented_forms_still_parse(text: str, value: int) -> None:
    p = schema_of(RBMParams).get("n_iter")
    assert p is not None and p.parse(text, "rbm") == value


@pytest.mark.parametrize(
    "text",
    ["[[1]]", "[1,[2]]", "[" * 50_000 + "]" * 50_000, '{"a": 1}'],
    ids=["nested", "inner", "deep", "object"],
)
def test_nested_lists_are_refused_with_one_sentence(text: str) -> None:
    p = schema_of(RBMParams).get("k_schedule")
    assert p is not None
    with pytest.raises(ParamError) as err:
        p.parse(text, "rbm")
    assert "must be a list of integers" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "value",
    ["1_000", " 5", "５", "[" * 50_000 + "]" * 50_000],
    ids=["underscore", "space", "fullwidth", "deep"],
)
def test_the_cli_refuses_them_with_exit_2(value: str) -> None:
    key = "k_schedule" if value.startswith("[") else "n_iter"
    r = CliRunner().invoke(app, ["evaluate", "-m", "rbm", "--set", f"rbm.{key}={value}"])
    assert r.exit_code == 2 and "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, (
        r.output
    )

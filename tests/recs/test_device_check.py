"""A device that this machine lacks is refused up front with one line naming the devices it has."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from flowtui.cli import app
from flowtui.core import registry
from flowtui.core.errors import ParamError
from flowtui.core.recs.rbm_source import resolve_device


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_resolve_device_names_what_exists(no_gpu: None, device: str) -> None:
    with pytest.raises(ParamError, match=rf"no {device.upper()} device .*devices here: cpu"):
        resolve_device(device)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"


@pytest.mark.parametrize(
    ("kind", "name", "key"),
    [("recommender", "rbm", "device"), ("recommender", "dbn", "device"), ("classifier", "rbm", "device"),
     ("classifier", "dbn", "device"), ("classifier", "hybrid", "rbm_device")],
)  # fmt: skip
def test_every_model_with_a_device_checks_it_when_its_parameters_are_resolved(
    no_gpu: None, kind: str, name: str, key: str
) -> None:
    spec = registry.get_recommender(name) if kind == "recommender" else registry.get_spec(name)
    with pytest.raises(ParamError, match=rf"{name}\.{key} is 'cuda'"):
        spec.params({key: "cuda"})
    assert spec.params({key: "cpu"})[key] == "cpu"


@pytest.mark.parametrize(
    "args",
    [
        ["evaluate", "-m", "rbm", "--set", "rbm.device=cuda"],
        ["train-recs", "-m", "rbm", "--set", "rbm.device=mps", "--out", "unused"],
        ["evaluate-recs", "-m", "dbn", "--set", "dbn.device=cuda"],
    ],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_the_cli_refuses_before_any_work(no_gpu: None, args: list[str], as_json: bool) -> None:
    r = CliRunner().invoke(app, [*args, *(["--json"] if as_json else [])])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "devices here: cpu" in r.output
    if not as_json:
        assert len(r.output.strip().splitlines()) == 1

"""Each recommender's search space: the `search=` of its parameter schema, checked against the parameters'
own ranges, with the user's replacements (`--space MODEL.KEY=LOW:HIGH[:log]` or `=A,B,C`) applied."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flowtui.core import registry
from flowtui.core.errors import ParamError
from flowtui.core.params import Param, Value, parse_overrides
from flowtui.core.search import Search

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

#: A model's search space: parameter key -> where the tuner looks.
Space = dict[str, Search]


def space_of(name: str, replaced: Mapping[str, Search] | None = None) -> Space:
    """The search space of recommender `name`: its declared `search=` fields, those in `replaced` put in
    their place, each checked against its parameter (ParamError naming `name.key`)."""
    schema = registry.get_recommender(name).schema
    space = {p.key: p.search for p in schema.params if p.search is not None}
    space.update(replaced or {})
    for key, search in space.items():
        p = schema.get(key)
        if p is None:
            raise ParamError(f"{name}: unknown parameter {key!r}; known: {', '.join(schema.keys)}")
        check_search(p, search, name)
    return space


def check_search(p: Param, search: Search, model: str) -> None:
    """ParamError unless `search` fits parameter `p`: a range of numbers inside its bounds (positive on a
    log scale, low below high), or choices that `p` accepts."""
    where = f"{model}.{p.key}"
    if search.choices:
        for c in search.choices:
            p.parse(c, model)
        return
    if p.kind not in ("int", "float"):
        raise ParamError(f"{where}: a search range needs a number parameter; give choices A,B,C")
    lo, hi = search.low, search.high
    if not _number(lo) or not _number(hi) or lo >= hi:  # type: ignore[operator]
        raise ParamError(f"{where}: a search range needs numbers LOW < HIGH, got {search}")
    if search.log and lo <= 0:  # type: ignore[operator]
        raise ParamError(f"{where}: a log-scale search range needs LOW > 0, got {search}")
    if p.kind == "int" and not (float(lo).is_integer() and float(hi).is_integer()):  # type: ignore[arg-type]
        raise ParamError(f"{where}: an integer parameter's search range needs integer ends, got {search}")
    for end in (lo, hi):
        try:
            p.parse(end, model)
        except ParamError:
            raise ParamError(
                f"{where}: search range {search} leaves what it accepts ({p.describe()})"
            ) from None


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def parse_search(text: str, p: Param, model: str) -> Search:
    """`LOW:HIGH`, `LOW:HIGH:log` or `A,B,C` (choices) as a Search checked against `p` (ParamError)."""
    where = f"{model}.{p.key}"
    parts = text.split(":")
    if len(parts) in (2, 3):
        log = len(parts) == 3
        if log and parts[2] != "log":
            raise ParamError(f"--space {where}={text}: expected LOW:HIGH, LOW:HIGH:log or A,B,C")
        ends = [p.parse(x, model) if x else None for x in parts[:2]]
        search = Search(_float(ends[0]), _float(ends[1]), log=log)
    elif len(parts) == 1 and text:
        search = Search(choices=tuple(p.parse(x, model) for x in text.split(",")))
    else:
        raise ParamError(f"--space {where}={text}: expected LOW:HIGH, LOW:HIGH:log or A,B,C")
    check_search(p, search, model)
    return search


def _float(x: Value) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def parse_spaces(items: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, Search]]:
    """`--space` items (MODEL.KEY=..., or KEY=... for every chosen model that has KEY) as {model: {key:
    Search}}, each checked (ParamError, one line)."""
    known = registry.recommender_names()

    def has_key(name: str, key: str) -> bool:
        return registry.get_recommender(name).schema.get(key) is not None

    try:
        texts = parse_overrides(items, list(names), known, has_key=has_key)
    except ParamError as exc:  # the one parser of MODEL.KEY=VALUE speaks of --set
        raise ParamError(str(exc).replace("--set ", "--space ", 1)) from None
    out: dict[str, dict[str, Search]] = {}
    for name, over in texts.items():
        schema = registry.get_recommender(name).schema
        for key, text in over.items():
            p = schema.get(key)
            if p is None:
                raise ParamError(f"{name}: unknown parameter {key!r}; known: {', '.join(schema.keys)}")
            out.setdefault(name, {})[key] = parse_search(text, p, name)
    return out


def distributions(name: str, space: Space) -> dict[str, BaseDistribution]:
    """Optuna's distributions for `space` (integers for int parameters)."""
    from optuna import distributions as od

    schema = registry.get_recommender(name).schema
    out: dict[str, BaseDistribution] = {}
    for key, s in space.items():
        p = schema.get(key)
        assert p is not None
        if s.choices:
            out[key] = od.CategoricalDistribution(list(s.choices))
        elif p.kind == "int":
            out[key] = od.IntDistribution(int(s.low or 0), int(s.high or 0), log=s.log)
        else:
            out[key] = od.FloatDistribution(float(s.low or 0), float(s.high or 0), log=s.log)
    return out


def as_values(params: Mapping[str, Any]) -> dict[str, Value]:
    """Optuna's suggested values as plain JSON values (numpy scalars and tuples turned plain)."""
    out: dict[str, Value] = {}
    for key, v in params.items():
        out[key] = v.item() if hasattr(v, "item") else v
    return out

"""Where a tuner looks for a parameter, declared beside it: `param(..., search=Search(10.0, 5000.0,
log=True))` or the short forms `("log", 10.0, 5000.0)`, `("linear", 1, 9)` and `(50, 100, 200)` (choices).

The declaration is checked against the parameter's own range when a tuner reads it
(`flowtui.core.workflows.tune_space`); this module imports nothing of flowtui.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Search"]


@dataclass(frozen=True)
class Search:
    """Numbers from `low` to `high` (on a log scale with `log`), or one of `choices`."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    @staticmethod
    def of(spec: Search | tuple[Any, ...] | None) -> Search | None:
        """`spec` as a Search: ("log" | "linear", low, high) is a range, any other tuple the choices."""
        if spec is None or isinstance(spec, Search):
            return spec
        if len(spec) == 3 and spec[0] in ("log", "linear"):
            return Search(spec[1], spec[2], log=spec[0] == "log")
        return Search(choices=tuple(spec))

    def __str__(self) -> str:
        if self.choices:
            return "one of " + ", ".join(_shown(c) for c in self.choices)
        return f"{_shown(self.low)} to {_shown(self.high)}" + (", log scale" if self.log else "")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (tune-recs' output)."""
        if self.choices:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log}


def _shown(x: object) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return x if isinstance(x, str) else json.dumps(x)

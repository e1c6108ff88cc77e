"""One declaration per model parameter: a typed, frozen dataclass whose fields carry range and help.

A model's parameters are a dataclass built with `param(...)` fields, e.g.

    @dataclass(frozen=True)
    class LogRegParams:
        C: float = param(1.0, "inverse regularisation strength", low=0.0, low_open=True)

Everything else is derived from it: the registry's defaults, `--set MODEL.KEY=VALUE`, the TUI form, the
validation messages ("logreg.C must be a number > 0, got 'abc'") and the help text. A field whose type is
itself a params dataclass is flattened with its name as prefix (`rbm_n_iter`), so every parameter has one
flat key. Values are parsed from text (CLI, TUI, JSON) by the same function everywhere.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from flowtui.core.errors import ParamError
from flowtui.core.search import Search

__all__ = [
    "PRESETS",
    "Param",
    "Schema",
    "Search",
    "param",
    "parse_assignments",
    "parse_overrides",
    "parse_text",
    "schema_of",
    "show_value",
]

#: The presets every model understands: "full" is the declared defaults, "quick" a first look in seconds.
PRESETS = ("quick", "full")
Preset = Literal["quick", "full"]

Kind = Literal["int", "float", "bool", "str", "ints"]
#: What a parameter may hold once parsed (JSON-compatible).
Value = int | float | bool | str | tuple[int, ...] | None


def param(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    choices: Sequence[str] = (),
    search: Search | tuple[Any, ...] | None = None,
) -> Any:
    """A dataclass field with its default, a one-line help text and its allowed range.

    `low`/`high` bound numbers (and each element of an int tuple) inclusively, `low_open` makes the lower
    bound exclusive; `choices` lists the allowed strings (for a str field, or beside a number: "sqrt");
    `search` is where a tuner looks (`Search`, or `("log", 10.0, 5000.0)`, `("linear", 1, 9)`, `(1, 5, 9)`).
    """
    meta = {"help": help, "low": low, "high": high, "low_open": low_open, "choices": tuple(choices)}
    return dataclasses.field(default=default, metadata={**meta, "search": Search.of(search)})


@dataclass(frozen=True)
class Param:
    """One flat parameter: its key, type, default, range and help."""

    key: str
    kind: Kind
    default: Value
    help: str
    nullable: bool = False
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()
    search: Search | None = None

    def describe(self) -> str:
        """What the parameter accepts, as the end of a sentence ("an integer >= 1")."""
        noun = {
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "str": "one of " + ", ".join(self.choices),
            "ints": "a list of integers",
        }[self.kind]
        if self.kind != "str":
            noun += self._bounds()
        if self.choices and self.kind != "str":
            noun += " or one of " + ", ".join(self.choices)
        if self.nullable:
            noun += " or null"
        return noun

    def _bounds(self) -> str:
        lo, hi = self.low, self.high
        if lo is not None and hi is not None and not self.low_open:
            return f" from {_num(lo)} to {_num(hi)}"
        bits = [f"{'>' if self.low_open else '>='} {_num(lo)}"] if lo is not None else []
        bits += [f"<= {_num(hi)}"] if hi is not None else []
        return (" " + " and ".join(bits)) if bits else ""

    def parse(self, raw: object, model: str = "") -> Value:
        """`raw` (text from a command line or form, or a JSON value) as a checked value of this parameter."""
        where = f"{model}.{self.key}" if model else self.key
        value = _coerce(self, raw)
        if value is _BAD:
            raise ParamError(f"{where} must be {self.describe()}, got {_shown(raw)}")
        if not self._in_range(value):
            raise ParamError(f"{where} must be {self.describe()}, got {_shown(raw)}")
        return typing.cast(Value, value)

    def _in_range(self, value: object) -> bool:
        if value is None or isinstance(value, (bool, str)):
            return True
        items = value if isinstance(value, tuple) else (value,)
        for x in items:
            assert isinstance(x, (int, float))
            if self.low is not None and (x <= self.low if self.low_open else x < self.low):
                return False
            if self.high is not None and x > self.high:
                return False
        return True


class _Bad:
    pass


_BAD: Any = _Bad()
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


def _shown(raw: object) -> str:
    if isinstance(raw, str):
        return repr(raw)
    return json.dumps(raw) if isinstance(raw, (int, float, bool, list, type(None))) else repr(str(raw))


def _coerce(p: Param, raw: object) -> object:
    """The typed value of `raw` for `p`, or _BAD."""
    if isinstance(raw, str):
        if raw != raw.strip():
            return _BAD  # " 5" or "5 " is a typo in a script: one written form, no padding
        text = raw
        if len(text) >= 2 and text[0] == text[-1] == '"':  # a JSON string, as a shell may pass it
            try:
                decoded = json.loads(text)
            except json.JSONDecodeError:
                return _BAD
            text = decoded if isinstance(decoded, str) else text
        if p.nullable and text.lower() in ("null", "none", ""):
            return None
        if text in p.choices:
            return text
        if p.kind == "str":
            return _BAD
        if p.kind == "bool":
            low = text.lower()
            return True if low in _TRUE else False if low in _FALSE else _BAD
        if p.kind == "ints":
            try:
                raw = json.loads(text)
            except (json.JSONDecodeError, RecursionError):
                return _BAD
        else:
            raw = _number(text)
            if raw is _BAD:
                return _BAD
    if raw is None:
        return None if p.nullable else _BAD
    if p.kind == "bool":
        return raw if isinstance(raw, bool) else _BAD
    if isinstance(raw, bool):
        return _BAD  # JSON true is not the integer 1
    if p.kind == "int":
        if isinstance(raw, float) and raw.is_integer() and abs(raw) < 2**53:
            return int(raw)
        return raw if isinstance(raw, int) else _BAD
    if p.kind == "float":
        return float(raw) if isinstance(raw, (int, float)) and math.isfinite(raw) else _BAD
    if p.kind == "ints":
        if (
            isinstance(raw, (list, tuple))
            and raw
            and all(isinstance(x, int) and not isinstance(x, bool) for x in raw)
        ):
            return tuple(int(x) for x in raw)
        return _BAD
    return raw if isinstance(raw, str) and raw in p.choices else _BAD


#: The one written form of a number: ASCII digits, an optional minus, point and exponent.
_NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _number(text: str) -> object:
    """A decimal integer or float written plainly ("12", "0.5", "1e-3"); not "0x16", "+22", "1_000", "inf",
    padded text or digits of other scripts ("５"), which Python's int() and float() would accept."""
    if not _NUMBER.fullmatch(text):
        return _BAD
    try:
        return int(text)
    except ValueError:
        pass
    try:
        x = float(text)
    except ValueError:
        return _BAD
    return x if math.isfinite(x) else _BAD


@dataclass(frozen=True)
class Schema:
    """The flat parameters of one params dataclass (nested params dataclasses flattened with a prefix)."""

    cls: type
    params: tuple[Param, ...]

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]

    def get(self, key: str) -> Param | None:
        """The parameter `key`, or None."""
        for p in self.params:
            if p.key == key:
                return p
        return None

    def defaults(self) -> dict[str, Value]:
        """Every key with its declared default."""
        return {p.key: p.default for p in self.params}

    def check(self, overrides: Mapping[str, object] | None, model: str = "") -> dict[str, Value]:
        """`overrides` (text or JSON values) parsed and range-checked; unknown keys refused."""
        out: dict[str, Value] = {}
        for key, raw in (overrides or {}).items():
            p = self.get(key)
            if p is None:
                where = f"{model}: " if model else ""
                raise ParamError(f"{where}unknown parameter {key!r}; known: {', '.join(self.keys)}")
            out[key] = p.parse(raw, model)
        return out

    def resolve(self, overrides: Mapping[str, object] | None = None, model: str = "") -> dict[str, Value]:
        """Defaults with the checked `overrides` applied: every key, each value valid."""
        return {**self.defaults(), **self.check(overrides, model)}

    def build(self, flat: Mapping[str, object] | None = None, model: str = "") -> Any:
        """An instance of the params dataclass from flat keys (defaults for the missing ones)."""
        values = self.resolve(flat, model)
        return _instance(self.cls, values, "")

    def flatten(self, obj: object) -> dict[str, Value]:
        """The flat key -> value dict of an instance of the params dataclass."""
        return _flatten(obj, "")

    def help_lines(self) -> list[str]:
        """One line per parameter: key, default, what it accepts, help."""
        return [f"{p.key} (default {show_value(p.default)}): {p.help}; {p.describe()}" for p in self.params]


def _hint_kind(hint: Any) -> tuple[Kind, bool]:
    """("int" | "float" | "bool" | "str" | "ints", nullable) of a field's type hint."""
    args = get_args(hint)
    nullable = False
    if get_origin(hint) in (typing.Union, types.UnionType):
        nullable = type(None) in args
        rest = [a for a in args if a is not type(None)]
        # float | str (a number or a named choice): the number decides the kind
        hint = next((a for a in rest if a in (int, float)), rest[0])
    if get_origin(hint) is Literal:
        return "str", nullable
    if get_origin(hint) is tuple:
        return "ints", nullable
    names: dict[type, Kind] = {bool: "bool", int: "int", float: "float", str: "str"}
    if hint not in names:
        raise TypeError(f"unsupported parameter type {hint!r}")
    return names[hint], nullable


def _is_params(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _collect(cls: type, prefix: str, base: object = None) -> list[Param]:
    """The flat parameters of `cls`; `base` is the instance a nesting field gives as its default."""
    hints = typing.get_type_hints(cls)
    out: list[Param] = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        own_default = getattr(base, f.name) if base is not None else f.default
        if _is_params(hint):
            out.extend(_collect(hint, f"{prefix}{f.name}_", own_default))
            continue
        kind, nullable = _hint_kind(hint)
        meta = f.metadata
        if "help" not in meta:
            raise TypeError(f"{cls.__name__}.{f.name}: declare it with params.param(default, help)")
        choices = tuple(meta["choices"]) or tuple(get_args(hint) if get_origin(hint) is Literal else ())
        default = typing.cast(Value, tuple(own_default) if isinstance(own_default, list) else own_default)
        out.append(
            Param(
                key=prefix + f.name,
                kind=kind,
                default=default,
                help=meta["help"],
                nullable=nullable,
                low=meta["low"],
                high=meta["high"],
                low_open=meta["low_open"],
                choices=choices,
                search=meta.get("search"),
            )
        )
    return out


def _instance(cls: type, values: Mapping[str, Value], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        kwargs[f.name] = (
            _instance(hint, values, f"{prefix}{f.name}_") if _is_params(hint) else values[prefix + f.name]
        )
    return cls(**kwargs)


def _flatten(obj: object, prefix: str) -> dict[str, Value]:
    out: dict[str, Value] = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(_flatten(value, f"{prefix}{f.name}_"))
        else:
            out[prefix + f.name] = value
    return out


_SCHEMAS: dict[type, Schema] = {}


def schema_of(cls: type) -> Schema:
    """The (cached) flat schema of a params dataclass."""
    if cls not in _SCHEMAS:
        if not _is_params(cls):
            raise TypeError(f"{cls!r} is not a params dataclass")
        _SCHEMAS[cls] = Schema(cls, tuple(_collect(cls, "")))
    return _SCHEMAS[cls]


def parse_text(text: str) -> object:
    """A value as typed by a person: JSON when it parses (numbers, lists, null), else the text itself."""
    try:
        return typing.cast(object, json.loads(text))
    except json.JSONDecodeError:
        return text


def show_value(value: object) -> str:
    """A parameter value as a person would type it back (the TUI form, help texts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value)


def _assignment(item: str, form: str) -> tuple[str, str]:
    key, eq, raw = item.partition("=")
    key = key.strip()
    if not eq or not key:
        raise ParamError(f"--set {item!r}: expected {form}")
    return key, raw


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """`KEY=VALUE` items as {key: text} (values are checked by a model's schema)."""
    return dict(_assignment(item, "KEY=VALUE") for item in items)


def parse_overrides(
    items: Iterable[str],
    models: Sequence[str],
    known: Sequence[str],
    *,
    has_key: Callable[[str, str], bool] | None = None,
) -> dict[str, dict[str, str]]:
    """`MODEL.KEY=VALUE` items as {model: {key: text}}; the one parser of `--set` for every model kind.

    A plain `KEY=VALUE` goes to the one chosen model; with `has_key(model, key)` (recommenders) it goes to
    every chosen model that has KEY instead, and at least one must. Only the syntax, the model names and
    (with `has_key`) the keys are checked here; values are checked by each model's schema.
    """
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, raw = _assignment(item, "MODEL.KEY=VALUE")
        prefix, dot, rest = key.partition(".")
        if dot and prefix in known:
            names, key = [prefix], rest
        elif dot:
            raise ParamError(f"--set {item!r}: unknown model {prefix!r}; known: {', '.join(known)}")
        elif has_key is not None:
            names = [n for n in models or known if has_key(n, key)]
            if not names:
                raise ParamError(f"--set {item!r}: no chosen model has a parameter {key!r}")
        elif len(models) == 1:
            names = [models[0]]
        else:
            listed = ", ".join(models or known)
            raise ParamError(f"--set {item!r}: name the model, as MODEL.KEY=VALUE (models: {listed})")
        for name in names:
            if models and name not in models:
                raise ParamError(
                    f"--set {item!r}: model {name!r} is not among the chosen models ({', '.join(models)})"
                )
            out.setdefault(name, {})[key] = raw
    return out

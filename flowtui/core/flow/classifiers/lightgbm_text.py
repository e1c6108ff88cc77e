"""LightGBM's text model format, checked before LightGBM parses it.

LightGBM aborts the whole process (SIGABRT from its parallel tree parser) on some malformed trees, and
silently accepts others (a truncated file, a child index out of range) that would crash or mislead later:
`check_model_text` refuses both with one sentence naming the file and the first problem.
"""

from __future__ import annotations

import math
import re

__all__ = ["LGB_FILE", "check_model_text"]

#: The name of LightGBM's model text in a model folder.
LGB_FILE = "model.txt"

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


def _tree_fields(i: int, block: str) -> dict[str, str]:
    """The `key=value` lines of one `Tree=i` block (known keys, each once, at most as many as LightGBM reads)."""
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
    return kv


def _check_arrays(i: int, kv: dict[str, str], n: int, n_cat: int, n_features: int) -> dict[str, list[int]]:
    """The node and leaf arrays of a tree of `n` leaves (n > 1): counts, features, decisions, categories.
    Returns the integer node arrays."""
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
    return ints


def _check_shape(i: int, left: list[int], right: list[int], n: int) -> None:
    """A proper binary tree: from node 0, every other node and every leaf reached exactly once."""
    seen_nodes, seen_leaves, todo = {0}, set(), [0]
    while todo:
        node = todo.pop()
        for child in (left[node], right[node]):
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


def _check_tree(i: int, block: str, n_features: int) -> None:
    """One `Tree=i` block: the fields LightGBM's parser needs, with the right counts, and a proper tree."""
    kv = _tree_fields(i, block)
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
    ints = _check_arrays(i, kv, n, n_cat, n_features)
    _check_shape(i, ints["left_child"], ints["right_child"], n)


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


def _header(header: list[str]) -> dict[str, str]:
    """The header's `key=value` lines (known keys, each once), with the keys LightGBM needs."""
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
    return kv


def _check_header(kv: dict[str, str], features: list[str] | None) -> tuple[int, list[int]]:
    """A binary classifier of the expected features: returns its number of features and its tree sizes."""
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
    return max_idx + 1, sizes


def _check_text(text: str, features: list[str] | None) -> None:
    """The whole file: header, every tree where tree_sizes puts it, the parameters and LightGBM's ending."""
    if "\r" in text or "\x00" in text:
        raise _Bad("unexpected control characters")
    start = text.find("\nTree=")
    n_features, sizes = _check_header(_header((text if start < 0 else text[:start]).split("\n")), features)
    pos = start + 1
    if start < 0 or pos + sum(sizes) > len(text):
        raise _Bad("the file ends before its last tree (truncated?)")
    for i, size in enumerate(sizes):
        _check_tree(i, text[pos : pos + size], n_features)
        pos += size
    if not text[pos:].lstrip("\n").startswith("end of trees"):
        raise _Bad("no 'end of trees' after the last tree")
    _check_parameters(text[pos:].split("\n"))
    if not text.rstrip("\n").rpartition("\n")[2].startswith("pandas_categorical:"):
        raise _Bad("the file does not end as LightGBM ends it (truncated?)")


def check_model_text(data: bytes, features: list[str] | None, *, where: str = LGB_FILE) -> str:
    """The text of a binary-objective LightGBM model file, checked well enough that LightGBM's parser will
    neither abort nor read past the end; ValueError naming `where` and the first problem otherwise.

    `features`: the feature names the file must declare (None: any)."""
    try:
        text = data.decode("ascii")
        _check_text(text, features)
    except (_Bad, UnicodeDecodeError) as exc:
        reason = "not plain ASCII text" if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise ValueError(f"{where}: damaged LightGBM model ({reason})") from None
    return text

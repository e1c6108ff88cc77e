"""The TUI's modules import each other without a circle: screens import helpers, widgets, messages and state,
never another screen, the page table or the app; only the app puts the screens together.

Imports are read from the source (ast), so the check sees every import: at the top, inside functions, and
under `if TYPE_CHECKING:`. Importing `a.b.c` also runs the packages `a` and `a.b`, so those count as edges.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import flowtui.tui

TUI = "flowtui.tui"
ROOT = Path(flowtui.tui.__file__).parent
#: Modules that screens and widgets build on; they must know nothing of screens, the page table or the app.
LOWER = (
    f"{TUI}.helpers",
    f"{TUI}.messages",
    f"{TUI}.state",
    f"{TUI}.widgets",
    f"{TUI}.dialogs",
    f"{TUI}.settings",
)
ASSEMBLY = (f"{TUI}.app", f"{TUI}.layout")  # where the screens are put together


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def tui_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imported_names(source: str, module: str, is_package: bool, known: Iterable[str]) -> set[str]:
    """Every module `source` imports anywhere in its body, resolved to absolute names.

    `from p import x` counts as importing `p.x` when that is a module (one of `known`), else `p`.
    """
    known = set(known)
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return found


def with_packages(names: Iterable[str]) -> set[str]:
    """The names plus the packages that importing them runs (`a.b.c` -> `a`, `a.b`, `a.b.c`)."""
    out: set[str] = set()
    for name in names:
        parts = name.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the flowtui.tui modules its import statements run."""
    modules = tui_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imports = imported_names(path.read_text(), name, path.name == "__init__.py", modules)
        graph[name] = {m for m in with_packages(imports) if m in modules and m != name}
    return graph


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# -- the checks on flowtui.tui -------------------------------------------------------------------------------


def test_the_graph_covers_the_tui() -> None:
    graph = import_graph()
    for name in (
        f"{TUI}.app",
        f"{TUI}.layout",
        f"{TUI}.helpers",
        f"{TUI}.screens.base",
        f"{TUI}.screens.data",
    ):
        assert name in graph, name
    assert f"{TUI}.screens.base" in graph[f"{TUI}.screens.data"]
    assert f"{TUI}.layout" in graph[f"{TUI}.app"]


def test_no_import_cycle_in_the_tui() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_screens_import_no_other_screen_nor_the_app() -> None:
    prefix = f"{TUI}.screens."
    offences = []
    for name, imports in import_graph().items():
        if not name.startswith(prefix):
            continue
        own = ".".join(name.split(".")[:4])  # a screen may be a package: its parts import each other
        for target in sorted(imports):
            other_screen = (
                target.startswith(prefix) and target != f"{TUI}.screens.base" and not _under(target, [own])
            )
            if other_screen or _under(target, ASSEMBLY):
                offences.append(f"{name} imports {target}")
    assert not offences, "\n".join(offences)


def test_helpers_widgets_state_and_messages_know_no_screen() -> None:
    offences = [
        f"{name} imports {target}"
        for name, imports in import_graph().items()
        if _under(name, LOWER)
        for target in sorted(imports)
        if _under(target, (f"{TUI}.screens", *ASSEMBLY))
    ]
    assert not offences, "\n".join(offences)


# -- the checker itself can fail -----------------------------------------------------------------------------


def test_imports_are_found_everywhere_in_a_module() -> None:
    source = """
from __future__ import annotations
from typing import TYPE_CHECKING
import flowtui.tui.state
from flowtui.tui import helpers
from . import base
from .. import messages
if TYPE_CHECKING:
    from flowtui.tui.app import FlowApp
def f():
    from flowtui.tui.screens.results import ResultsScreen
class C:
    def g(self):
        import flowtui.tui.layout as layout
"""
    known = {f"{TUI}.helpers", f"{TUI}.screens.base", f"{TUI}.messages"}
    found = imported_names(source, f"{TUI}.screens.data", False, known)
    assert {
        f"{TUI}.state",
        f"{TUI}.helpers",
        f"{TUI}.screens.base",
        f"{TUI}.messages",
        f"{TUI}.app",
        f"{TUI}.screens.results",
        f"{TUI}.layout",
    } <= found


def test_find_cycle_finds_one_and_only_when_there_is_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"y"}}) == ["y", "y"]
    assert with_packages(["a.b.c"]) == {"a", "a.b", "a.b.c"}

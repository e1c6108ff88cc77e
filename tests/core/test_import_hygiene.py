"""flowtui.core must never pull in a front-end library."""

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "flowtui" / "core"
FRONT_ENDS = {"textual", "rich", "typer"}


def test_core_sources_import_no_front_end() -> None:
    offenders = []
    paths = sorted(CORE.rglob("*.py"))
    assert len(paths) > 60  # every core module, in every sub-package
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{path.relative_to(CORE)}:{node.lineno} {n}" for n in names if n.split(".")[0] in FRONT_ENDS
            ]
    assert offenders == []


def test_core_runtime_loads_no_textual_or_typer() -> None:
    # rich is left out here: scikit-learn >= 1.9 imports it for its own progress callbacks.
    code = (
        "import sys, importlib, pkgutil, flowtui.core as c\n"
        "names = [m.name for m in pkgutil.walk_packages(c.__path__, 'flowtui.core.')]\n"
        "assert len(names) > 60, names\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(','.join(sorted(n for n in ('textual', 'typer') if n in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"flowtui.core imported {out.stdout.strip()}"


def test_core_does_not_import_torch_eagerly() -> None:
    code = "import sys, flowtui.core.registry as r; r.model_names(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

"""flowtui.core must never pull in a front-end library."""

import subprocess
import sys


def test_core_imports_no_front_end() -> None:
    code = (
        "import sys, importlib, pkgutil, flowtui.core as c\n"
        "for m in pkgutil.iter_modules(c.__path__):\n"
        "    importlib.import_module('flowtui.core.' + m.name)\n"
        "bad = sorted(n for n in ('textual', 'rich', 'typer') if n in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"flowtui.core imported {out.stdout.strip()}"


def test_core_does_not_import_torch_eagerly() -> None:
    code = "import sys, flowtui.core.registry as r; r.model_names(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

"""modelfiles is shared core: importing it loads no capability (flow, recs, data) and not the registry."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import sys
import flowtui.core.modelfiles.data_match, flowtui.core.modelfiles.kind, flowtui.core.modelfiles.members
import flowtui.core.modelfiles.meta, flowtui.core.modelfiles.save, flowtui.core.modelfiles.swap
import flowtui.core.modelfiles.target, flowtui.core.modelfiles.versions
above = ("flowtui.core.flow", "flowtui.core.recs", "flowtui.core.data", "flowtui.core.registry")
print(sorted(m for m in sys.modules if m.startswith(above)))
"""


def test_modelfiles_imports_nothing_above_it() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout

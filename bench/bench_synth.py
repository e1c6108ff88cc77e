"""Speed of `flowtui data synth`, as ratios to references measured in the same run.

References: pyarrow's own CSV write of the generated train table (the floor for any CSV writer) and the
per-row budget of the full-scale target (7.5M rows in 180 s). Usage: python bench/bench_synth.py [USERS]
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.csv as pacsv

from flowtui.core.data.synth import synthesize


def main(users: int = 3000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        summary = synthesize(users, seed=7, out_dir=out)
        t_synth = time.perf_counter() - t0
        table = pacsv.read_csv(out / "train.csv")
        t0 = time.perf_counter()
        pacsv.write_csv(table, out / "copy.csv")
        t_write = time.perf_counter() - t0
    rows = summary["rows"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    budget = 180.0 / 7_558_834  # seconds a row at the full-scale target
    print(f"users {users:,}  rows {rows:,}  synth {t_synth:.2f}s  pyarrow write_csv {t_write:.2f}s")
    print(f"synth / pyarrow write_csv of the same table: {t_synth / t_write:.1f}x")
    print(f"synth time per row / full-scale budget (3 min for 7.5M rows): {t_synth / rows / budget:.2f}")
    print(f"peak memory of this process: {peak_mb:.0f} MB (includes the pyarrow table read back)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)

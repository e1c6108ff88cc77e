"""Scale-out: the same Flow training on a Dask cluster (an optional extra: `pip install -e ".[cluster]"`).

Importing this package imports no Dask: `ClusterSpec` parses `local:N` / `tcp://HOST:PORT` without it,
and the modules that need Dask import it when their functions run (`require_dask` names the extra to
install when it is missing).

- `spec.py`: `ClusterSpec.parse`, `ClusterSession` (a started `LocalCluster` or a connection to a scheduler).
- `source.py`: a folder of parquet or CSV parts (or one file) as a Dask DataFrame, read by the workers.
- `features.py`: the leak-free features of `flow/features.py`, partition-wise and EXACTLY equal.
- `boost.py`: LightGBM on the cluster (`lightgbm.dask`), early-stopped as on one machine.
- `executor.py`: `DaskExecutor` (the `core/executor.py` seam) and the cancel/wait helpers.
- `data.py`: `ClusterData`, a run's rows on the cluster (the `RunData` of flow/run_data.py).
- `run.py`: `cluster_run(source, RunConfig, cluster=...)`: `core/run.run` over a `ClusterData`.
"""

from __future__ import annotations

from flowtui.core.cluster.spec import ClusterSpec, require_dask

__all__ = ["ClusterSpec", "require_dask"]

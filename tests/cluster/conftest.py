"""One local Dask cluster (2 worker processes) shared by every cluster test; skipped without the extra."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from flowtui.core.data.synth import synthesize_frames


@pytest.fixture(scope="session")
def session() -> Iterator[Any]:
    """A started `local:2` ClusterSession (about 3-5 s to start), closed after the last test."""
    pytest.importorskip("dask.dataframe", reason="the cluster extra is not installed")
    pytest.importorskip("distributed", reason="the cluster extra is not installed")
    from flowtui.core.cluster.spec import ClusterSpec

    with ClusterSpec.parse("local:2").start() as s:
        yield s


@pytest.fixture(scope="session")
def synth_train() -> pd.DataFrame:
    """Synthetic train rows of 120 users (about 45k rows)."""
    train, _, _ = synthesize_frames(120, seed=5)
    return train


def to_dask(frame: pd.DataFrame, npartitions: int) -> Any:
    """`frame` as a Dask DataFrame with `_row` (its row order), in `npartitions` input partitions."""
    import dask.dataframe as dd

    from flowtui.core.cluster.source import with_row_ids

    return with_row_ids(dd.from_pandas(frame.reset_index(drop=True), npartitions=npartitions, sort=False))

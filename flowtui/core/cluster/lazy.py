"""Dask's modules, imported when first used, and the types the cluster code gives its objects.

Dask and distributed are typed only in part (many of their functions carry no annotations), so this
package treats their objects as `Any` at the boundary: a Dask DataFrame is a `DaskFrame`, a client a
`DaskClient`. Importing this module imports no Dask.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeAlias

__all__ = ["DaskClient", "DaskFrame", "dask", "dask_dataframe", "distributed"]

#: A `dask.dataframe.DataFrame` (or Series / scalar) built by the cluster code.
DaskFrame: TypeAlias = Any
#: A `distributed.Client`.
DaskClient: TypeAlias = Any


def dask() -> Any:
    """The `dask` module."""
    return importlib.import_module("dask")


def dask_dataframe() -> Any:
    """The `dask.dataframe` module."""
    return importlib.import_module("dask.dataframe")


def distributed() -> Any:
    """The `distributed` module."""
    return importlib.import_module("distributed")

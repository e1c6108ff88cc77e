"""The RBM's catalogue context: each visible unit conditioned on the user's other items of its groups.

Item i's logit gains a_l for each catalogue level l (artist, album) at which the user has an entry for
ANOTHER item of i's group: a conditional RBM whose conditioning input is the user's own catalogue
neighbourhood, one learnt weight per level (implicit mode; see `rbm` and docs/RECS.md). `CatalogueContext`
holds the levels and their weights and adds the term to a batch's half-logits (dense, or at chosen pairs);
`catalogue_from_state` reads them back from a saved state. torch is imported lazily.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from flowtui.core.recs.rbm_source import Batch

if TYPE_CHECKING:
    import torch

__all__ = ["CatalogueContext", "catalogue_from_state"]


class CatalogueContext:
    """The catalogue levels of an RBM (`groups_`: level -> each item's group index), their learnt weights
    (`_cat`, with their velocity `_cat_vel`) and the per-level index tensors the term is computed with."""

    device_: str
    catalogue_context: bool
    implicit_weight: float
    groups_: dict[str, np.ndarray]
    _cat: torch.Tensor
    _cat_vel: torch.Tensor
    _groups_t: list[torch.Tensor]

    def _set_catalogue(self, groups: Mapping[str, np.ndarray], weights: torch.Tensor) -> None:
        """The catalogue levels (name -> each item's group index, in GROUP_LEVELS order) and their weights;
        each level's items are also kept sorted by group (`_members`, with group offsets `_starts`)."""
        import torch

        self.groups_: dict[str, np.ndarray] = {k: np.asarray(g, np.int64) for k, g in groups.items()}
        self._cat = weights.detach().to(self.device_, torch.float32).clone()
        self._cat_vel = torch.zeros_like(self._cat)
        dev = self.device_
        self._groups_t: list[torch.Tensor] = []
        self._members: list[torch.Tensor] = []
        self._starts: list[torch.Tensor] = []
        self._sizes: list[torch.Tensor] = []
        self._n_groups: list[int] = []
        for g in self.groups_.values():
            sizes = np.bincount(g)
            self._groups_t.append(torch.from_numpy(g).to(dev))
            self._members.append(torch.from_numpy(np.argsort(g, kind="stable")).to(dev))
            self._starts.append(torch.from_numpy(np.cumsum(sizes) - sizes).to(dev))
            self._sizes.append(torch.from_numpy(sizes).to(dev))
            self._n_groups.append(len(sizes))

    def _catalogue_parts(self, bt: Batch) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per catalogue level, for a sparse batch: (rows, cols) of every item of every group the row has
        an entry in, and (nnz) 1.0 where an entry is alone in its group (it must not count for itself:
        leave-one-out). Sparse: a row's groups hold few items. Empty for a dense batch."""
        import torch

        if not self._groups_t or bt.row is None or bt.col is None:
            return []
        parts = []
        for g, members, starts, sizes, n_groups in zip(
            self._groups_t, self._members, self._starts, self._sizes, self._n_groups, strict=True
        ):
            flat = bt.row * n_groups + g.index_select(0, bt.col)  # (row, group) of each entry
            pairs, inverse, counts = torch.unique(flat, return_inverse=True, return_counts=True)
            alone = (counts.index_select(0, inverse) == 1).float()
            group = pairs % n_groups
            size = sizes.index_select(0, group)
            rows = torch.repeat_interleave(pairs // n_groups, size)
            # the k-th item of each (row, group) pair: its group's start + k
            first = torch.repeat_interleave(torch.cumsum(size, 0) - size, size)
            offset = torch.arange(len(rows), device=rows.device) - first
            cols = members.index_select(
                0, torch.repeat_interleave(starts.index_select(0, group), size) + offset
            )
            parts.append((rows, cols, alone))
        return parts

    def _catalogue_pairs(self, bt: Batch, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The catalogue term of the (local row, item) pairs of a sparse batch, without a dense array."""
        import torch

        assert bt.row is not None and bt.col is not None
        n_items = bt.n_features
        # a pair is an entry of the row when its key is one of the batch's entry keys
        seen = torch.isin(rows * n_items + cols, bt.row * n_items + bt.col).float()
        out = torch.zeros(len(rows), device=rows.device)
        ones = torch.ones(len(bt.col), device=bt.col.device)
        for weight, g, n_groups in zip(self._cat, self._groups_t, self._n_groups, strict=True):
            counts = torch.zeros(bt.n * n_groups, device=g.device)
            counts.index_add_(0, bt.row * n_groups + g.index_select(0, bt.col), ones)
            at_pairs = counts.index_select(0, rows * n_groups + g.index_select(0, cols))
            out += weight * (at_pairs - seen).gt(0.5).float()
        return out

    def _add_catalogue(
        self,
        z: torch.Tensor,
        bt: Batch,
        parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """z (the batch's dense half-logits) plus the catalogue term: each level's weight at the items whose
        group holds ANOTHER item the row has an entry for."""
        parts = self._catalogue_parts(bt) if parts is None else parts
        assert bt.row is not None and bt.col is not None
        for weight, (rows, cols, alone) in zip(self._cat, parts, strict=True):
            # positions are unique within a level (and entries within a batch): a gather and a put, no
            # accumulating scatter (which sorts its indices on the CPU)
            z.index_put_((rows, cols), z[rows, cols].add_(weight))
            z.index_put_((bt.row, bt.col), z[bt.row, bt.col].sub_(alone * weight))  # no self-explanation
        return z

    def catalogue_source_groups(self, X: Any) -> dict[str, np.ndarray]:
        """The item groups a Source over X gives this RBM: the matrix's catalogue levels when
        `catalogue_context` is on, the RBM is implicit (unseen entries weak negatives: an exposure
        network) and X is an InteractionMatrix that names them; else none."""
        from flowtui.core.recs.interactions import GROUP_LEVELS, InteractionMatrix

        if not self.catalogue_context or not isinstance(X, InteractionMatrix):
            return {}
        if not (self.implicit_weight or X.implicit_weight):
            return {}
        return {name: X.item_groups[name] for name in GROUP_LEVELS if name in X.item_groups}

    def _catalogue_state(self) -> dict[str, torch.Tensor]:
        import torch

        from flowtui.core.recs.interactions import GROUP_LEVELS

        if not self.groups_:
            return {}
        return {
            "catalogue_weights": self._cat.detach().cpu().clone(),
            "catalogue_groups": torch.from_numpy(np.stack(list(self.groups_.values()))),
            "catalogue_levels": torch.tensor([GROUP_LEVELS.index(k) for k in self.groups_]),
        }


def catalogue_from_state(state: dict[str, torch.Tensor], n_items: int) -> tuple[dict[str, np.ndarray], Any]:
    """The catalogue levels and weights of a saved state, checked (ValueError); none in older files."""
    import torch

    from flowtui.core.recs.interactions import GROUP_LEVELS

    keys = ("catalogue_groups", "catalogue_levels", "catalogue_weights")
    present = [k for k in keys if k in state]
    if not present:
        return {}, torch.zeros(0)
    if len(present) < len(keys):
        raise ValueError("incomplete RBM catalogue")
    groups, levels, weights = (state[k] for k in keys)
    n = len(levels)
    if (
        levels.ndim != 1
        or groups.shape != (n, n_items)
        or weights.shape != (n,)
        or groups.dtype != torch.int64
        or levels.dtype != torch.int64
    ):
        raise ValueError("inconsistent RBM catalogue shapes")
    codes = levels.tolist()
    if len(set(codes)) != n or not all(0 <= c < len(GROUP_LEVELS) for c in codes):
        raise ValueError("unknown RBM catalogue levels")
    if n and (int(groups.min()) < 0 or int(groups.max()) >= n_items):
        raise ValueError("RBM catalogue group index out of range")
    if not bool(torch.isfinite(weights).all()):
        raise ValueError("non-finite RBM catalogue weights")
    return {GROUP_LEVELS[c]: g.numpy() for c, g in zip(codes, groups, strict=True)}, weights

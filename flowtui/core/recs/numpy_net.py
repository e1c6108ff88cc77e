"""numpy copies of a fitted RBM/DBN's layers, to score one user at a time.

For a single user, small torch operations pay thread start-up costs larger than the arithmetic; these
plain numpy passes give the same half-logits as the torch network (see `Recommender`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.special import expit

from flowtui.core.recs.recommender import one_blas_thread

if TYPE_CHECKING:  # the networks import this module lazily (Network.user_scorer): no import back at run time
    from flowtui.core.recs.dbn import DBN
    from flowtui.core.recs.rbm import RBM


class NumpyNet:
    """numpy copies of an RBM/DBN's layers for one-user scoring (small torch ops pay thread start-up costs)."""

    def __init__(self, net: RBM | DBN) -> None:
        layers = list(net._rbm_layers())
        self.layers: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [
            (r._W.detach().cpu().numpy(), r._c.detach().cpu().numpy(), r._b.detach().cpu().numpy())
            for r in layers
        ]
        self.WT: np.ndarray = np.ascontiguousarray(
            self.layers[0][0].T
        )  # items x hidden: both passes read its rows
        first = layers[0]
        self.context = bool(first.user_rate)
        self.d: np.ndarray = first._d.detach().cpu().numpy()
        self.e: np.ndarray = first._visible_layer()[2].detach().cpu().numpy()
        self.implicit = float(net.implicit_weight or 0.0)
        self.W1_sum: np.ndarray = self.layers[0][0].sum(axis=1)
        self.mix = float(getattr(net, "deep_mix", 0.0))  # a DBN's; an RBM has none
        self.groups, self.catalogue_weights = net._catalogue()

    def half_logits(self, cols: np.ndarray, values: np.ndarray) -> np.ndarray:
        """z with P(v = 1) = sigmoid(2 z) for every item, from one user's observed entries only."""
        with one_blas_thread():
            return self._half_logits(cols, values)

    def _half_logits(self, cols: np.ndarray, values: np.ndarray) -> np.ndarray:
        _, c1, b1 = self.layers[0]
        spins = 2.0 * values.astype(np.float32) - 1.0
        w = self.implicit
        h_in = (spins + w) @ self.WT[cols] + c1
        if w:  # unseen entries are weak negatives (spin -w): all unseen, the observed corrected above
            h_in -= w * self.W1_sum
        r = float(spins.mean()) if self.context and len(spins) else 0.0  # the user's listen tendency
        h_in += r * self.d
        h = _sigmoid(h_in)
        h = mix_deep(
            h, self.layers[1:], self.mix
        )  # a DBN: the first layer mixed with the top's reconstruction
        z: np.ndarray = self.WT @ h
        z += b1
        if r:
            z += r * self.e
        if self.groups:
            z += catalogue_half_logits(self.groups, self.catalogue_weights, cols)
        return z


def mix_deep(
    h1: np.ndarray, upper: list[tuple[np.ndarray, np.ndarray, np.ndarray]], mix: float
) -> np.ndarray:
    """numpy twin of `DBN._scoring_hidden` for one row: first-layer probabilities `h1` mixed by `mix` with
    their reconstruction through the upper layers ((W, c, b) each, bottom first)."""
    if not mix or not upper:
        return h1
    h = h1
    for W, c, _ in upper:
        h = 0.5 * (np.tanh(0.5 * (W @ (2.0 * h - 1.0) + c)) + 1.0)
    for W, _, b in reversed(upper):
        h = 0.5 * (np.tanh(W.T @ h + b) + 1.0)
    out: np.ndarray = ((1.0 - mix) * h1 + mix * h).astype(np.float32)
    return out


def catalogue_half_logits(groups: list[np.ndarray], weights: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """numpy twin of `RBM._add_catalogue` for one user with entries at `cols`: per item, the sum of the
    weights of the levels at which another of the user's items shares its group."""
    n_items = len(groups[0])
    seen = np.zeros(n_items, np.float32)
    seen[np.asarray(cols, np.int64)] = 1.0
    out = np.zeros(n_items, np.float32)
    for g, a in zip(groups, weights, strict=True):
        counts = np.bincount(g, weights=seen, minlength=int(g.max()) + 1).astype(np.float32)
        out += np.float32(a) * (counts[g] - seen > 0.5)
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = expit(x).astype(np.float32, copy=False)
    return out

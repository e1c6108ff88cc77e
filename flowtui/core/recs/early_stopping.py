"""Early stopping of a ranking network on validation NDCG@10, the entries carved from its training data.

In a DBN the first layer alone is watched (with `deep_mix` > 0 the DBN's own scores also mix in the upper
layers, which the check does not see).

`ranking_split` puts a random share of the played entries aside (each user keeps at least one); the network
trains on the rest, and `EarlyStopping`, called after every epoch, measures the validation NDCG@10 of its
top-10 lists (training items excluded) every `every` epochs, keeps the best weights, and stops the training
after `patience` checks without a better score. Only the training data is read: the entries of a test split
made by `flowtui evaluate-recs` never reach here. torch is not imported.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from flowtui.core import events as ev
from flowtui.core import metrics
from flowtui.core.recs.evaluation import split_entries
from flowtui.core.recs.interactions import InteractionMatrix
from flowtui.core.recs.recommender import top_n

if TYPE_CHECKING:
    from flowtui.core.recs.rbm import RBM

#: Validation users scored per check (a random sample when there are more): a check stays near one epoch's
#: cost on 50,000 items, and 1,000 users tell a better epoch from a worse one well enough for patience to act.
MAX_VALIDATION_USERS = 1000
#: The validation split is drawn with the network's seed plus this (never the seed of the network itself).
SPLIT_SEED_OFFSET = 7919
K = 10


@dataclass
class EarlyStopping:
    """Validation NDCG@10 of a network's top-10 lists over `history` (the training entries), checked every
    `every` epochs; `__call__(net, epoch)` returns (the score or None, stop?) and keeps the best weights."""

    history: InteractionMatrix  # what the network sees of each user (its training entries), as played
    relevant: sp.csr_matrix  # the validation entries of the same users, 1 each
    users: np.ndarray  # the rows scored at each check
    patience: int = 3
    every: int = 2
    best: float = -np.inf
    best_epoch: int = 0
    checks_without_gain: int = 0
    curve: list[tuple[int, float]] = field(default_factory=list)
    cancel: threading.Event | None = None  # checked between batches of a validation check
    _best_state: dict[str, Any] | None = None  # torch tensors (CPU)

    def score(self, net: RBM) -> float:
        """Validation NDCG@10 of `net` now."""
        tops = []
        for start in range(0, len(self.users), 256):
            ev.check_cancel(self.cancel)
            idx = self.users[start : start + 256]
            p = net.predict_proba(self.history.labels[idx], self.history.mask[idx])
            tops.append(top_n(p, K, exclude=self.history.mask[idx])[0])
        return float(metrics.ndcg_at_k(np.concatenate(tops), self.relevant[self.users], K))

    def __call__(self, net: RBM, epoch: int) -> tuple[float | None, bool]:
        if epoch % self.every and epoch < net.n_iter:  # the last epoch is always checked
            return None, False
        ndcg = self.score(net)
        self.curve.append((epoch, ndcg))
        if ndcg > self.best:  # NaN (a diverged network) never is
            self.best, self.best_epoch, self.checks_without_gain = ndcg, epoch, 0
            self._best_state = net.state_dict()
        else:
            self.checks_without_gain += 1
        return ndcg, self.checks_without_gain >= self.patience

    def restore_best(self, net: RBM, epoch: int) -> None:
        """Put the best weights back into `net` (trained `epoch` epochs) unless its last ones are the best,
        or no check was made (then the last weights are kept)."""
        if self._best_state is not None and self.best_epoch != epoch:
            net.load_state_dict(self._best_state)
            net.n_iter_ = self.best_epoch

    def summary(self) -> str:
        """One line for a model's notes."""
        if not self.best_epoch:
            return "exposure network: no valid validation score (early stopping not applied)"
        return (
            f"exposure network: best validation NDCG@10 {self.best:.4f} after {self.best_epoch} epochs "
            f"(checked {len(self.curve)} times on {len(self.users):,} users); refitted on every entry "
            "for that many epochs"
        )


@dataclass
class StopAfter:
    """A monitor that stops training after `epochs` epochs (the refit of an early-stopped search)."""

    epochs: int

    def __call__(self, net: RBM, epoch: int) -> tuple[float | None, bool]:
        return None, epoch >= self.epochs

    def restore_best(self, net: RBM, epoch: int) -> None:
        """Nothing to restore: the last weights are the ones wanted."""


def ranking_split(
    played: InteractionMatrix, fraction: float, seed: int | None, patience: int, every: int = 2
) -> tuple[InteractionMatrix, EarlyStopping] | None:
    """(the training entries, an `EarlyStopping` over the rest) of the played matrix, or None when no entry
    can be put aside (every user has a single entry) or `fraction` is 0."""
    if fraction <= 0.0:
        return None
    seed = SPLIT_SEED_OFFSET + (0 if seed is None else int(seed))
    held = split_entries(played, fraction, "random", seed)
    if not held.any():
        return None
    train, val = played.select_entries(~held), played.select_entries(held)
    relevant = sp.csr_matrix(val.mask, dtype=np.float64, copy=True)
    relevant.data[:] = 1.0
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    if len(users) > MAX_VALIDATION_USERS:
        users = np.sort(np.random.default_rng(seed).choice(users, MAX_VALIDATION_USERS, replace=False))
    return train, EarlyStopping(train, relevant, users, patience=patience, every=every)

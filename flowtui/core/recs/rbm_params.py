"""The parameters of the RBM and the DBN, declared once.

`CDParams` are the estimators' own training arguments (scikit-learn BernoulliRBM's names): the `RBM` and
`DBN` classes take their defaults from these fields. `NetParams` adds what the registered models need to
build the user x media matrix and the exposure network; `RBMParams` and `DBNParams` add the architecture.
This module imports neither torch nor the registry.

How the defaults were chosen (the validation figures behind each): docs/RECS.md, "Experiment history
of the RBM defaults".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from flowtui.core.params import Value, param

DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class CDParams:
    """How one network is trained by contrastive divergence (the estimators' shared arguments)."""

    learning_rate: float = param(
        0.2, "CD learning rate", low=0.0, low_open=True, high=100.0, search=("log", 0.01, 1.0)
    )
    batch_size: int = param(64, "users per mini-batch", low=1, high=1_000_000)
    n_iter: int = param(5, "epochs (per layer for a DBN)", low=1, high=100_000, search=("linear", 2, 30))
    k: int = param(1, "Gibbs steps of contrastive divergence (CD-k)", low=1, high=1000)
    k_schedule: tuple[int, ...] | None = param(
        None, "k per epoch, the last repeated, e.g. [1,1,3]", low=1, high=1000
    )
    lr_schedule: Literal["constant", "linear"] = param(
        "constant",
        "learning rate over the epochs: constant, or linear (down to learning_rate / n_iter at the last)",
    )
    momentum: float = param(0.5, "momentum of the updates", low=0.0, high=0.999)
    weight_decay: float = param(1e-2, "L2 weight decay", low=0.0, high=1.0, search=("log", 1e-5, 0.1))
    random_state: int | None = param(0, "seed (null: a fresh seed each fit)", low=0, high=2**32 - 1)
    device: str = param("auto", "torch device (auto: CUDA when available)", choices=DEVICES)
    catalogue_context: bool = param(
        True,
        "condition an implicit (exposure) network on the user's other tracks of each track's artist and album",
    )


@dataclass(frozen=True)
class NetParams(CDParams):
    """What the registered RBM and DBN share: training of the network and the matrix it learns."""

    max_items: int = param(50_000, "items kept, those with most rows", low=1, high=100_000_000)
    min_count: int = param(1, "rows an item needs to be kept", low=1, high=1_000_000_000)
    label: Literal["latest", "majority", "mean"] = param("latest", "label of a pair seen several times")
    exposure_weight: float = param(
        0.05,
        "weight of unseen entries as negatives in the exposure network (0: no exposure network)",
        low=0.0,
        high=1.0,
    )
    # the exposure network learns what users play at all: a denser target that wants a bigger, longer-trained
    # network than the listen network (whose held-out AUC suffers from long training)
    exposure_n_components: int = param(
        128, "hidden units of the exposure network (rbm)", low=1, high=65_536, search=("log", 16, 512)
    )
    exposure_learning_rate: float = param(
        0.4,
        "CD learning rate of the exposure network",
        low=0.0,
        low_open=True,
        high=100.0,
        search=("log", 0.02, 2.0),
    )
    exposure_lr_schedule: Literal["constant", "linear"] = param(
        "linear", "learning rate of the exposure network over its epochs (see lr_schedule)"
    )
    exposure_n_iter: int = param(
        20,
        "epochs of the exposure network (at most, when it stops early)",
        low=1,
        high=100_000,
        search=("linear", 5, 40),
    )
    validation_fraction: float = param(
        0.0,
        "share of the played entries put aside to stop the exposure network early on their NDCG@10 (0: never)",
        low=0.0,
        high=0.5,
    )
    patience: int = param(
        3, "validation checks (one every 2 epochs) without a better NDCG@10 before it stops", low=1, high=1000
    )
    listen_power: float = param(
        0.1,
        "recommenders rank by P(played) x P(listened | played)^power (1: expected listens, 0: plays only)",
        low=0.0,
        high=4.0,
    )


@dataclass(frozen=True)
class RBMParams(NetParams):
    n_components: int = param(64, "hidden units", low=1, high=65_536, search=("log", 16, 512))


@dataclass(frozen=True)
class DBNParams(NetParams):
    layers: tuple[int, ...] = param(
        (128, 128), "hidden units of each layer, bottom first", low=1, high=65_536
    )
    deep_mix: float = param(
        0.0,
        "share of the upper layers' reconstruction in the hidden units that score (0: the first layer's own)",
        low=0.0,
        high=1.0,
    )


#: Overrides of the quick preset ("a first look in seconds").
RBM_QUICK: dict[str, Value] = {
    "n_components": 32,
    "n_iter": 3,
    "max_items": 20_000,
    "exposure_n_components": 32,
    "exposure_n_iter": 5,
}
DBN_QUICK: dict[str, Value] = {"layers": (32, 8), "n_iter": 3, "max_items": 20_000, "exposure_n_iter": 5}

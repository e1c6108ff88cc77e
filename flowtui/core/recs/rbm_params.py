"""The parameters of the RBM and the DBN, declared once.

`CDParams` are the estimators' own training arguments (scikit-learn BernoulliRBM's names): the `RBM` and
`DBN` classes take their defaults from these fields. `NetParams` adds what the registered models need to
build the user x media matrix and the exposure network; `RBMParams` and `DBNParams` add the architecture.
This module imports neither torch nor the registry.

How the defaults were chosen (bench/tune_rbm.py; validation = a random 20% of the TRAINING entries of
`flowtui evaluate-recs`' random 80/20 split, the test entries never read; early stopping on validation
NDCG@10, measured every 2-3 epochs). Data: MovieLens 100K as implicit plays (943 x 1,682) and as
listen/skip (rating >= 4), the bundled sample (200 x 3,484) and `flowtui data synth --users 3000 --seed 0`
(3,000 x 50,000). The ranking (exposure) network: 128 hidden units (256 was no better on MovieLens),
unseen entries as negatives of weight 0.05 (1.0, the textbook all-negative RBM, and 0.3 ranked worse;
0.02-0.1 alike), CD-1, momentum 0.5 (0.8-0.9 peaked earlier, then overfitted). Mini-batches of 64 rows
instead of 256: small data sets got a handful of updates an epoch (the sample: one), and the RBM lost to
popularity there. Learning rate 0.2 with weight decay 1e-2: on MovieLens lr 0.1 peaked at 0.257-0.261
validation NDCG@10 after 26-36 epochs, lr 0.2 at 0.252 after 18-21 epochs, lr 0.3 at 0.251 after 12 then
overfitted; lr 0.1 was too slow to learn the planted blocks of the contract tests in a few epochs, so 0.2
with 20 exposure epochs. Epochs are the compromise: on the synthetic data validation NDCG@10 kept rising
(0.046 after 20 epochs, 0.052 after 40; 256 hidden units no better) while MovieLens peaked near 20. The listen network (masked listen/skip, 5 epochs) gained too on MovieLens
listen/skip validation (AUC 0.737 -> 0.749, MAE 0.409 -> 0.397 with lr 0.1; table in the report).
The exposure network's learning rate decays linearly over its epochs, from 0.4 (`exposure_learning_rate`,
`exposure_lr_schedule`): on MovieLens implicit validation splits (seeds 0 and 1, carved from the training
entries) the constant 0.2 for 20 epochs scored NDCG@10 0.2515/0.2566, linear from 0.2 0.2521/0.2612, from
0.3 over 30 epochs 0.2645/0.2659, from 0.4 over 20 epochs 0.2641/0.2684 (cosine from 0.3: 0.2624/0.2649);
on the synthetic validation split (`--users 3000 --seed 7`) it neither helped nor hurt (0.0603 against
0.0607), so 0.4 over the same 20 epochs costs nothing there.
Ranking on listen/skip data: P(played) x P(listened | played)^0.1. The plain product (power 1, the
expected listens) ranked worst on validation NDCG@10 of both MovieLens listen/skip (0.211/0.216 over two
seeds; power 0.25: 0.238/0.234, 0.5: 0.228/0.226, 0: 0.210/0.215) and the sample (power 1: 0.047/0.061,
0.25: 0.061/0.070, 0: 0.071/0.075): the listen network separates listens from skips well (AUC) but its
per-item probabilities are too noisy to multiply in at full weight. After the exposure network's learning
rate was annealed, `flowtui evaluate-recs --validation` (validation carved from the training entries) gave,
for power 0 / 0.1 / 0.25: MovieLens listen/skip (seeds 0-2) 0.2315 / 0.2460 / 0.2420, the sample (seeds 0-2)
0.1032 / 0.0985 / 0.0937, synthetic `--users 3000 --seed 7` 0.0603 / 0.0582 / 0.0562; as shares of each data
set's best, mean 0.980 / 0.973 / 0.941 and worst 0.941 / 0.954 / 0.908. 0.1 has the best worst case and a
mean within 0.7% of power 0's, which gives up 6% on MovieLens: 0.1 is the default.
DBN: two layers of 128 (a 32-unit top layer squeezed the scores below the first layer's own). Scoring
mixes the first layer's hidden units with their reconstruction through the upper layers by `deep_mix`; on
validation splits (seeds 0 and 1 of MovieLens, one of the synthetic `--users 3000 --seed 7`) the first layer
alone scored best everywhere (NDCG@10, mix 0 / 0.25 / 0.5: MovieLens implicit 0.2641/0.2684, 0.2641/0.2662,
0.2621/0.2651; listen/skip 0.2350/0.2353, 0.2336/0.2349, 0.2295/0.2313; synthetic 0.0561, 0.0556, 0.0553),
and on the test entries the former 0.5 lost to the DBN's own first layer (implicit 0.4224 against 0.4260,
listen/skip 0.3312 against 0.3382, seeds 0-2), so the default is 0: the upper layers are trained (and serve
the Flow features) but do not change the ranking unless `deep_mix` > 0.

Catalogue context (`catalogue_context`, on by default): the exposure network's visible units are
conditioned on the user's other tracks of the same artist and album (one learnt weight per level; `rbm`).
Its 128 hidden units cannot hold the tens of thousands of albums of a listening log, and the RBM ranked
almost only popular tracks (222 distinct items in the synthetic top-10 lists, against item_knn's 4,480).
Validation NDCG@10 of the rbm recommender, without / with the context: synthetic `--users 3000 --seed 7`
0.0582 / 0.1024 (ease 0.0848, item_knn 0.0774 on the same split); the bundled sample (seeds 0-2) 0.0985 ±
0.0048 / 0.1281 ± 0.0190 (als 0.107, ease 0.103, item_knn 0.085). MovieLens has no artists or albums (an
import names each item its own), so nothing changes there. With the context, listen_power 0 / 0.1 / 0.25
scored 0.1313 / 0.1281 / 0.1199 on the sample: 0.1 stays.

Early stopping inside the fit (`validation_fraction` > 0: that share of the played entries put aside, the
exposure network stopped after `patience` checks without a better validation NDCG@10, then refitted on every
entry, stopped after the best epoch count with the same learning-rate schedule) is off by default: on the
test entries of `flowtui evaluate-recs` it matched the fixed 20 epochs (MovieLens implicit NDCG@10 0.4248 ±
0.0038 against 0.4255 ± 0.0032 over seeds 0-2; listen/skip 0.3449 against 0.3459; synthetic `--users 3000
--seed 7`: 0.0779 against 0.0779) at up to twice the fit time, and with at most 40 epochs (the linear decay
then spread over 40) it lost (0.4107, 0.3396). Before the schedule, with constant rates, it matched too
(0.399 against 0.405) and the search's own weights without a refit lost (0.393). It is there for data far
from these, where 20 epochs may be far from the best.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from flowtui.core.params import Value, param

DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class CDParams:
    """How one network is trained by contrastive divergence (the estimators' shared arguments)."""

    learning_rate: float = param(0.2, "CD learning rate", low=0.0, low_open=True, high=100.0)
    batch_size: int = param(64, "users per mini-batch", low=1, high=1_000_000)
    n_iter: int = param(5, "epochs (per layer for a DBN)", low=1, high=100_000)
    k: int = param(1, "Gibbs steps of contrastive divergence (CD-k)", low=1, high=1000)
    k_schedule: tuple[int, ...] | None = param(
        None, "k per epoch, the last repeated, e.g. [1,1,3]", low=1, high=1000
    )
    lr_schedule: Literal["constant", "linear"] = param(
        "constant",
        "learning rate over the epochs: constant, or linear (down to learning_rate / n_iter at the last)",
    )
    momentum: float = param(0.5, "momentum of the updates", low=0.0, high=0.999)
    weight_decay: float = param(1e-2, "L2 weight decay", low=0.0, high=1.0)
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
    exposure_n_components: int = param(128, "hidden units of the exposure network (rbm)", low=1, high=65_536)
    exposure_learning_rate: float = param(
        0.4, "CD learning rate of the exposure network", low=0.0, low_open=True, high=100.0
    )
    exposure_lr_schedule: Literal["constant", "linear"] = param(
        "linear", "learning rate of the exposure network over its epochs (see lr_schedule)"
    )
    exposure_n_iter: int = param(
        20, "epochs of the exposure network (at most, when it stops early)", low=1, high=100_000
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
    n_components: int = param(64, "hidden units", low=1, high=65_536)


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

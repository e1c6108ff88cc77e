"""Recommenders: interaction matrix, RBM/DBN, recommendation lists, cold start, evaluation.

- `interactions`: the sparse user x item matrix (1 listened, 0 skipped, unseen masked);
- `rbm_params`: the RBM/DBN parameters, declared once (the estimators' defaults and the registry's);
- `rbm_source`, `network`, `rbm`, `dbn`, `network_files`: the torch estimators (`RBM`, `DBN`), the
  mini-batches they read and their files;
- `rbm_models`: `rbm` and `dbn` as registered Flow models;
- `recommend` (with `numpy_net`): top-N lists, artists, genres, playlists, cold start;
- `evaluation`: held-out metrics of the recommenders and their baselines.
"""

"""Recommenders: one interface, the registered models, recommendation lists, cold start, evaluation.

- `interactions`: the sparse user x item matrix (1 listened, 0 skipped, unseen masked; or implicit plays);
- `recommender`: `RecommenderBase`, the one interface (fit, score, top-N with filters, fold-in, save/load);
- `ease`, `als`, `item_knn`, `popularity`: the peers and baselines; `rbm_recommender` (with `rbm_params`,
  `rbm_source`, `network`, `rbm`, `dbn`, `network_files`, `rbm_models`): the RBM and DBN;
- `store`: recommender folders (atomic, checked, with the training data's description);
- `recommend` (with `numpy_net`): top-N lists, artists, genres, playlists, cold start, reasons, the log's
  own ids, the model-meets-its-data check;
- `evaluation`: held-out splits, metrics and the leaderboard over seeds.

See docs/RECS.md.
"""

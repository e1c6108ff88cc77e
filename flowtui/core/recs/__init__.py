"""Recommenders: one interface, the registered models, recommendation lists, cold start, evaluation.

- `interactions`: the sparse user x item matrix (1 listened, 0 skipped, unseen masked; or implicit plays);
- `recommender`: `RecommenderBase`, the one interface (fit, score, top-N with filters, fold-in, save/load);
- `ease`, `als`, `item_knn`, `popularity`: the peers and baselines; `rbm_recommender` (with `rbm_params`,
  `rbm_source`, `network`, `rbm`, `rbm_cd`, `rbm_catalogue`, `dbn`, `network_files`, `rbm_networks`,
  `numpy_net`): the RBM and DBN (the Flow-question rbm/dbn live in `flowtui.core.flow.rbm_classifier`);
- `store`: recommender folders (on `flowtui.core.modelfiles`); `state_checks`: saved arrays checked on load;
- `recommend`: top-N lists, artists, genres, playlists, cold start, reasons, the log's own ids;
  `data_check`: does a model meet its data; `board_file`: the leaderboard kept beside the models;
- `evaluation`: held-out splits, metrics and the leaderboard over seeds.

The workflow over these (train and save, evaluate, recommend) is `flowtui.core.workflows.recs`.

See docs/RECS.md.
"""

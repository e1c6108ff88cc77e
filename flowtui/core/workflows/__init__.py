"""Workflows over more than one capability: what the CLI, the app and a server call.

`recs` is the recommender workflow (train and save, evaluate, recommend; the tuner's seam); `tune` (with
`tune_space`, the search spaces the parameters declare, and `tune_file`, the tuned parameters kept on disk)
searches each recommender's parameters on a validation split carved from the training entries. The Flow
question's workflow is `flowtui.core.run`, and the cluster's `flowtui.core.cluster`.
"""

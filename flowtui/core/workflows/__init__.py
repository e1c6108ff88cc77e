"""Workflows over more than one capability: what the CLI, the app and a server call.

`recs` is the recommender workflow (train and save, evaluate, recommend; the tuner's seam); the Flow
question's workflow is `flowtui.core.run`, and the cluster's `flowtui.core.cluster`.
"""

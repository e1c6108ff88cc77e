"""Recommenders: interaction matrix, RBM/DBN, recommendation lists, cold start, evaluation."""

"""The Flow question: holdout split, leak-free features, classifiers, evaluation, model store."""

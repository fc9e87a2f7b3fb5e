"""Experiments: protocols that yield folds, metrics, and the results store."""

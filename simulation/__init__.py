"""Simulated raters, the rules they judge by, and `tuneloop demo`: everything that stands in for
people. Outside the worker on purpose: the training core never reads a rater's rule; it learns
only from the ratings they store (tests/training/test_boundaries.py keeps it so)."""

"""Evaluation: Table 1 metrics and the composition probe."""

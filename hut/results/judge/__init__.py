"""Verdicts, claims and statistics: cell verdicts against the paper, claims tested on records, the
statistics behind them, and epoch selection from per-epoch dev predictions."""

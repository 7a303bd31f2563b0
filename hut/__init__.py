"""hut-suite: reference implementation and reproduction suite for HUT (arXiv 2409.13501)."""

__version__ = "0.1.0"

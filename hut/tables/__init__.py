"""The command ``python -m hut.tables.figure4``, the name the README and the experiment files use for
``python -m hut.results.figures.figure4``. The tables themselves: :mod:`hut.results.tables`."""

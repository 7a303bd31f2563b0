"""``python -m hut.tables.figure4 [key=value ...]``: runs :func:`hut.results.figures.figure4.main`."""
from hut.results.figures.figure4 import main

if __name__ == "__main__":
    raise SystemExit(main())

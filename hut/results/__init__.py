"""Results: from run records to tables, figures, verdicts, the report and the results page.

Layers (a module imports only from its own layer or those above it in this list, never back up;
``tests/test_design.py`` checks it, function-level imports included):

1. ``render`` (a table as data; md / tex / csv / html / text; documents), ``files`` (writes, shipped records)
2. ``runs`` (records -> runs and cells), ``labels``, ``paper`` (the paper's rows), ``layout`` (what a sweep expects)
3. ``judge`` (``stats``, ``verdicts``, ``claims``, ``selection``)
4. ``tables`` (one module per paper table; ``TABLES``)
5. ``figures`` (Figure 3, Figure 4, costs and Pareto fronts, learning-rate curves)
6. ``report`` (the reproduction report)
7. ``page`` (the static results page)
8. ``aggregate`` (writes all of it; the command is ``python -m hut.aggregate``)
"""

"""The learning-rate search: ``python -m hut.tune experiment=E`` (docs/tuning.md).

For each cell of experiment ``E`` (a row on a task), the grid of its protocol
(``configs/tune/<E>.yaml``) × its search seeds runs as ordinary runs of ``E`` with ``trainer.lr=X``;
each cell's value is chosen on data that is never reported (the held-out tune split, or one half of
dev), written beside its runs, and the final seeds run at it. Modules, one job each:

* :mod:`~hut.tune.protocol`: the protocol as data (``configs/tune/``), checked;
* :mod:`~hut.tune.choose`: the rule (mean over search seeds, ties to the smaller value, the grid's edge);
* :mod:`~hut.tune.jobs`: running runs through the trainer, in this process or in one-thread workers;
* :mod:`~hut.tune.search`: the search's runs, the choice per cell and its file, the final runs;
* ``__main__``: the command.
"""

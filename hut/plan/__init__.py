"""A plan before the spend: ``python -m hut.plan experiment=table1 [gpu=rtx3090|a100|h100]``.

What an experiment's sweep will cost on a named GPU, before it runs: its cells and runs, which are
already finished (records under ``results_dir`` with the cell's fingerprint), the downloads, the
peak GPU memory of every cell at its batch size and longest sequence, hours per cell and in total,
and the fastest recipe for the machine. Every figure is an estimate and says how it was made.

* :mod:`hut.plan.estimate`: one :class:`~hut.plan.estimate.Line` per cell (finished runs, memory, hours);
* :mod:`hut.plan.hours`: one run's hours: steps × max(FLOP time, kernel floor), or unknown and why;
* :mod:`hut.plan.kernels`: the kernels a step launches, counted (``python -m hut.plan.kernels``: the
  calibration of the cost per kernel);
* :mod:`hut.plan.report`: the text and the recipe;
* :mod:`hut.plan.lengths`: the token lengths of ``datasets.yaml``, measured on a local data copy;
* :mod:`hut.plan.assumptions` reads ``hardware.yaml`` (GPU kinds: memory, bf16 peak, assumed
  utilisation, cost per kernel and its calibration) and ``datasets.yaml`` (examples per task, tokens
  per example), each figure with its source.

The memory estimate itself (weights, gradients, AdamW state, activations by saved-tensor hooks) is
:mod:`hut.memory`, below this package and :mod:`hut.results` (whose page plots it too).

Generic over tasks and methods: a cell is whatever the experiment's sweep composes; a task without
sizes in ``datasets.yaml`` still gets its memory, and its hours are unknown, with what is missing.
"""

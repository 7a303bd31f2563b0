"""The paper's tables, one module each, in one registry (``TABLES``), refusing duplicate names.

============  ================  ==================================================================
table         module            rows x columns
============  ================  ==================================================================
table1        ``table1``        methods x GLUE tasks (+ Avg.), ours / the paper's / ours − paper
table2        ``table2``        the paper's FLOPs rows beside our counts; every method measured
table3        ``table3``        methods x the five E2E metrics, ours / paper / ours − paper
table4        ``table4``        tasks x (targets, r) cells (HUT)
table5        ``table5``        (task, targets) x r (HUT)
parts         ``parts``         HUT's parts, HiRA, DoRA, LoRA x Table 1's tasks (experiment parts)
cost          ``cost``          per run: score, wall time, parameters (Tables 1 and 3's runs)
figure4       ``figure4``       SQuAD EM/F1 per method beside a baseline (Figure 4's mini table)
============  ================  ==================================================================

Every builder takes :class:`~.base.Inputs` and returns a :class:`~.base.Built` (its table,
verdicts, rows, progress, problems); nothing is shared between builders. Shared machinery:
``method_table`` (tables whose rows are methods: 1, 3, parts), ``ablation_grid`` (4 and 5),
``progress`` (runs against the sweep's cells × seeds).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from hut.registry import Registry
from hut.results.tables.base import Built, Inputs
from hut.results.tables.cost import build_cost
from hut.results.tables.figure4 import build_figure4_table
from hut.results.tables.parts import build_parts
from hut.results.tables.table1 import build_table1
from hut.results.tables.table2 import build_table2
from hut.results.tables.table3 import build_table3
from hut.results.tables.table4 import build_table4
from hut.results.tables.table5 import build_table5


@dataclass(frozen=True)
class TableSpec:
    key: str
    build: Callable[[Inputs], Built]


TABLES: Registry[TableSpec] = Registry("table")
for _spec in (TableSpec("table1", build_table1), TableSpec("table2", build_table2), TableSpec("table3", build_table3),
              TableSpec("table4", build_table4), TableSpec("table5", build_table5), TableSpec("parts", build_parts),
              TableSpec("cost", build_cost), TableSpec("figure4", build_figure4_table)):
    TABLES.add(_spec.key, _spec)
